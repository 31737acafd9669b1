"""A real Gate in panel mode (the wiring in edge/gate.py): `[panel] type = "osdp"` on a pty whose panel is
the independent `osdp` CP. The supervisor's first pass starts the reader; with no panel polling it is the
`panel` part's fault and a `panel_offline` alarm in the store; once the CP polls, `panel_recovered`, and
the part's detail shows the LED the panel lit; junk on the bus is counted in the gate's health, on the guards'
page (the "Access panel" row) and in /metrics; a CP that stops polling is offline again. Shutdown closes it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from osdp._types import (
    LedColor,
    PermanentReaderControlCode,
    ReaderLedControl,
    ReaderLedControls,
    TemporaryReaderControlCode,
)

from drivers.panel.osdp_frame import frame
from edge.config import load_config
from edge.config.web import WebConfig
from edge.gate import Gate
from edge.store import Store
from edge.web.app import create_app
from edge.web.auth import hash_password
from tests.support.gate_config import gate_config
from tests.support.osdp_cp import Bus, acked
from tests.support.scene import demo_root
from tests.support.wait import poll_until, wait_until


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "panel")


def _until(gate: Gate, cond: Callable[[], object], timeout: float = 60.0) -> bool:
    def checked() -> object:
        gate.check()  # the supervisor's pass, as `gate run` makes it once a second
        return cond()
    return poll_until(checked, timeout, every=0.2)


def test_panel_offline_is_alarmed_and_recovery_noted(prepared: Path, tmp_path: Path) -> None:
    bus = Bus()
    extra = f'[panel]\ntype = "osdp"\nport = "{bus.path}"\naddress = 4\noffline_after_s = 0.5\nfallback = "relay"\n'
    cfg = gate_config(tmp_path, prepared / "scene", store_from=prepared, gate_id=None, reconnect_s=(0.1, 0.2),
                      policy=None, web_enabled=None, extra=extra)
    gate = Gate(load_config(cfg))
    gate.start()
    try:
        assert _until(gate, lambda: "panel" in gate.health and not gate.health["panel"].ok)
        assert "not polled" in gate.health["panel"].detail and "fallback = relay" in gate.health["panel"].detail
        cp = bus.connect(address=4)
        assert _until(gate, lambda: gate.health["panel"].ok and cp.is_online(bus.cid, 4))
        led = ReaderLedControl(0, 0, TemporaryReaderControlCode.Nop, 0, 0, LedColor.Black, LedColor.Black, 0,
                               PermanentReaderControlCode.SetPermanentState, 1, 0, LedColor.Red, LedColor.Red)
        wait_until(lambda: acked(lambda: cp.reader_led_control(bus.cid, 4, ReaderLedControls([led]))), what="LED")
        assert _until(gate, lambda: "led red" in gate.health["panel"].detail)
        assert _malformed(gate) == 0
        bad_crc = bytearray(frame(4, 0x60))
        bad_crc[-1] ^= 0xFF
        for junk in (b"\x00\x13garbage", bytes(bad_crc), b"\x53\x04\xff\xff\x04", bytes(300)):
            os.write(bus.master, junk)  # between (or into) the CP's frames, as a noisy RS-485 line does
        assert _until(gate, lambda: _malformed(gate) >= 3)
        assert gate.health["panel"].ok and cp.is_online(bus.cid, 4)  # counted, never a crash or an outage
        _page_and_metrics_show(gate)
        bus.stop_polling()
        assert _until(gate, lambda: not gate.health["panel"].ok)
    finally:
        gate.shutdown()
        bus.close()
    with Store.open(tmp_path / "data" / "gate.db") as store:
        kinds = [a.kind for a in store.alarms(limit=100)]
    assert kinds.count("panel_offline") >= 1 and "panel_recovered" in kinds


def _malformed(gate: Gate) -> int:
    panel = gate.health_snapshot()["panel"]
    assert isinstance(panel, dict) and panel["type"] == "osdp"
    return int(panel["malformed_frames"])


def _page_and_metrics_show(gate: Gate) -> None:
    """The count the gate's health has now is on the guard's status page and in /metrics (it only grows)."""
    gate.writer.submit(gate.store.add_guard, "wang", "viewer", hash_password("correct horse battery")).result(10)
    with TestClient(create_app(gate.web_parts(), WebConfig(language="en")), follow_redirects=False) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        r = client.post("/login", data={"csrf": csrf.group(1), "name": "wang", "password": "correct horse battery"})
        assert r.status_code == 303, r.text
        seen = _malformed(gate)
        row = re.search(r'id="part-panel" class="health ok">([^<]*)<', client.get("/").text)
        assert row is not None and "led red" in row.group(1)
        shown = re.search(r"; (\d+) malformed frames$", row.group(1))
        assert shown is not None and int(shown.group(1)) >= seen >= 3
        metric = re.search(r"^edge_gate_panel_malformed_frames_total ([0-9.e+]+)$", client.get("/metrics").text, re.M)
        assert metric is not None and float(metric.group(1)) >= seen
