"""GY-MCU90640: the MLX90640 32x24 thermal array on a UART module (115200 8N1 default, or 460800).

Frame (1544 bytes): 5A 5A, length 02 06 (little-endian 1538), 768 pixels as little-endian int16 /100 C
in 32x24 order starting at the upper-right corner, the ambient as int16 /100, then a checksum: the
16-bit sum of the first 771 little-endian words. Commands: A5 cmd data sum8 (query A5 35 01 DB,
stream A5 35 02 DC, frame rate A5 25 00..04, baud A5 15 code: 01 = 115200, 02 = 460800; the module's
03 is not used here, as we have no reliable statement of its speed). `GyMcu90640.set_module_baud`
(`gate drivers set-baud`) sends the baud command and reopens the port at the new speed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from drivers.thermal.decoder import FrameDecoder, HeaderFrameDecoder
from drivers.thermal.reading import FRAME_SHAPE, Frame, Sample
from drivers.thermal.serial_sensor import SerialThermalConfig, SerialThermalSensor

HEADER = b"\x5a\x5a\x02\x06"
FRAME_LEN = 1544
N_PIXELS = FRAME_SHAPE[0] * FRAME_SHAPE[1]
PIXEL_RANGE = (-40.0, 300.0)  # the MLX90640's measuring range
AMBIENT_RANGE = (-40.0, 125.0)


def command(cmd: int, data: int) -> bytes:
    """A module command: A5 cmd data sum8."""
    return bytes([0xA5, cmd, data, (0xA5 + cmd + data) & 0xFF])


CMD_QUERY = command(0x35, 0x01)
CMD_CONTINUOUS = command(0x35, 0x02)


def frame_rate_command(code: int) -> bytes:
    """A5 25 code: the module's frame rate setting, code 0..4."""
    if not 0 <= code <= 4:
        raise ValueError("frame rate code must be 0..4")
    return command(0x25, code)


BAUD_CODES = {115200: 0x01, 460800: 0x02}


def baud_command(baud: int) -> bytes:
    """A5 15 code: switch the module's UART to `baud` (115200 or 460800)."""
    if baud not in BAUD_CODES:
        raise ValueError(f"the GY-MCU90640 speaks 115200 or 460800 baud, not {baud}")
    return command(0x15, BAUD_CODES[baud])


def encode_frame(frame: Frame, ambient_c: float, flip_horizontal: bool = True) -> bytes:
    """The module's frame for a 24x32 image (row 0 = top, column 0 = left as the sensor sees it)."""
    pixels = np.asarray(frame, dtype=np.float64)
    if pixels.shape != FRAME_SHAPE:
        raise ValueError(f"frame must be {FRAME_SHAPE}, got {pixels.shape}")
    if flip_horizontal:
        pixels = pixels[:, ::-1]
    raw = np.clip(np.rint(pixels * 100), -32768, 32767).astype("<i2").tobytes()
    amb = round(ambient_c * 100).to_bytes(2, "little", signed=True)
    body = HEADER + raw + amb
    checksum = int(np.frombuffer(body, dtype="<u2").sum(dtype=np.uint64)) & 0xFFFF
    return body + checksum.to_bytes(2, "little")


class Mlx90640Decoder(HeaderFrameDecoder):
    """Streaming decoder for 1544-byte frames; resynchronises on the header after garbage."""

    header = HEADER
    frame_len = FRAME_LEN

    def __init__(self, flip_horizontal: bool = True) -> None:
        super().__init__()
        self.flip_horizontal = flip_horizontal

    def checksum_ok(self, frame: bytes) -> bool:
        words = np.frombuffer(frame, dtype="<u2")
        return int(words[:771].sum(dtype=np.uint64)) & 0xFFFF == int(words[771])

    def parse(self, frame: bytes) -> Sample | str:
        values = np.frombuffer(frame, dtype="<i2")[2:771].astype(np.float32) / np.float32(100)
        pixels = values[:N_PIXELS].reshape(FRAME_SHAPE)
        ambient = float(values[N_PIXELS])
        if not AMBIENT_RANGE[0] <= ambient <= AMBIENT_RANGE[1]:
            return f"ambient {ambient:.2f} C is outside the MLX90640's {AMBIENT_RANGE[0]:g}..{AMBIENT_RANGE[1]:g} C"
        lo, hi = float(pixels.min()), float(pixels.max())
        if lo < PIXEL_RANGE[0] or hi > PIXEL_RANGE[1]:  # one pixel out (e.g. 0x7FFF) and the frame is not used
            bad = int(np.count_nonzero((pixels < PIXEL_RANGE[0]) | (pixels > PIXEL_RANGE[1])))
            return (f"{bad} pixel(s) outside the MLX90640's {PIXEL_RANGE[0]:g}..{PIXEL_RANGE[1]:g} C "
                    f"(min {lo:.2f}, max {hi:.2f})")
        if self.flip_horizontal:
            pixels = pixels[:, ::-1]
        image = np.ascontiguousarray(pixels, dtype=np.float32)
        image.setflags(write=False)
        return Sample(object_c=float(image.max()), ambient_c=ambient, frame=image)


class GyMcu90640Config(SerialThermalConfig):
    type: Literal["gy_mcu90640"] = Field("gy_mcu90640", description="GY-MCU90640 32x24 thermal array (UART).")
    baud: Literal[115200, 460800] = Field(115200, description="Serial speed: 115200 (module default) or "
                                          "460800; `gate drivers set-baud` switches the module (A5 15 01/02).")
    mode: Literal["continuous", "query"] = Field("continuous", description="continuous: the module streams "
                                                 "after A5 35 02; query: the driver sends A5 35 01 each "
                                                 "poll.")
    query_interval_s: float = Field(0.25, gt=0, le=10, description="Time between queries in query mode.")
    frame_rate_code: int | None = Field(None, ge=0, le=4, description="Send A5 25 <code> at start to set the "
                                        "module's frame rate (0..4, see the module's manual); unset: leave "
                                        "it.")
    flip_horizontal: bool = Field(True, description="Pixels arrive starting at the upper-right corner "
                                                    "(module "
                                  "default); false for firmware that starts at the upper-left.")
    stale_after_s: float = Field(3.0, gt=0, le=600, description="Re-send the start command after this long "
                                 "without a good frame.")
    reopen_after_s: float = Field(8.0, gt=0, le=3600, description="Close and reopen the port after this long "
                                  "without a good frame.")


class GyMcu90640(SerialThermalSensor):
    """The array driver; a Reading's object_c is the frame maximum, frame is the 24x32 image."""

    kind = "gy_mcu90640"

    def __init__(self, cfg: GyMcu90640Config) -> None:
        self.gy_cfg = cfg
        super().__init__(cfg)
        self.poll_interval_s = cfg.query_interval_s

    def make_decoder(self) -> FrameDecoder:
        return Mlx90640Decoder(flip_horizontal=self.gy_cfg.flip_horizontal)

    def start_commands(self) -> list[bytes]:
        commands = []
        if self.gy_cfg.frame_rate_code is not None:
            commands.append(frame_rate_command(self.gy_cfg.frame_rate_code))
        if self.gy_cfg.mode == "continuous":
            commands.append(CMD_CONTINUOUS)
        return commands

    def poll_command(self) -> bytes | None:
        return CMD_QUERY if self.gy_cfg.mode == "query" else None

    def set_module_baud(self, baud: int, timeout: float = 3.0) -> bool:
        """Switch the module to `baud` (A5 15 01: 115200, 02: 460800) and reopen the port at that speed.
        True if good frames arrive at the new speed; otherwise the driver is back at the old speed (a
        module that applies the setting only after a power cycle answers there until then)."""
        return self.change_speed([baud_command(baud)], baud, timeout)
