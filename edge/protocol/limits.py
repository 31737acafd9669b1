"""The protocol's size limits, as plain constants (the `gate` command's parser reads them without loading
the message models)."""

from __future__ import annotations

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # one MQTT message (a snapshot chunk or a delta)
MAX_ENTRIES_PER_MESSAGE = 5_000
MAX_PHOTO_BYTES = 2 * 1024 * 1024
MAX_TEMPLATES_PER_PERSON = 20
MAX_ACK_NOTES = 100  # notes in one ack (e.g. deletes of absent persons); the ack's message gives the total
