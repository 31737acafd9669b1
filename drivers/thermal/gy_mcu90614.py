"""GY-MCU90614 / GY-MCU90615: single-spot IR thermometer modules on a UART (9600 8N1 by default).

Frame: 5A 5A 45 04 TOh TOl TAh TAl SUM; temperatures big-endian signed, /100 = degrees C; SUM is the
low byte of the sum of the first 8 bytes. Commands: A5 45 EA (stream continuously), A5 15 BA (query once).

The decoder is where a frame stops being bytes and becomes a measurement, so it is the one place that
knows what this device can measure: a frame whose checksum matches but whose object value lies outside
the MLX90614's datasheet range (-70..+380 C), whose ambient lies outside -40..+125 C, or which carries
the module's error word (0x7FFF = 327.67 C, what the module sends for a failed or saturated read) is
counted as implausible and never delivered, like a frame with a bad checksum. The body-temperature
range check in edge/temperature.py is a second, narrower wall, not this one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from drivers.thermal.decoder import FrameDecoder, HeaderFrameDecoder
from drivers.thermal.reading import Sample
from drivers.thermal.serial_sensor import SerialThermalConfig, SerialThermalSensor

HEADER = b"\x5a\x5a\x45\x04"
FRAME_LEN = 9
CMD_CONTINUOUS = b"\xa5\x45\xea"
CMD_QUERY = b"\xa5\x15\xba"
# What an MLX90614 measures (datasheet): a value outside is not a measurement even if its checksum matched.
OBJECT_RANGE = (-70.0, 380.0)
AMBIENT_RANGE = (-40.0, 125.0)
# The signed 16-bit word at its limits: 0x7FFF (327.67 C) is the module's error/saturation value, 0x8000
# its negative twin. Either one in a frame means the module had no measurement to send.
ERROR_WORDS = {0x7FFF: "0x7FFF", -0x8000: "0x8000"}


def encode_frame(object_c: float, ambient_c: float) -> bytes:
    """The module's frame for these temperatures (used by the simulator and the tests)."""
    body = HEADER + round(object_c * 100).to_bytes(2, "big", signed=True) \
        + round(ambient_c * 100).to_bytes(2, "big", signed=True)
    return body + bytes([sum(body) & 0xFF])


class Mlx90614Decoder(HeaderFrameDecoder):
    """Streaming decoder for 9-byte frames; resynchronises on the header after garbage."""

    header = HEADER
    frame_len = FRAME_LEN

    def __init__(self, object_range: tuple[float, float] = OBJECT_RANGE,
                 ambient_range: tuple[float, float] = AMBIENT_RANGE) -> None:
        super().__init__()
        self.object_range = object_range
        self.ambient_range = ambient_range

    def checksum_ok(self, frame: bytes) -> bool:
        return sum(frame[:8]) & 0xFF == frame[8]

    def parse(self, frame: bytes) -> Sample | str:
        words = {"object": int.from_bytes(frame[4:6], "big", signed=True),
                 "ambient": int.from_bytes(frame[6:8], "big", signed=True)}
        for name, word in words.items():
            if word in ERROR_WORDS:
                return f"{name} word {ERROR_WORDS[word]} ({word / 100:.2f} C): the module's error value"
        obj, amb = words["object"] / 100, words["ambient"] / 100
        for name, value, (lo, hi) in (("object", obj, self.object_range), ("ambient", amb, self.ambient_range)):
            if not lo <= value <= hi:
                return f"{name} {value:.2f} C is outside the MLX90614's {lo:g}..{hi:g} C"
        return Sample(object_c=obj, ambient_c=amb)


class GyMcu90614Config(SerialThermalConfig):
    type: Literal["gy_mcu90614"] = Field("gy_mcu90614", description="GY-MCU90614/90615 spot sensor (UART).")
    baud: int = Field(9600, description="Serial speed: 9600 (module default) or 115200.")
    mode: Literal["continuous", "query"] = Field("continuous", description="continuous: the module streams "
                                                 "after A5 45 EA; query: the driver sends A5 15 BA each "
                                                 "poll.")
    query_interval_s: float = Field(0.1, gt=0, le=10, description="Time between queries in query mode.")

    @model_validator(mode="after")
    def _baud(self) -> GyMcu90614Config:
        if self.baud not in (9600, 115200):
            raise ValueError("GY-MCU90614 baud must be 9600 or 115200")
        return self


class GyMcu90614(SerialThermalSensor):
    kind = "gy_mcu90614"

    def __init__(self, cfg: GyMcu90614Config) -> None:
        self.gy_cfg = cfg
        super().__init__(cfg)
        self.poll_interval_s = cfg.query_interval_s

    def make_decoder(self) -> FrameDecoder:
        return Mlx90614Decoder()

    def start_commands(self) -> list[bytes]:
        return [CMD_CONTINUOUS] if self.gy_cfg.mode == "continuous" else []

    def poll_command(self) -> bytes | None:
        return CMD_QUERY if self.gy_cfg.mode == "query" else None
