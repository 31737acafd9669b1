"""Sync with the community server over MQTT: messages, signatures, durable events, whitelist intake."""
