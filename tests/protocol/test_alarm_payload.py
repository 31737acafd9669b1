"""The alarm payload's optional group fields: an alarm without them (a gate before grouping, or any
single alarm) is what it always was; `count` and `last_seen` are typed and bounded; the schema stays
closed; the published grouped-alarm vector is a valid, signed alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from edge.protocol.payloads import ALARM_SCHEMA, AlarmMessage, EventAlarm
from edge.protocol.signing import SigningKey
from edge.protocol.vectors import VECTORS_FILE

KEY = SigningKey.generate()
BASE = {"schema": ALARM_SCHEMA, "id": "01JEA", "ts": "2026-12-01T08:00:00.000000Z", "kind": "stranger",
        "severity": "warning", "message": "unknown face", "details": {}, "gate_id": "north-1", "person_id": None}


def test_a_single_alarm_needs_no_group_fields_and_a_group_carries_them() -> None:
    single = AlarmMessage.model_validate(KEY.sign(dict(BASE)))
    assert single.count is None and single.last_seen is None
    group = AlarmMessage.model_validate(KEY.sign({**BASE, "count": 37, "last_seen": "2026-12-01T08:09:00Z"}))
    assert group.count == 37 and group.last_seen is not None and group.last_seen > group.ts
    assert EventAlarm.model_validate({k: v for k, v in BASE.items() if k != "schema"} | {"count": 2}).count == 2


@pytest.mark.parametrize("bad", [{"count": 0}, {"count": 2.5}, {"last_seen": "2026-12-01T08:09:00"},
                                 {"repeats": 37}])
def test_bad_group_fields_and_unknown_members_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlarmMessage.model_validate(KEY.sign({**BASE, **bad}))


def test_the_grouped_alarm_vector_is_a_valid_alarm() -> None:
    vectors = {v["name"]: v for v in json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]}
    v = vectors["alarm-group-update"]
    doc = {**v["message"], "signature": {"alg": "ed25519", "key_id": v["key_id"], "value": v["signature"]}}
    assert AlarmMessage.model_validate(doc).count == 1000
