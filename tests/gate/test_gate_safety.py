"""The lane's life-safety I/O in a real running Gate, on the Modbus board simulator (a pty, read by the
real driver; the board is the test's, so it outlives a gate and a second gate finds it as the first left
it): the fire input releases the turnstile within 200 ms, raises fire_release (and the siren), keeps it
released through a gate restart and locks again after it ends (fire_release_recovered); the exit button
is an event (grant, out, exit_button); the siren sounds for its configured time on a fever alarm and
not on a kind that is not configured; the normally-open schedule holds the turnstile."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gate_helpers import camera_of, demo_root
from support import gate_config as shared
from support.wait import poll_until

from drivers.emulators.relay import ModbusSim
from drivers.relay.modbus_rtu import ModbusRtuRelay
from edge.config import load_config
from edge.gate import Gate
from edge.records import AlarmRecord

LANE = '[lane]\nsiren_s = 0.5\nhold_open_schedule = {mon = [["07:00", "09:00"]]}\n'


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_root(tmp_path_factory, "safety")




def _config(prepared: Path, tmp: Path, sim: ModbusSim, fresh: bool = True) -> Path:
    relay = (f'type = "modbus_rtu"\nport = "{sim.path}"\npass_input = 0\ndoor_input = 1\nfire_input = 2\n'
             'exit_input = 3\nsiren_coil = 1\ninput_poll_s = 0.02\nfire_release_s = 0.5\nexit_pulse_ms = 300')
    camera = tmp / "camera-None"
    if not camera.exists():  # nobody at the camera (a second gate replays the same folder)
        camera_of(prepared, tmp, None)
    return shared.gate_config(tmp, camera, store_from=prepared, fresh=fresh, relay=relay, extra=LANE)


class Watched:
    def __init__(self, cfg: Path) -> None:
        self.gate = Gate(load_config(cfg))
        self.alarms: list[dict[str, Any]] = []
        self.gate.subscribe(lambda kind, payload: self.alarms.append(payload) if kind == "alarm" else None)

    def kinds(self) -> list[str]:
        return [str(a["kind"]) for a in self.alarms]

    def until(self, cond: Any, timeout: float = 30.0) -> bool:
        def checked() -> bool:
            self.gate.check()  # the supervisor's pass, as `gate run` makes it once a second
            return bool(cond())
        return poll_until(checked, timeout, every=0.05)


def _coil(sim: ModbusSim, n: int) -> list[tuple[float, bool]]:
    return [(c.t, c.on) for c in sim.log.changes if c.coil == n]


@pytest.mark.slow
def test_fire_releases_through_a_gate_restart(prepared: Path, tmp_path: Path, board: ModbusSim) -> None:
    first = Watched(_config(prepared, tmp_path, board))
    first.gate.start()
    try:
        assert first.until(lambda: first.gate.relay.input_state("fire") is False)
        t_fire = board.set_fire(True)
        assert poll_until(lambda: board.coils[0], 5)  # the driver's worker: no supervisor pass needed
        latency = next(t for t, on in _coil(board, 0) if on) - t_fire
        print(f"gate: fire input -> coil on {latency * 1000:.1f} ms")
        assert latency < 0.2
        assert first.until(lambda: "fire_release" in first.kinds() and board.coils[1])  # alarm, siren (always)
        alarm = next(a for a in first.alarms if a["kind"] == "fire_release")
        assert alarm["severity"] == "critical"
        first.gate.manual_open("guard", "a pulse during the fire")  # no decision can close it
        assert first.until(lambda: not first.gate.relay.pulsing)
        assert board.coils[0]
    finally:
        first.gate.shutdown()
    assert board.coils[0]  # the gate stopped during the fire: released
    second = Watched(_config(prepared, tmp_path, board, fresh=False))
    second.gate.start()  # restarted while the fire is still active
    try:
        assert second.gate.relay.state and second.gate.relay.holds == {"fire"}
        assert second.until(lambda: "fire_release" in second.kinds())
        assert [on for _, on in _coil(board, 0)] == [True]  # never locked in between
        relay: Any = second.gate.relay
        board.trigger_pass(width_s=0.1)  # people walk out through the released turnstile: no tailgating
        polls = relay.polls
        assert second.until(lambda: relay.polls > polls + 10 and not board.inputs()[0])
        second.gate.check()
        board.set_fire(False)
        assert second.until(lambda: "fire_release_recovered" in second.kinds() and not board.coils[0], 10)
        assert "passage_without_grant" not in second.kinds()
        released = time.monotonic()
        assert second.until(lambda: time.monotonic() > released + 2.5)  # past the held turnstile's grace
        board.trigger_pass(width_s=0.1)  # a passage once it is locked again is one without a grant
        assert second.until(lambda: "passage_without_grant" in second.kinds())
        store = second.gate.store  # both gates' alarms, in the one store file
        assert second.until(lambda: {"fire_release", "fire_release_recovered"}
                            <= {a.kind for a in store.alarms(limit=100)})
    finally:
        second.gate.shutdown()


@pytest.mark.slow
def test_exit_button_siren_and_schedule(prepared: Path, tmp_path: Path, board: ModbusSim) -> None:
    w = Watched(_config(prepared, tmp_path, board))
    gate = w.gate
    gate.start()
    try:
        assert w.until(lambda: gate.relay.input_state("exit") is False)
        board.press_exit(0.1)
        assert w.until(lambda: any(r.get("code") == "exit_button" for e in gate.store.events(limit=20)
                                   for r in e.reasons))
        event = next(e for e in gate.store.events(limit=20) if e.reasons[0]["code"] == "exit_button")
        assert event.direction == "out" and event.decision == "grant" and event.person_id is None
        assert _coil(board, 0)[0][1]  # the driver pulsed the turnstile for the press
        assert w.until(lambda: not gate.relay.pulsing and not board.coils[0])
        # the siren: a stranger (not a configured kind) does not sound it: the siren is decided as the alarm
        # is published, and the relay worker writes a request within a poll, so three polls later it would
        # have switched coil 1 (counted in the driver's polls: no assumption about the machine's speed)
        relay = gate.relay
        assert isinstance(relay, ModbusRtuRelay)
        gate.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="stranger", severity="warning", message="x",
                                      gate_id="south-1"))
        polls = relay.polls
        assert w.until(lambda: relay.polls >= polls + 3)
        assert _coil(board, 1) == [] and not relay.siren_on
        # a fever alarm (a configured kind) sounds it for siren_s
        gate.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind="fever", severity="high", message="38.4",
                                      gate_id="south-1"))
        assert w.until(lambda: len(_coil(board, 1)) >= 2, 10)
        (on_t, on), (off_t, off) = _coil(board, 1)[:2]
        assert on and not off and 0.45 <= off_t - on_t < 1.5
        assert len(_coil(board, 1)) == 2  # one sounding: the stranger alarm did not start another
        # the normally-open schedule (Monday 07:00-09:00 local time): held inside, released after
        monday_0730 = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)
        gate.safety.check([], now=monday_0730)
        assert poll_until(lambda: board.coils[0], 5) and gate.safety.snapshot()["scheduled_open"]
        gate.safety.check([], now=monday_0730.replace(hour=9, minute=1))
        assert poll_until(lambda: not board.coils[0], 5)
        assert w.until(lambda: [e.action for e in gate.store.audit_entries(limit=50)].count("hold_open_schedule")
                       == 2)
    finally:
        gate.shutdown()
