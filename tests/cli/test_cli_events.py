"""`gate events`: every recorded event by default (paged, none cut off), --since and --limit, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.cli import main as gate_main
from edge.store import EventRecord, Store

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _store(data: Path, n: int) -> None:
    data.mkdir()
    with Store.open(data / "gate.db") as store:
        def write(s: Store) -> None:
            for i in range(n):
                s.record_event(EventRecord(ts=T0 + timedelta(seconds=i), gate_id="g1", direction="in",
                                           decision="grant" if i % 3 else "deny", person_id=f"p{i % 7}",
                                           reasons=({"code": "ok" if i % 3 else "unknown_face"},)))
        store.apply_in_transaction(write)


def _events(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert gate_main(["events", *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_all_events_since_and_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _store(data, 2500)
    everything = _events(capsys, "--data-dir", str(data))
    assert len(everything) == 2500  # more than one page, none cut off
    assert len({e["event_id"] for e in everything}) == 2500
    assert [e["ts"] for e in everything] == sorted(e["ts"] for e in everything)  # oldest first
    since = (T0 + timedelta(seconds=2000)).isoformat()
    later = _events(capsys, "--data-dir", str(data), "--since", since)
    assert len(later) == 500 and later[0]["event_id"] == everything[2000]["event_id"]
    assert len(_events(capsys, "--data-dir", str(data), "--limit", "1200")) == 1200
    assert gate_main(["events", "--data-dir", str(data), "--limit", "3"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 3 and "unknown_face" in text[0] and "deny" in text[0]


def test_bad_since_and_missing_store_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _store(data, 3)
    assert gate_main(["events", "--data-dir", str(data), "--since", "yesterday"]) == 2
    assert "not an ISO-8601 time" in capsys.readouterr().err
    assert gate_main(["events", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # listing never creates a store
