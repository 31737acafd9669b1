"""Thermal sensor simulators speaking the modules' exact byte protocols on a real pty.

Kinds: gy_mcu90614 (spot), gy_mcu90640 (32x24 array, renders a face scene), ascii_line. Scenarios:
normal, fever, noise (value noise + corrupted frames), dropouts (periodic silence), garbage (junk bytes
and truncated frames between frames), unplug (the pty vanishes and a new one appears behind the same
link; the module then waits for its start command again), hang (stops answering, then resets),
photo (a printed photo or phone screen: no warm face), error_value (every `corrupt_every`-th frame carries
the module's error word 0x7FFF = 327.67 C, with a correct checksum). `queue_error_frames(n)` makes the
next n frames such frames in any scenario. Like the modules, the binary kinds stream only after the
continuous command and answer a query with one frame.

For installer calibration (`gate calibrate thermal`) a scene can hold a reference target of known true
temperature in front of a spot sensor (`target_c`: a blackbody, read instead of the forehead) and a
sensor error: every object value the sensor reports is off by `error_offset_c` plus `error_ambient_slope`
degrees per degree the room is above `error_reference_ambient_c`. For the array, `warm_target` puts a
warm spot (a lamp) at fractional thermal pixel coordinates (`face_present = False`: nobody in view); a
test places it where a known affine map sends the camera position of the same target.

The gy_mcu90640 kind has a UART speed (`baud`, 115200 by default) and obeys the baud command A5 15
01/02 (115200/460800), at once or, with `baud_applies="power_cycle"`, only after the next unplug and
replug; it keeps the setting across power cycles. While the driver's side of the pty is set to another
speed (see PtyDevice.line_baud) the module neither understands commands nor sends frames the driver
can decode: it sends junk instead, as a UART at the wrong speed receives.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from drivers.emulators.pty import PtyDevice
from drivers.thermal import gy_mcu90614, gy_mcu90640
from drivers.thermal.reading import FRAME_SHAPE, Frame

log = logging.getLogger(__name__)

SimKind = Literal["gy_mcu90614", "gy_mcu90640", "ascii_line"]
Scenario = Literal["normal", "fever", "noise", "dropouts", "garbage", "unplug", "hang", "photo", "error_value"]
KINDS: tuple[str, ...] = get_args(SimKind)
SCENARIOS: tuple[str, ...] = get_args(Scenario)
DEFAULT_RATE_HZ = {"gy_mcu90614": 10.0, "gy_mcu90640": 4.0, "ascii_line": 10.0}
# Digits, sign, point and newline never appear in ASCII garbage, so junk cannot spell a reading.
_ASCII_JUNK = bytes(b for b in range(256) if b not in b"0123456789+-.\n")
# What a UART at the wrong speed makes of a frame: bytes, but never the 90640's header byte.
_SPEED_JUNK = bytes(b for b in range(256) if b != 0x5A)
BAUD_CODES = {code: baud for baud, code in gy_mcu90640.BAUD_CODES.items()}
ERROR_C = 0x7FFF / 100  # 327.67 C: the GY-MCU modules' error/saturation word, as a temperature


@dataclass
class Scene:
    """What the sensor looks at. Coordinates are thermal pixels: (column, row), row 0 at the top."""

    ambient_c: float = 24.0
    skin_c: float = 34.6  # forehead skin seen by a spot sensor; fever scenario adds fever_delta_c
    canthus_c: float = 36.5  # inner eye corner, the warmest skin
    fever_delta_c: float = 1.7
    face_center: tuple[float, float] = (16.0, 12.0)
    face_half_size: tuple[float, float] = (4.5, 6.0)  # half width, half height
    blackbody: tuple[int, int, int, int] | None = None  # x, y, w, h
    blackbody_c: float = 35.0
    drift_c: float = 0.0  # sensor offset drift: added to everything the sensor reports
    hot_object: tuple[int, int, int, int] | None = None  # e.g. a lamp in the background
    hot_object_c: float = 45.0
    pixel_noise_c: float = 0.08
    target_c: float | None = None  # a reference target (blackbody) the spot sensor reads instead of the skin
    error_offset_c: float = 0.0  # the sensor's own error at error_reference_ambient_c
    error_ambient_slope: float = 0.0  # its change per degree the room is above error_reference_ambient_c
    error_reference_ambient_c: float = 24.0
    warm_target: tuple[float, float] | None = None  # (col, row) of a warm spot seen by the array
    warm_target_c: float = 40.0
    warm_target_sigma_px: float = 0.8
    face_present: bool = True  # false: nobody in front of the array (calibration with a warm target)

    def sensor_error_c(self) -> float:
        """What the sensor adds to a true object temperature at this scene's ambient."""
        return self.error_offset_c + self.error_ambient_slope * (self.ambient_c - self.error_reference_ambient_c)


@dataclass
class Timing:
    """Scenario clock; the defaults suit a demo, tests shorten them."""

    dropout_period_s: float = 3.0
    dropout_s: float = 1.0
    unplug_after_s: float = 2.0
    unplug_for_s: float = 1.0
    corrupt_every: int = 3  # noise: every n-th frame has one byte corrupted
    value_noise_c: float = 0.4  # noise: standard deviation added to values


def eye_geometry(scene: Scene) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Left and right inner-canthus positions (col, row) and the eye row, for a face in `scene`."""
    cx, cy = scene.face_center
    _, hh = scene.face_half_size
    eye_row = cy - hh / 3
    return (cx - 1.0, eye_row), (cx + 1.0, eye_row), eye_row


def render_frame(scene: Scene, *, face: bool = True, fever: bool = False, photo: bool = False,
                 rng: np.random.Generator | None = None) -> Frame:
    """A plausible 24x32 MLX90640 image (degrees C): background, a face blob, optional extras."""
    rows, cols = np.mgrid[0:FRAME_SHAPE[0], 0:FRAME_SHAPE[1]].astype(np.float64)
    img = scene.ambient_c + 0.6 * (rows / FRAME_SHAPE[0]) - 0.3  # a wall, a little warmer near the floor
    cx, cy = scene.face_center
    hw, hh = scene.face_half_size
    inside = ((cols - cx) / hw) ** 2 + ((rows - cy) / hh) ** 2
    face_mask = inside <= 1.0
    if face and scene.face_present and not photo:
        delta = scene.fever_delta_c if fever else 0.0
        centre = 35.2 + delta
        edge = 34.0 + delta
        skin = centre - (centre - edge) * np.clip(inside, 0, 1)
        hair = rows < cy - 0.7 * hh
        skin = np.where(hair, 30.0 + delta / 2, skin)
        img = np.where(face_mask, skin, img)
        canthus = scene.canthus_c + delta
        for (ex, ey) in eye_geometry(scene)[:2]:
            g = np.exp(-(((cols - ex) ** 2 + (rows - ey) ** 2) / (2 * 0.55**2)))
            img = np.where(face_mask, np.maximum(img, img + (canthus - img) * g), img)
    elif photo:
        # paper or glass sits at room temperature: a faint pattern, no warm face
        img = np.where(face_mask, scene.ambient_c + 0.4 - 0.2 * np.clip(inside, 0, 1), img)
    if scene.hot_object is not None:
        x, y, w, h = scene.hot_object
        img[y:y + h, x:x + w] = scene.hot_object_c
    if scene.blackbody is not None:
        x, y, w, h = scene.blackbody
        img[y:y + h, x:x + w] = scene.blackbody_c
    if scene.warm_target is not None:
        tx, ty = scene.warm_target
        g = np.exp(-(((cols - tx) ** 2 + (rows - ty) ** 2) / (2 * scene.warm_target_sigma_px**2)))
        img = img + (scene.warm_target_c - img) * g
    img = img + scene.drift_c + scene.sensor_error_c()
    if rng is not None and scene.pixel_noise_c > 0:
        img = img + rng.normal(0.0, scene.pixel_noise_c, img.shape)
    out: Frame = img.astype(np.float32)
    return out


@dataclass
class SentLog:
    """What the simulator did, for tests to assert on."""

    frames: int = 0
    corrupted: int = 0
    error_frames: int = 0  # frames sent with the module's error word (a good checksum)
    garbage_bytes: int = 0
    commands: list[bytes] = field(default_factory=list)
    baud_changes: list[int] = field(default_factory=list)  # speeds the module was told to use
    wrong_speed_frames: int = 0  # frames sent as junk because the driver's line was at another speed
    wrong_speed_reads: int = 0  # driver bytes not understood for the same reason


class ThermalSim(PtyDevice):
    """One simulated thermal module on a pty."""

    def __init__(self, kind: str = "gy_mcu90614", scenario: str = "normal", *, link: str | Path | None = None,
                 rate_hz: float | None = None, seed: int = 0, scene: Scene | None = None,
                 timing: Timing | None = None, autostream: bool = False,
                 ascii_format: str = "{object:.2f}\n",
                 fever_windows: tuple[tuple[float, float], ...] = (), schedule_period_s: float | None = None,
                 baud: int | None = None, baud_applies: Literal["now", "power_cycle"] = "now") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown thermal sim kind {kind!r} (one of {', '.join(KINDS)})")
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
        if scenario == "error_value" and kind == "ascii_line":
            raise ValueError("error_value: a line sensor has no error word (only the gy_mcu kinds)")
        super().__init__(link=link, name=f"{kind}-sim")
        if scenario == "unplug":
            self.use_auto_link()
        self.kind = kind
        self.scenario = scenario
        self.rate_hz = rate_hz or DEFAULT_RATE_HZ[kind]
        self.scene = scene or Scene()
        self.timing = timing or Timing()
        self.autostream = autostream or kind == "ascii_line"
        self.ascii_format = ascii_format
        self.streaming = self.autostream
        self.log = SentLog()
        self._rng = random.Random(seed)
        self._nprng = np.random.default_rng(seed)
        self._cmd = bytearray()
        self._t0: float | None = None
        self._phase_t = 0.0
        self._silent_until = 0.0
        self._next_frame = 0.0
        self.fever_windows = fever_windows
        self.schedule_period_s = schedule_period_s
        self._created = time.monotonic()
        # the module's UART speed (only the array kind models it: it has a baud command)
        self.baud = baud if baud is not None else 115200 if kind == "gy_mcu90640" else None
        self.stored_baud = self.baud  # what it will use after a power cycle
        self.baud_applies = baud_applies
        self._error_frames_due = 0  # queued by queue_error_frames (another thread): under _error_lock
        self._error_lock = threading.Lock()

    # -- what the module measures ---------------------------------------------------------------
    def fever_now(self, now: float | None = None) -> bool:
        """The fever scenario, or a scheduled fever window (seconds since creation, repeating every
        `schedule_period_s` when set): the person in front of the sensor runs a temperature."""
        if self.scenario == "fever":
            return True
        if not self.fever_windows:
            return False
        t = (now if now is not None else time.monotonic()) - self._created
        if self.schedule_period_s:
            t %= self.schedule_period_s
        return any(start <= t < end for start, end in self.fever_windows)

    def _values(self) -> tuple[float, float]:
        s = self.scene
        obj = s.skin_c + (s.fever_delta_c if self.fever_now() else 0.0)
        if self.scenario == "photo":
            obj = s.ambient_c + 0.4
        if s.target_c is not None:
            obj = s.target_c
        noise = self.timing.value_noise_c if self.scenario == "noise" else 0.05
        return obj + self._rng.gauss(0, noise) + s.drift_c + s.sensor_error_c(), s.ambient_c + s.drift_c

    def make_frame(self) -> bytes:
        """The next frame as the module would send it (before any scenario corruption)."""
        obj, amb = self._values()
        if self.kind == "gy_mcu90614":
            return gy_mcu90614.encode_frame(obj, amb)
        if self.kind == "gy_mcu90640":
            img = render_frame(self.scene, fever=self.fever_now(), photo=self.scenario == "photo",
                               rng=self._nprng)
            return gy_mcu90640.encode_frame(img, amb)
        return self.ascii_format.format(object=obj, ambient=amb).encode("ascii")

    def queue_error_frames(self, count: int = 1) -> None:
        """Make the next `count` frames carry the module's error word 0x7FFF (327.67 C) with a correct
        checksum: as the object value (gy_mcu90614) or in one pixel (gy_mcu90640)."""
        if self.kind == "ascii_line":
            raise ValueError("a line sensor has no error word (only the gy_mcu kinds)")
        with self._error_lock:
            self._error_frames_due += count

    def make_error_frame(self) -> bytes:
        """A frame as the module sends it when it has no measurement: checksum right, value 0x7FFF."""
        _, amb = self._values()
        if self.kind == "gy_mcu90614":
            return gy_mcu90614.encode_frame(ERROR_C, amb)
        img = render_frame(self.scene, rng=self._nprng)
        img[0, 0] = ERROR_C  # one saturated pixel
        return gy_mcu90640.encode_frame(img, amb)

    def _error_frame_now(self) -> bool:
        with self._error_lock:
            if self._error_frames_due > 0:
                self._error_frames_due -= 1
                return True
        return self.scenario == "error_value" and (self.log.frames + 1) % self.timing.corrupt_every == 0

    def _corrupt(self, frame: bytes) -> bytes:
        data = bytearray(frame)
        if self.kind == "ascii_line":
            i = self._rng.randrange(max(1, len(data) - 1))
            data[i] = self._rng.choice(_ASCII_JUNK)
        else:
            i = self._rng.randrange(len(data))
            data[i] ^= 1 << self._rng.randrange(8)
        return bytes(data)

    def _garbage(self) -> bytes:
        n = self._rng.randint(1, 40)
        if self.kind == "ascii_line":
            junk = bytes(self._rng.choice(_ASCII_JUNK) for _ in range(n))
            return junk + (b"\n" if self._rng.random() < 0.5 else b"")
        junk = bytes(self._rng.randrange(256) for _ in range(n))
        if self._rng.random() < 0.3:  # a frame cut short, as after a glitch on the line
            partial = self.make_frame()
            junk += partial[: self._rng.randrange(1, len(partial))]
        return junk

    # -- protocol -------------------------------------------------------------------------------
    def plug(self) -> None:
        """Plug in (again): a module that was off comes up at its stored speed."""
        if not self.plugged:
            self.baud = self.stored_baud
        super().plug()

    def speed_ok(self) -> bool:
        """The driver's side of the pty is at the module's speed (or the speed is not modelled)."""
        line = self.line_baud()
        return self.baud is None or line is None or line == self.baud

    def handle(self, data: bytes, now: float) -> None:
        if self.kind == "ascii_line" or now < self._silent_until:
            return
        if not self.speed_ok():
            self.log.wrong_speed_reads += len(data)
            return
        self._cmd += data
        size = 3 if self.kind == "gy_mcu90614" else 4
        while len(self._cmd) >= size:
            if self._cmd[0] != 0xA5 or sum(self._cmd[: size - 1]) & 0xFF != self._cmd[size - 1]:
                del self._cmd[0]
                continue
            cmd = bytes(self._cmd[:size])
            del self._cmd[:size]
            self.log.commands.append(cmd)
            self._command(cmd, now)

    def _command(self, cmd: bytes, now: float) -> None:
        if cmd in (gy_mcu90614.CMD_CONTINUOUS, gy_mcu90640.CMD_CONTINUOUS):
            self.streaming = True
            self._next_frame = now
        elif cmd in (gy_mcu90614.CMD_QUERY, gy_mcu90640.CMD_QUERY):
            self._emit(now)
        elif self.kind == "gy_mcu90640" and cmd[1] == 0x25 and cmd[2] <= 4:
            self.rate_hz = (0.5, 1.0, 2.0, 4.0, 8.0)[cmd[2]]
        elif self.kind == "gy_mcu90640" and cmd[1] == 0x15 and cmd[2] in BAUD_CODES:
            self.stored_baud = BAUD_CODES[cmd[2]]
            self.log.baud_changes.append(self.stored_baud)
            if self.baud_applies == "now":
                self.baud = self.stored_baud
            log.info("%s: baud %s (%s)", self.name, self.stored_baud,
                     "now" if self.baud_applies == "now" else "after a power cycle")
        else:
            log.debug("%s: command %s recorded", self.name, cmd.hex(" "))

    def _emit(self, now: float) -> None:
        if self._dropped_out(now):
            return
        out = b""
        if self.scenario == "garbage" and self._rng.random() < 0.6:
            junk = self._garbage()
            self.log.garbage_bytes += len(junk)
            out += junk
        if self._error_frame_now():
            frame = self.make_error_frame()
            self.log.error_frames += 1
        else:
            frame = self.make_frame()
        if self.scenario == "noise" and (self.log.frames + 1) % self.timing.corrupt_every == 0:
            frame = self._corrupt(frame)
            self.log.corrupted += 1
        self.log.frames += 1
        if not self.speed_ok():
            frame = bytes(self._rng.choice(_SPEED_JUNK) for _ in range(len(frame) // 2))
            self.log.wrong_speed_frames += 1
        self.write(out + frame)

    def _dropped_out(self, now: float) -> bool:
        if self.scenario != "dropouts" or self._t0 is None:
            return False
        period = self.timing.dropout_period_s
        return (now - self._t0) % period >= period - self.timing.dropout_s

    def tick(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = self._phase_t = now
        t = self.timing
        if self.scenario in ("unplug", "hang"):
            if self.plugged and now < self._silent_until:
                return
            if self.scenario == "hang" and self._silent_until and now >= self._silent_until:
                self._silent_until = 0.0
                self._phase_t = now
                self.streaming = self.autostream  # the module reset itself
            if self.plugged and now - self._phase_t >= t.unplug_after_s:
                if self.scenario == "unplug":
                    self.unplug()
                else:
                    self._silent_until = now + t.unplug_for_s
                self._phase_t = now
                return
            if not self.plugged:
                if now - self._phase_t >= t.unplug_for_s:
                    self.plug()
                    self._phase_t = now
                    self.streaming = self.autostream  # power-cycled: waits for its start command
                    self._cmd.clear()
                return
        if self.streaming and now >= self._next_frame:
            self._emit(now)
            self._next_frame = max(self._next_frame + 1.0 / self.rate_hz, now)


def run_thermal_sim(kind: str = "gy_mcu90614", scenario: str = "normal", *, link: str | Path | None = None,
                    rate_hz: float | None = None, seed: int = 0, stop: threading.Event | None = None,
                    announce: Callable[[str], None] = print, scene: Scene | None = None) -> None:
    """Serve a thermal simulator on a new pty until `stop` is set; `announce` gets the path to open."""
    sim = ThermalSim(kind, scenario, link=link, rate_hz=rate_hz, seed=seed, scene=scene)
    stop = stop or threading.Event()
    sim.plug()
    announce(sim.path)
    try:
        sim.serve_forever(stop)
    finally:
        sim.stop()
