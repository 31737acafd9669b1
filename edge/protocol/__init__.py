"""The community protocol shared by the gate, the admin tools and a community hub: what goes over MQTT
and how it is checked. Nothing here talks to a broker or a store.

- `topics`: the topic tree (`Topics`).
- `payloads`: the documents a gate publishes (event, alarm, state, whitelist ack) and the
  `whitelist/current` pointer, with their `schema` ids.
- `messages`: the signed whitelist pushes (snapshot chunks, deltas), their limits, `parse_push`.
- `signing`: canonical JSON and Ed25519 signatures (`AdminKey`, `verify`, key text).
- `schemas`: JSON Schema generation and the `docs/schemas/` files.
"""
