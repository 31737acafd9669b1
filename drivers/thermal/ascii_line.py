"""Line-based thermal sensors: one reading per text line (`36.6\\n`, or whatever a configured regex matches).

The regex needs a named group `object` and may have `ambient`; a line that does not match, is not
text, or is absurdly long is counted and skipped. There is no checksum, so a plausibility range is
the only guard against a corrupted digit.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from drivers.thermal.decoder import DecoderCounters, FrameDecoder
from drivers.thermal.reading import Sample
from drivers.thermal.serial_sensor import SerialThermalConfig, SerialThermalSensor

DEFAULT_PATTERN = r"^\s*(?P<object>[-+]?\d{1,3}(?:\.\d+)?)\s*$"


class AsciiLineDecoder:
    """Streaming line decoder; `checksum_failures` counts lines that do not parse."""

    def __init__(self, pattern: str = DEFAULT_PATTERN, value_range: tuple[float, float] = (-40.0, 300.0),
                 max_line: int = 200) -> None:
        self.counters = DecoderCounters()
        self.regex = re.compile(pattern)
        if "object" not in self.regex.groupindex:
            raise ValueError("the pattern needs a named group 'object'")
        self.value_range = value_range
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop until its end

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[Sample]:
        self._buf += data
        out: list[Sample] = []
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > self.max_line:
                    self.counters.resyncs += 0 if self._discarding else 1
                    self.counters.bytes_skipped += len(self._buf)
                    self._buf.clear()
                    self._discarding = True
                return out
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._discarding:
                self.counters.bytes_skipped += len(line) + 1
                self._discarding = False
                continue
            sample = self._parse(line)
            if sample is not None:
                out.append(sample)

    def _parse(self, line: bytes) -> Sample | None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return None
        if len(line) > self.max_line:
            self.counters.resyncs += 1
            self.counters.bytes_skipped += len(line)
            return None
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            self.counters.checksum_failures += 1
            return None
        match = self.regex.search(text)
        if match is None:
            self.counters.checksum_failures += 1
            return None
        try:
            obj = float(match.group("object"))
            amb_text = match.groupdict().get("ambient")
            amb = float(amb_text) if amb_text else math.nan
        except (TypeError, ValueError):
            self.counters.checksum_failures += 1
            return None
        lo, hi = self.value_range
        if not (math.isfinite(obj) and lo <= obj <= hi) or not (math.isnan(amb) or lo <= amb <= hi):
            self.counters.implausible += 1
            self.counters.last_refused = f"line {text.strip()!r} is outside the configured {lo:g}..{hi:g} C"
            return None
        self.counters.frames_ok += 1
        return Sample(object_c=obj, ambient_c=amb)


class AsciiLineConfig(SerialThermalConfig):
    type: Literal["ascii_line"] = Field("ascii_line", description="A sensor that prints one reading per "
                                                                  "line.")
    pattern: str = Field(DEFAULT_PATTERN, description="Regex applied to each line; named group 'object' "
                         "(degrees C) is required, 'ambient' is optional, e.g. "
                         "'T=(?P<object>[-\\d.]+),A=(?P<ambient>[-\\d.]+)'.")
    min_c: float = Field(-40.0, description="Values below this are discarded as corrupt. Lines carry no "
                         "checksum, so this range is the only guard against a corrupted digit: narrow it to "
                         "what the sensor can see at the gate (e.g. 20..45 for a forehead sensor).")
    max_c: float = Field(300.0, description="Values above this are discarded as corrupt (86.6 for 36.6).")
    max_line: int = Field(200, ge=8, le=65536, description="Longer lines are garbage and skipped.")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from exc
        if "object" not in regex.groupindex:
            raise ValueError("the pattern needs a named group 'object'")
        return value

    @model_validator(mode="after")
    def _range(self) -> AsciiLineConfig:
        if self.min_c >= self.max_c:
            raise ValueError("min_c must be below max_c")
        return self


class AsciiLine(SerialThermalSensor):
    kind = "ascii_line"

    def __init__(self, cfg: AsciiLineConfig) -> None:
        self.line_cfg = cfg
        super().__init__(cfg)

    def make_decoder(self) -> FrameDecoder:
        c = self.line_cfg
        return AsciiLineDecoder(c.pattern, (c.min_c, c.max_c), c.max_line)
