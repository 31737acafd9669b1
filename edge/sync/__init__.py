"""The gate's side of the community sync over MQTT.

- `mqtt`: `MqttSync`, the facade the gate starts and stops.
- `link`: the network thread (connect/reconnect, availability and LWT, the retained state document).
- `outbox`: the outbox drainer (hand-over of committed rows, in-flight window, delete on PUBACK).
- `intake`: the intake queue and thread for whitelist pushes and peer-gate events.
- `whitelist`: the whitelist applier (verifies pushes, applies them to the store, acks).
- `client`: `make_client`, the one builder of paho clients (also used by the admin tools and selftest).
- `stats`: the sync's counters and last error.

The protocol itself (topics, payloads, signatures) is in `edge.protocol`.
"""
