"""GY-MCU90614 / GY-MCU90615: single-spot IR thermometer modules on a UART (9600 8N1 by default).

Frame: 5A 5A 45 04 TOh TOl TAh TAl SUM; temperatures big-endian signed, /100 = degrees C; SUM is the
low byte of the sum of the first 8 bytes. Commands: A5 45 EA (stream continuously), A5 15 BA (query once).
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
# What an MLX90614 can report at all; a frame outside is corrupt even if its checksum matched.
OBJECT_RANGE = (-70.0, 382.2)
AMBIENT_RANGE = (-40.0, 125.0)


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

    def parse(self, frame: bytes) -> Sample | None:
        obj = int.from_bytes(frame[4:6], "big", signed=True) / 100
        amb = int.from_bytes(frame[6:8], "big", signed=True) / 100
        if not (self.object_range[0] <= obj <= self.object_range[1]
                and self.ambient_range[0] <= amb <= self.ambient_range[1]):
            return None
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
