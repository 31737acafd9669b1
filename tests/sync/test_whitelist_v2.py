"""Protocol v2 on the whitelist side, against a real store: acks tied to their push by digest, patches
without biometrics, the member gates list, a snapshot whose chunks stop coming, the gate re-asking
for a snapshot with backoff, throttled alarms and nacks under junk, v1 pushes refused by name."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import COMMUNITY, GATE, MODEL, delta, entry, snapshot

from edge.protocol.payloads import WhitelistAck
from edge.protocol.signing import AdminKey, SigningKey
from edge.store import Store
from edge.sync.members import META_KEY, MemberGates
from edge.sync.snapshot_ask import SnapshotAsk
from edge.sync.whitelist import WhitelistApplier
from tests.support.wire import signed


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 1.0


@pytest.fixture(scope="module")
def admin() -> AdminKey:
    return AdminKey.generate()


def applier(store: Store, admin: AdminKey, clock: Clock | None = None, **kw: Any) -> WhitelistApplier:
    clock = clock or Clock()
    ask = SnapshotAsk(5.0, 40.0, clock=clock, rng=NoJitter())
    return WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE,
                            monotonic=clock, ask=ask, **kw)


def ack_of(doc: dict[str, Any] | None) -> WhitelistAck:
    assert doc is not None
    return WhitelistAck.model_validate(signed(doc))  # closed and documented once signed


def test_every_answer_names_its_push_by_digest(store: Store, admin: AdminKey) -> None:
    wl = applier(store, admin)
    raw = delta(admin, 1, [entry("R1", 1)], base=0)
    ack = ack_of(wl.handle(raw))
    assert ack.status == "applied" and ack.push_digest == hashlib.sha256(raw).hexdigest() and ack.kind == "delta"
    forged = delta(AdminKey.generate(), 2, [entry("R1", 1, status="suspended")])
    nack = ack_of(wl.handle(forged))
    assert (nack.status, nack.code, nack.kind, nack.version) == ("rejected", "bad_signature", "delta", 2)
    assert nack.push_digest == hashlib.sha256(forged).hexdigest() and ack.ts.tzinfo is not None
    assert json.loads(json.dumps(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0))))["ts"].endswith("Z")


def test_a_patch_changes_status_and_name_without_biometrics(store: Store, admin: AdminKey) -> None:
    wl = applier(store, admin)
    ack_of(wl.handle(delta(admin, 1, [entry("R1", 1, n=2), entry("V1", 2, kind="visitor", max_uses=3)], base=0)))
    templates = store.count_templates(MODEL)
    patches = [{"id": "R1", "status": "suspended", "name": "Wang Fang"}, {"id": "V1", "max_uses": None},
               {"id": "NOPE", "status": "active"}]
    ack = ack_of(wl.handle(delta(admin, 2, [], patches=patches)))
    assert ack.status == "applied" and ack.counts.patched == 2 and ack.counts.upserted == 0
    assert [(e.id, e.code, e.applied) for e in ack.errors] == [("NOPE", "unknown_person", False)]
    r1, v1 = store.get_person("R1"), store.get_person("V1")
    assert r1 is not None and (r1.status, r1.name, r1.unit) == ("suspended", "Wang Fang", "1-101")
    assert v1 is not None and v1.max_uses is None and v1.kind == "visitor"
    assert store.count_templates(MODEL) == templates  # biometrics untouched
    ack = ack_of(wl.handle(delta(admin, 3, [], patches=[{"id": "R1", "status": "active"}])))
    assert ack.status == "applied" and store.get_person("R1").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("patch", [{"id": "R1"}, {"id": "R1", "status": None}, {"id": "R1", "colour": "red"}])
def test_a_patch_that_changes_nothing_or_too_much_is_refused(store: Store, admin: AdminKey,
                                                             patch: dict[str, Any]) -> None:
    wl = applier(store, admin)
    ack_of(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0)))
    nack = ack_of(wl.handle(delta(admin, 2, [], patches=[patch])))
    assert (nack.status, nack.code) == ("rejected", "invalid") and wl.version == 1


def test_member_gates_come_with_the_signed_whitelist(store: Store, admin: AdminKey) -> None:
    north, south = SigningKey.generate(), SigningKey.generate()
    wl = applier(store, admin)
    gates = [{"gate_id": "north-1", "public_key": north.public_text},
             {"gate_id": "south-2", "public_key": south.public_text}]
    ack_of(wl.handle(snapshot(admin, 1, [entry("R1", 1)], gates=gates)[0]))
    assert len(wl.members) == 2 and list(wl.members.key("north-1")) == [north.key_id]
    assert MemberGates.decode(store.get_meta(META_KEY)) == [(g["gate_id"], g["public_key"]) for g in gates]
    ack_of(wl.handle(delta(admin, 2, [entry("R2", 2)])))  # no `gates`: unchanged
    assert len(wl.members) == 2
    ack_of(wl.handle(delta(admin, 3, [], gates=gates[:1])))
    assert len(wl.members) == 1 and wl.members.key("south-2") == {}
    again = WhitelistApplier(store, None, MODEL, [admin.public], community=COMMUNITY, gate_id=GATE)
    assert len(again.members) == 1  # kept in the store across a restart
    bad = ack_of(wl.handle(delta(admin, 4, [], gates=[{"gate_id": "x", "public_key": "ed25519:nope"}])))
    assert bad.code == "invalid" and len(wl.members) == 1


def test_a_snapshot_whose_chunks_stop_coming_is_nacked_incomplete_and_asked_again(store: Store, admin: AdminKey,
                                                                                  tmp_path: Path) -> None:
    clock = Clock()
    wl = applier(store, admin, clock, snapshot_chunk_timeout_s=60)
    chunks = snapshot(admin, 3, [entry(f"R{i}", i) for i in range(6)], per_chunk=2)
    assert wl.handle(chunks[0]) is None and wl.handle(chunks[2]) is None  # chunk 1 never comes
    clock.t += 59
    assert wl.tick() == []
    clock.t += 2
    (nack,) = [ack_of(a) for a in wl.tick()]
    assert (nack.status, nack.code, nack.kind, nack.version, nack.need_snapshot) == (
        "rejected", "incomplete", "snapshot", 3, True)
    assert "2 of 3 chunks" in nack.message and wl.version == 0 and wl.ask.needed
    assert store.count_persons() == 0  # nothing of the partial snapshot applied


def test_a_gate_that_needs_a_snapshot_re_asks_with_backoff_until_one_arrives(store: Store, admin: AdminKey) -> None:
    clock = Clock()
    wl = applier(store, admin, clock)
    ack_of(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0)))
    gap = ack_of(wl.handle(delta(admin, 5, [entry("R2", 2)], base=4)))
    assert gap.code == "version_gap" and gap.need_snapshot and wl.ask.needed
    asked: list[float] = []
    for _ in range(200):  # 200 s of ticks, one a second
        clock.t += 1
        for doc in wl.tick():
            req = ack_of(doc)
            assert (req.kind, req.status, req.code, req.version, req.push_digest, req.need_snapshot) == (
                "request", "outdated", "need_snapshot", None, None, True)
            asked.append(clock.t - 1000)
    gaps = [b - a for a, b in zip([0.0, *asked], asked, strict=False)]
    assert gaps[:4] == [5.0, 10.0, 20.0, 40.0] and set(gaps[4:]) == {40.0}  # doubling, capped at max_s
    ack_of(wl.handle(snapshot(admin, 6, [entry("R1", 1), entry("R2", 2)])[0]))
    assert not wl.ask.needed
    clock.t += 500
    assert wl.tick() == []  # satisfied: no more requests


def test_jitter_spreads_re_asks_of_many_gates() -> None:
    clock = Clock()
    firsts = set()
    for seed in range(20):
        ask = SnapshotAsk(5.0, 300.0, clock=clock, rng=random.Random(seed))
        ask.need()
        t = clock.t
        while not ask.due():
            clock.t += 0.01
        firsts.add(round(clock.t - t, 2))
        clock.t = t
    assert len(firsts) > 10 and min(firsts) >= 4.0 and max(firsts) <= 6.01


def test_junk_makes_one_alarm_a_minute_and_few_nacks(store: Store, admin: AdminKey) -> None:
    clock = Clock()
    wl = applier(store, admin, clock)
    nacks = [wl.handle(b"\x00junk %d" % i) for i in range(300)]
    nacks += [wl.handle(delta(AdminKey.generate(), 1, [entry("R1", 1)], base=0)) for _ in range(50)]
    alarms = [a for a in store.alarms(limit=1000) if a.kind == "whitelist_rejected"]
    assert len(alarms) == 2  # malformed_json once, bad_signature once
    assert sum(n is not None for n in nacks) == 2
    clock.t += 61
    wl.handle(b"junk again")
    alarms = [a for a in store.alarms(limit=1000) if a.kind == "whitelist_rejected"]
    (junk,) = [a for a in alarms if a.details["code"] == "malformed_json"]  # the store grouped the second alarm
    assert junk.details["rejected_since_last"] == 300  # it counts the 299 held back, and itself
    assert junk.count == 301  # every malformed push, the held-back ones included
    ack = ack_of(wl.handle(delta(admin, 1, [entry("R1", 1)], base=0)))
    assert ack.status == "applied"  # a valid push after the junk is answered at once


def test_a_v1_push_is_refused_by_name(store: Store, admin: AdminKey) -> None:
    wl = applier(store, admin)
    raw = json.loads(delta(admin, 1, [entry("R1", 1)], base=0))
    raw["schema"] = "edge-gate/whitelist-delta/1"
    nack = ack_of(wl.handle(json.dumps(admin.sign(raw)).encode()))
    assert nack.code == "unknown_schema" and "v2" in nack.message and wl.version == 0
