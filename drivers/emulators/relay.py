"""Relay board simulators on a real pty: an LCUS-1 board and a Modbus RTU relay board with inputs.

The LCUS sim keeps channel states from valid `A0 ch state sum` frames and ignores anything else. The
Modbus sim answers functions 01 (coils), 02 (discrete inputs), 04 (input registers) and 05 (write coil)
for its address,
with exception replies for the rest, and models a turnstile: scenario `normal` raises the PASS input
shortly after the relay coil switches on (a person walks through), `no_pass` never does (granted, not
passed), `tailgate` also raises PASS with no grant, `garbage` corrupts some replies, `unplug` makes
the board vanish and come back. `reply_delay_s` makes the Modbus board answer late, as a slow board
(or a long RS-485 line at a low speed) does. Everything the board received is recorded for tests.

The Modbus board's life-safety wiring (what the demo and tests press): discrete input `fire_input` is an
NC fire contact (closed, reading 1, until `set_fire(True)` opens it), `exit_input` the exit button
(`press_exit()`), input register 0 the fire line's end-of-line reading (EOL_NORMAL, EOL_FIRE on fire,
EOL_CUT after `cut_fire_line()`); coil 1 is the siren relay (its switching is in `log.changes`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from drivers.emulators.pty import PtyDevice

log = logging.getLogger(__name__)

RelaySimKind = Literal["lcus", "modbus"]
RelayScenario = Literal["normal", "no_pass", "tailgate", "garbage", "unplug"]
RELAY_KINDS: tuple[str, ...] = get_args(RelaySimKind)
RELAY_SCENARIOS: tuple[str, ...] = get_args(RelayScenario)


def _crc(data: bytes) -> bytes:
    # minimalmodbus's CRC-16/MODBUS (its framing helper, used here to build replies); imported here, so
    # importing the emulator (as the `sim` relay driver and `gate --help` do) does not load minimalmodbus
    import minimalmodbus

    crc: bytes = minimalmodbus._calculate_crc(data)
    return crc


EOL_NORMAL, EOL_FIRE, EOL_CUT = 600, 250, 4095  # end-of-line readings (the driver's default bands)


@dataclass
class RelayTiming:
    pass_delay_s: float = 0.3  # coil on -> PASS input active (normal scenario)
    pass_width_s: float = 0.2
    door_hold_s: float = 0.2  # the door sensor stays active this long after PASS ends
    tailgate_every_s: float = 2.0
    unplug_after_s: float = 2.0
    unplug_for_s: float = 1.0
    corrupt_every: int = 3  # garbage: every n-th reply is corrupted


@dataclass
class CoilChange:
    t: float
    coil: int
    on: bool


@dataclass
class RelayLog:
    frames: list[bytes] = field(default_factory=list)  # valid requests, as received
    bad_frames: int = 0
    changes: list[CoilChange] = field(default_factory=list)
    passes: int = 0


class _Pulse:
    def __init__(self, start: float, width: float) -> None:
        self.start, self.end = start, start + width


class RelaySim(PtyDevice):
    """Shared scenario clock (unplug) for the board simulators."""

    def __init__(self, kind: str, scenario: str, *, link: str | Path | None, timing: RelayTiming | None,
                 seed: int) -> None:
        if scenario not in RELAY_SCENARIOS:
            raise ValueError(f"unknown relay scenario {scenario!r} (one of {', '.join(RELAY_SCENARIOS)})")
        super().__init__(link=link, name=f"{kind}-sim")
        if scenario == "unplug":
            self.use_auto_link()
        self.scenario = scenario
        self.timing = timing or RelayTiming()
        self.log = RelayLog()
        self._rng = random.Random(seed)
        self._phase_t: float | None = None

    def changed(self, now: float, channel: int, on: bool) -> None:
        """Record (and log, for a simulator run as its own process) a relay switching."""
        self.log.changes.append(CoilChange(now, channel, on))
        log.info("%s: relay %d %s", self.name, channel, "ON" if on else "OFF")

    def tick(self, now: float) -> None:
        if self._phase_t is None:
            self._phase_t = now
        if self.scenario != "unplug":
            return
        if self.plugged and now - self._phase_t >= self.timing.unplug_after_s:
            self.unplug()
            self._phase_t = now
        elif not self.plugged and now - self._phase_t >= self.timing.unplug_for_s:
            self.plug()
            self._phase_t = now


class LcusSim(RelaySim):
    def __init__(self, scenario: str = "normal", *, channels: int = 1, link: str | Path | None = None,
                 timing: RelayTiming | None = None, seed: int = 0) -> None:
        super().__init__("lcus", scenario, link=link, timing=timing, seed=seed)
        self.channels = [False] * channels
        self._buf = bytearray()

    def coil(self, channel: int = 1) -> bool:
        return self.channels[channel - 1]

    def handle(self, data: bytes, now: float) -> None:
        self._buf += data
        while len(self._buf) >= 4:
            frame = bytes(self._buf[:4])
            if frame[0] != 0xA0 or sum(frame[:3]) & 0xFF != frame[3] or frame[2] > 1 \
                    or not 1 <= frame[1] <= len(self.channels):
                self.log.bad_frames += 1
                del self._buf[0]
                continue
            del self._buf[:4]
            self.log.frames.append(frame)
            on = frame[2] == 1
            if self.channels[frame[1] - 1] != on:
                self.changed(now, frame[1], on)
            self.channels[frame[1] - 1] = on


class ModbusSim(RelaySim):
    """A Modbus RTU relay board with `coils` relays and `inputs` discrete inputs."""

    def __init__(self, scenario: str = "normal", *, slave: int = 1, coils: int = 4, inputs: int = 4,
                 pass_input: int = 0, door_input: int = 1, fire_input: int = 2, exit_input: int = 3,
                 link: str | Path | None = None, timing: RelayTiming | None = None, seed: int = 0) -> None:
        super().__init__("modbus", scenario, link=link, timing=timing, seed=seed)
        self.slave = slave
        self.coils = [False] * coils
        self.forced_inputs = [False] * inputs
        self.pass_input, self.door_input = pass_input, door_input
        self.fire_input, self.exit_input = fire_input, exit_input
        self.turnstile_coil = 0  # only this coil turns the turnstile (coil 1 is the siren)
        self.fire_closed = True  # the NC fire contact: closed while there is no fire
        self.input_registers = [EOL_NORMAL, 0, 0, 0]
        self.fire_changes: list[tuple[float, bool]] = []  # (time.monotonic(), fire active) of each change
        self._exits: list[_Pulse] = []
        self.stuck = False  # a welded or broken relay: writes are acknowledged, the coil does not change
        self.reply_delay_s = 0.0  # time from a request to the board's reply
        self._outbox: list[tuple[float, bytes]] = []
        self._pulses: list[_Pulse] = []
        self._buf = bytearray()
        self._last_byte = 0.0
        self._replies = 0
        self._lock = threading.Lock()

    # -- the turnstile ------------------------------------------------------------------------
    def trigger_pass(self, delay_s: float = 0.0, width_s: float | None = None) -> None:
        """Somebody walks through (granted or not) after `delay_s`."""
        now = time.monotonic()
        with self._lock:
            self._pulses.append(_Pulse(now + delay_s, width_s or self.timing.pass_width_s))
        self.log.passes += 1

    def set_fire(self, active: bool) -> float:
        """The fire panel opens (fire) or closes its NC contact; the end-of-line reading follows. Returns
        the time of the change."""
        with self._lock:
            now = time.monotonic()
            self.fire_closed = not active
            self.input_registers[0] = EOL_FIRE if active else EOL_NORMAL
            self.fire_changes.append((now, active))
        return now

    def cut_fire_line(self) -> float:
        """The supervised fire line is cut: the end-of-line reading goes to full scale."""
        with self._lock:
            self.input_registers[0] = EOL_CUT
            return time.monotonic()

    def press_exit(self, width_s: float = 0.2) -> None:
        """Somebody presses the exit button for `width_s`."""
        with self._lock:
            self._exits.append(_Pulse(time.monotonic(), width_s))

    def inputs(self, now: float | None = None) -> list[bool]:
        now = time.monotonic() if now is None else now
        values = list(self.forced_inputs)
        with self._lock:
            if self.fire_input < len(values):
                values[self.fire_input] = self.fire_closed or values[self.fire_input]
            self._exits = [p for p in self._exits if now < p.end]
            if self._exits and self.exit_input < len(values):
                values[self.exit_input] = any(p.start <= now for p in self._exits)
            self._pulses = [p for p in self._pulses if now < p.end + self.timing.door_hold_s + 1]
            for p in self._pulses:
                if p.start <= now < p.end:
                    values[self.pass_input] = True
                if p.start <= now < p.end + self.timing.door_hold_s and self.door_input < len(values):
                    values[self.door_input] = True
        return values

    def tick(self, now: float) -> None:
        super().tick(now)
        if self.scenario == "tailgate" and self._phase_t is not None \
                and now - self._phase_t >= self.timing.tailgate_every_s:
            self._phase_t = now
            self.trigger_pass()
        if self._buf and now - self._last_byte > 0.05:  # RTU: a silent gap ends a (broken) frame
            self.log.bad_frames += 1
            self._buf.clear()
        while self._outbox and self._outbox[0][0] <= now:
            self.write(self._outbox.pop(0)[1])

    # -- protocol -----------------------------------------------------------------------------
    @staticmethod
    def _request_len(buf: bytearray) -> int:
        fn = buf[1]
        if fn in (15, 16):
            return 9 + buf[6] if len(buf) >= 7 else 10_000
        return 8

    def handle(self, data: bytes, now: float) -> None:
        self._buf += data
        self._last_byte = now
        while len(self._buf) >= 8:
            size = self._request_len(self._buf)
            if len(self._buf) < size:
                return
            frame = bytes(self._buf[:size])
            if _crc(frame[:-2]) != frame[-2:]:
                self.log.bad_frames += 1
                del self._buf[0]
                continue
            del self._buf[:size]
            if frame[0] != self.slave:
                continue
            self.log.frames.append(frame)
            reply = self._answer(frame, now)
            self._send(reply)

    def _send(self, pdu: bytes) -> None:
        adu = bytes([self.slave]) + pdu
        adu += _crc(adu)
        self._replies += 1
        if self.scenario == "garbage" and self._replies % self.timing.corrupt_every == 0:
            broken = bytearray(adu)
            broken[self._rng.randrange(len(broken))] ^= 0x10
            adu = bytes(broken)
        if self.reply_delay_s > 0:
            self._outbox.append((time.monotonic() + self.reply_delay_s, adu))
        else:
            self.write(adu)

    def _answer(self, frame: bytes, now: float) -> bytes:
        fn = frame[1]
        addr = int.from_bytes(frame[2:4], "big")
        if fn == 4:
            count = int.from_bytes(frame[4:6], "big")
            if not 1 <= count <= 125:
                return bytes([fn | 0x80, 3])
            if addr + count > len(self.input_registers):
                return bytes([fn | 0x80, 2])
            with self._lock:
                regs = self.input_registers[addr:addr + count]
            return bytes([fn, 2 * count]) + b"".join(r.to_bytes(2, "big") for r in regs)
        if fn in (1, 2):
            count = int.from_bytes(frame[4:6], "big")
            table = self.coils if fn == 1 else self.inputs(now)
            if not 1 <= count <= 2000:
                return bytes([fn | 0x80, 3])
            if addr + count > len(table):
                return bytes([fn | 0x80, 2])
            bits = table[addr:addr + count]
            packed = bytearray((count + 7) // 8)
            for i, bit in enumerate(bits):
                if bit:
                    packed[i // 8] |= 1 << (i % 8)
            return bytes([fn, len(packed)]) + bytes(packed)
        if fn == 5:
            value = frame[4:6]
            if value not in (b"\xff\x00", b"\x00\x00"):
                return bytes([fn | 0x80, 3])
            if addr >= len(self.coils):
                return bytes([fn | 0x80, 2])
            on = value == b"\xff\x00"
            if self.stuck:
                return frame[1:6]
            if self.coils[addr] != on:
                self.changed(now, addr, on)
                if on and addr == self.turnstile_coil and self.scenario in ("normal", "tailgate", "unplug", "garbage"):
                    self.trigger_pass(self.timing.pass_delay_s)
            self.coils[addr] = on
            return frame[1:6]
        return bytes([fn | 0x80, 1])


def make_relay_sim(kind: str, scenario: str = "normal", *, link: str | Path | None = None,
                   timing: RelayTiming | None = None, seed: int = 0) -> LcusSim | ModbusSim:
    if kind == "lcus":
        return LcusSim(scenario, channels=2, link=link, timing=timing, seed=seed)  # channel 2: the siren
    if kind == "modbus":
        return ModbusSim(scenario, link=link, timing=timing, seed=seed)
    raise ValueError(f"unknown relay sim kind {kind!r} (one of {', '.join(RELAY_KINDS)})")


CONTROL_HELP = "fire | fire off | cut | exit | pass (modbus boards; one per line)"


def control(sim: RelaySim, line: str) -> str:
    """One typed command for a running simulator (`gate sim relay --control`): what happened, in words."""
    words = line.strip().lower().split()
    if not words:
        return ""
    if not isinstance(sim, ModbusSim):
        return f"{words[0]}: only the modbus board has inputs (the LCUS board has outputs only)"
    if words == ["pass"]:
        sim.trigger_pass()
        return "somebody walks through"
    if words == ["fire"] or words == ["fire", "on"]:
        sim.set_fire(True)
        return "fire panel: FIRE (contact open)"
    if words == ["fire", "off"]:
        sim.set_fire(False)
        return "fire panel: normal"
    if words == ["cut"]:
        sim.cut_fire_line()
        return "fire line cut (end-of-line reading at full scale)"
    if words == ["exit"]:
        sim.press_exit()
        return "exit button pressed"
    return f"unknown command {line.strip()!r}; try: {CONTROL_HELP}"


def run_relay_sim(kind: str = "modbus", scenario: str = "normal", *, link: str | Path | None = None,
                  seed: int = 0, stop: threading.Event | None = None,
                  announce: Callable[[str], None] = print, commands: Iterable[str] | None = None) -> None:
    """Serve a relay board simulator on a new pty until `stop` is set; `announce` gets the path. Lines of
    `commands` (e.g. standard input) press the board's inputs as they come (see `control`)."""
    sim = make_relay_sim(kind, scenario, link=link, seed=seed)
    stop = stop or threading.Event()
    sim.plug()
    announce(sim.path)
    if commands is not None:
        def read() -> None:
            for line in commands:
                answer = control(sim, line)
                if answer:
                    announce(answer)
                if stop.is_set():
                    return

        threading.Thread(target=read, name="relay-sim-control", daemon=True).start()
    try:
        sim.serve_forever(stop)
    finally:
        sim.stop()
