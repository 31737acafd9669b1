"""The community hub (`gate hub ...`): the master register of residents, visitors and staff and of the
community's gates with their keys; every change becomes a signed delta; gates that are new or fall
behind get a signed snapshot automatically; acks are verified and kept per gate; events and alarms
are archived. One process next to the broker, with its own database (SQLite by default, PostgreSQL
through psycopg 3 with the same schema).

- `db`: the database (SQLite or PostgreSQL), its schema and migrations.
- `register`: persons and gates, each change one version and one row in `changes`.
- `messages`: the signed pushes the hub publishes (deltas of changes, snapshots for a gate).
- `service`: the running hub: MQTT in and out.
- `config`: `hub.toml`.
"""
