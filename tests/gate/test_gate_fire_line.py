"""A cut supervised fire line in a real running Gate, on the Modbus board simulator (a pty, read by the real
driver): the fire line is an end-of-line resistor line on input register 0 (`fire_eol_register`, README
"Life safety"). Cut, it reads full scale: the gate raises `fire_line_fault` (critical), the line is treated
as a fire (the turnstile held released, the siren on); sound again, `fire_line_recovered` and the
turnstile locks once the fire release's hold has passed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gate_helpers import camera_of, demo_root
from support import gate_config as shared
from support.wait import poll_until

from drivers.emulators.relay import ModbusSim
from edge.config import load_config
from edge.gate import Gate
from edge.store import AlarmRecord


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "fire-line")




def _config(prepared: Path, tmp: Path, sim: ModbusSim) -> Path:
    relay = (f'type = "modbus_rtu"\nport = "{sim.path}"\npass_input = 0\ndoor_input = 1\nfire_eol_register = 0\n'
             'siren_coil = 1\ninput_poll_s = 0.02\nfire_release_s = 0.5')
    return shared.gate_config(tmp, camera_of(prepared, tmp, None), store_from=prepared, relay=relay)


def _until(gate: Gate, cond: Callable[[], object], timeout: float = 30.0) -> bool:
    def checked() -> bool:
        gate.check()  # the supervisor's pass, as `gate run` makes it once a second
        return bool(cond())
    return poll_until(checked, timeout, every=0.05)


def _stored(gate: Gate, kind: str) -> AlarmRecord | None:
    return next((a for a in gate.store.alarms(kind=kind, limit=10)), None)


@pytest.mark.slow
def test_a_cut_fire_line_is_alarmed_and_holds_the_turnstile_released(prepared: Path, tmp_path: Path,
                                                                      board: ModbusSim) -> None:
    gate = Gate(load_config(_config(prepared, tmp_path, board)))
    gate.start()
    try:
        relay = gate.relay
        assert _until(gate, lambda: relay.input_state("fire") is False and relay.input_state("fire_trouble") is False)
        assert not board.coils[0] and not board.coils[1] and _stored(gate, "fire_line_fault") is None
        board.cut_fire_line()
        assert _until(gate, lambda: _stored(gate, "fire_line_fault") is not None)
        fault = _stored(gate, "fire_line_fault")
        assert fault is not None and fault.severity == "critical"
        assert _until(gate, lambda: board.coils[1])  # the siren (always for fire_line_fault)
        assert relay.holds == frozenset({"fire"}) and board.coils[0]  # treated as a fire: held released
        gate.manual_open("guard", "a pulse while the line is cut")  # its end does not lock the turnstile
        assert _until(gate, lambda: not relay.pulsing)
        assert board.coils[0] and relay.holds == frozenset({"fire"}) and relay.input_state("fire_trouble") is True
        board.set_fire(False)  # the line repaired: the end-of-line reading is back to normal
        assert _until(gate, lambda: _stored(gate, "fire_line_recovered") is not None)
        recovered = _stored(gate, "fire_line_recovered")
        assert recovered is not None and recovered.severity == "info"
        assert _until(gate, lambda: not relay.holds and not board.coils[0])  # locked after fire_release_s
        assert _until(gate, lambda: _stored(gate, "fire_release_recovered") is not None)
    finally:
        gate.shutdown()
