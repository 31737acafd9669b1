"""Fault: the disk fills up under the real `gate run` process. The process runs under RLIMIT_FSIZE (set
in preexec_fn; room to spare at first); once it has committed some events the limit is lowered, from
outside with prlimit, to the size its write-ahead log has reached, so the store can no longer grow. The
gate logs a clear error and raises store_fault, keeps running and deciding (no crash, no restart loop),
loses none of the events committed before, keeps the events the disk refused in memory, and once space
is freed (the limit lifted again) writes them, notes the recovery, and every decision it printed is in
the store, once."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from fault_helpers import GateProcess, check_store, committed, gate_config, wait_until

REFUSED = "the disk refused a write"
ROOM = 1 << 30


def file_size_limit(pid: int, soft: int) -> None:
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))


@pytest.mark.fault
def test_disk_full(prepared: Path, tmp_path: Path) -> None:
    config = gate_config(prepared, tmp_path)
    db = tmp_path / "data" / "gate.db"
    wal = Path(f"{db}-wal")

    def limited() -> None:  # in the child, before exec: files may grow to ROOM; the hard limit stays open
        resource.setrlimit(resource.RLIMIT_FSIZE, (ROOM, resource.RLIM_INFINITY))

    gate = GateProcess(config, tmp_path, preexec=limited)
    try:
        wait_until(lambda: len(committed(db)) >= 2, 60, "the first events committed")
        assert resource.prlimit(gate.proc.pid, resource.RLIMIT_FSIZE)[0] == ROOM
        # the disk is full: no file of the process may grow past what the write-ahead log holds now (it
        # is far from its 1000-page checkpoint, so every further commit would have to append to it)
        file_size_limit(gate.proc.pid, wal.stat().st_size)
        gate.wait_log(REFUSED, 30)
        before = committed(db)
        gate.wait_log("alarm store_fault: store: store", 10)  # the supervisor's alarm, with the reason
        decided = len(gate.decisions)
        wait_until(lambda: len(gate.decisions) >= decided + 3, 30, "decisions on a full disk")
        assert gate.alive() and committed(db) == before

        file_size_limit(gate.proc.pid, resource.RLIM_INFINITY)  # space is freed
        gate.wait_log("alarm store_recovered", 20)
        # the events refused meanwhile are written from memory, and the gate stores again as it decides
        wait_until(lambda: len(committed(db)) >= len(gate.decisions), 20, "every decision in the store")
        assert gate.stop() == 0, gate.log[-3000:]
    finally:
        if gate.alive():
            gate.kill()
    log = gate.log
    assert "Traceback" not in log, log[-3000:]
    kept = log.count("store write record_event failed: ")
    assert kept >= 3 and log.count(REFUSED) >= kept
    assert log.count("kept in memory and written again once the store accepts writes") >= kept
    assert "store accepts writes again" in log and "LOST" not in log
    assert log.count("alarm store_fault") == log.count("alarm store_recovered") == 1  # no flapping
    # the alarm raised while the disk was full was kept too, and written with the recovery
    stored = check_store(db, before, ["store_fault", "store_recovered"])
    # every decision the gate printed is in the store, once: none lost to the full disk
    assert len(stored) == len({e.event_id for e in stored}) == len(gate.decisions)
