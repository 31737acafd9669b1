"""A real Gate in panel mode (the wiring in edge/gate.py): `[panel] type = "osdp"` on a pty whose panel is
the independent `osdp` CP. The supervisor's first pass starts the reader; with no panel polling it is the
`panel` part's fault and a `panel_offline` alarm in the store; once the CP polls, `panel_recovered`, and
the part's detail shows the LED the panel lit; a CP that stops polling is offline again. Shutdown closes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from osdp._types import (
    LedColor,
    PermanentReaderControlCode,
    ReaderLedControl,
    ReaderLedControls,
    TemporaryReaderControlCode,
)

from edge.config import load_config
from edge.gate import Gate
from edge.store import Store
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
        bus.stop_polling()
        assert _until(gate, lambda: not gate.health["panel"].ok)
    finally:
        gate.shutdown()
        bus.close()
    with Store.open(tmp_path / "data" / "gate.db") as store:
        kinds = [a.kind for a in store.alarms(limit=100)]
    assert kinds.count("panel_offline") >= 1 and "panel_recovered" in kinds
