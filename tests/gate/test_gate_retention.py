"""The gate runs retention from its first supervision pass: old passages are purged (they used to grow
without bound: only events and face crops were purged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.config import load_config
from edge.gate import Gate
from edge.store import Passage, PersonRecord, Store


def test_first_supervision_pass_purges_old_passages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = datetime.now(UTC)
    with Store.open(data / "gate.db") as store:
        store.upsert_person(PersonRecord(id="R1", name="Ann"))
        store.record_passage(Passage("R1", now - timedelta(days=90), "gate-1", "in"))
        store.record_passage(Passage("R1", now - timedelta(days=1), "gate-1", "in"))
    cfg = tmp_path / "gate.toml"
    cfg.write_text(f'[gate]\ndata_dir = "{data}"\n[store]\nretention_days = 30\n'
                   f'[camera]\ntype = "folder"\nsource = "{tmp_path / "no-camera"}"\n'
                   '[thermal]\ntype = "sim"\nkind = "gy_mcu90614"\n[relay]\ntype = "sim"\nkind = "lcus"\n'
                   "[web]\nenabled = false\n")
    gate = Gate(load_config(cfg))
    try:
        gate.check()
    finally:
        gate.shutdown()  # the writer drains what check() submitted before it closes
    with Store.open(data / "gate.db") as store:
        left = store.recent_passages("R1", now - timedelta(days=365))
    assert [round((now - p.ts) / timedelta(days=1)) for p in left] == [1]
