"""Frame decoders of the thermal modules: known vectors, round trips and property-based fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.thermal.ascii_line import AsciiLineDecoder
from drivers.thermal.gy_mcu90614 import Mlx90614Decoder
from drivers.thermal.gy_mcu90614 import encode_frame as encode_90614
from drivers.thermal.gy_mcu90640 import CMD_CONTINUOUS, CMD_QUERY, Mlx90640Decoder, frame_rate_command
from drivers.thermal.gy_mcu90640 import encode_frame as encode_90640

FUZZ = settings(max_examples=250, deadline=None)
temps = st.floats(min_value=-20.0, max_value=60.0, allow_nan=False).map(lambda v: round(v, 2))
# garbage that cannot contain a frame header (the 0x5A sync byte never appears)
no_sync = st.binary(max_size=64).map(lambda b: b.replace(b"\x5a", b"\x00"))


def test_90614_documented_frame() -> None:
    dec = Mlx90614Decoder()
    (s,) = dec.feed(bytes.fromhex("5A5A45040C780D19A7"))
    assert (s.object_c, s.ambient_c) == (31.92, 33.53)
    assert encode_90614(31.92, 33.53) == bytes.fromhex("5A5A45040C780D19A7")


def test_90614_bad_checksum_counted_and_next_frame_found() -> None:
    dec = Mlx90614Decoder()
    bad = bytes.fromhex("5A5A45040C780D19A8")
    out = dec.feed(bad + b"\x01\x02" + encode_90614(36.5, 24.0))
    assert [(s.object_c, s.ambient_c) for s in out] == [(36.5, 24.0)]
    assert dec.counters.checksum_failures == 1
    assert dec.counters.resyncs >= 1


def test_90614_negative_values_and_implausible() -> None:
    dec = Mlx90614Decoder()
    assert [s.object_c for s in dec.feed(encode_90614(-12.34, -5.0))] == [-12.34]
    assert dec.feed(encode_90614(30.0, 200.0)) == []  # an ambient no MLX90614 reports
    assert dec.counters.implausible == 1


def test_90614_error_word_with_a_good_checksum_is_not_a_measurement() -> None:
    """0x7FFF (327.67 C) is the module's error/saturation value and 0x8000 its negative limit: each is
    refused with a good checksum, in the object or the ambient word, and says why."""
    dec = Mlx90614Decoder()
    for frame in (encode_90614(327.67, 24.0), encode_90614(-327.68, 24.0), encode_90614(36.5, 327.67)):
        assert sum(frame[:8]) & 0xFF == frame[8] and dec.feed(frame) == []
    assert dec.counters.implausible == 3 and dec.counters.checksum_failures == 0
    assert dec.counters.last_refused == "ambient word 0x7FFF (327.67 C): the module's error value"
    assert [s.object_c for s in dec.feed(encode_90614(327.66, 24.0))] == [327.66]  # in range, not the error word
    assert dec.feed(encode_90614(36.5, -41.0)) == []  # below the MLX90614's ambient range
    assert dec.counters.last_refused == "ambient -41.00 C is outside the MLX90614's -40..125 C"


def test_90640_saturated_pixel_refuses_the_frame() -> None:
    img = np.full((24, 32), 25.0, dtype=np.float32)
    img[5, 7] = 327.67  # the 0x7FFF word in one pixel
    dec = Mlx90640Decoder()
    assert dec.feed(encode_90640(img, 26.0)) == [] and dec.counters.implausible == 1
    assert str(dec.counters.last_refused).startswith("1 pixel(s) outside the MLX90640's -40..300 C")


def test_90640_commands() -> None:
    assert bytes.fromhex("A53501DB") == CMD_QUERY
    assert bytes.fromhex("A53502DC") == CMD_CONTINUOUS
    assert frame_rate_command(3) == bytes([0xA5, 0x25, 0x03, (0xA5 + 0x25 + 3) & 0xFF])
    with pytest.raises(ValueError):
        frame_rate_command(5)


def test_90640_layout_upper_right_first() -> None:
    img = np.full((24, 32), 25.0, dtype=np.float32)
    img[0, 31] = 40.0  # upper-right corner as the sensor sees it
    img[23, 0] = 10.0
    frame = encode_90640(img, 26.5)
    assert len(frame) == 1544 and frame[:4] == bytes.fromhex("5A5A0206")
    assert int.from_bytes(frame[4:6], "little", signed=True) == 4000  # first pixel sent: upper right
    assert int.from_bytes(frame[1540:1542], "little", signed=True) == 2650  # ambient
    words = np.frombuffer(frame, dtype="<u2")
    assert int(words[:771].sum()) & 0xFFFF == int(words[771])
    (s,) = Mlx90640Decoder().feed(frame)
    assert s.frame is not None and s.frame.shape == (24, 32) and s.frame.dtype == np.float32
    assert s.frame[0, 31] == pytest.approx(40.0) and s.frame[23, 0] == pytest.approx(10.0)
    assert s.ambient_c == pytest.approx(26.5) and s.object_c == pytest.approx(40.0)


def _sample_frames(draw: st.DrawFn, n: int) -> list[np.ndarray]:
    """n frames of 24x32 values in -20..60 C, drawn from a seed (a 768-number draw is too large to shrink)."""
    out = []
    for _ in range(n):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        lo = draw(temps)
        out.append(np.round(rng.uniform(lo, min(60.0, lo + draw(st.floats(0.0, 40.0))), (24, 32)), 2))
    return out


# -- fuzzing: arbitrary bytes ------------------------------------------------------------------------
@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_90614_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    dec = Mlx90614Decoder()
    for chunk in chunks:
        for s in dec.feed(chunk):
            assert -70 <= s.object_c <= 382.2 and -40 <= s.ambient_c <= 125


@FUZZ
@given(st.lists(st.binary(max_size=2000), max_size=6))
def test_90640_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    dec = Mlx90640Decoder()
    for chunk in chunks:
        for s in dec.feed(b"\x5a\x5a\x02\x06" + chunk):
            assert s.frame is not None and s.frame.shape == (24, 32)


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_ascii_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    dec = AsciiLineDecoder(r"T=(?P<object>[-\d.]+),A=(?P<ambient>[-\d.]+)")
    for chunk in chunks:
        for s in dec.feed(chunk):
            assert -40 <= s.object_c <= 300


# -- fuzzing: good frames amid garbage are all found, in order, whatever the chunking -------------------
@FUZZ
@given(st.lists(st.tuples(no_sync, temps, temps), min_size=1, max_size=12), st.integers(1, 17))
def test_90614_frames_amid_garbage(items: list[tuple[bytes, float, float]], chunk: int) -> None:
    stream = b"".join(junk + encode_90614(o, a) for junk, o, a in items)
    dec = Mlx90614Decoder()
    got = [s for i in range(0, len(stream), chunk) for s in dec.feed(stream[i:i + chunk])]
    assert [(s.object_c, s.ambient_c) for s in got] == [(o, a) for _, o, a in items]


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 3), st.sampled_from([1, 97, 1544, 4000]))
def test_90640_frames_amid_garbage(data: st.DataObject, n: int, chunk: int) -> None:
    frames = _sample_frames(data.draw, n)
    junk = [data.draw(no_sync) for _ in range(n)]
    stream = b"".join(j + encode_90640(f, 24.0) for j, f in zip(junk, frames, strict=True))
    dec = Mlx90640Decoder()
    got = [s for i in range(0, len(stream), chunk) for s in dec.feed(stream[i:i + chunk])]
    assert len(got) == n
    for s, f in zip(got, frames, strict=True):
        assert s.frame is not None
        np.testing.assert_allclose(s.frame, f, atol=0.006)


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=30), temps), min_size=1, max_size=12))
def test_ascii_lines_amid_garbage_lines(items: list[tuple[bytes, float]]) -> None:
    # garbage lines: anything without a newline, with a letter so it cannot be a number on its own
    stream = b"".join(b"x" + junk.replace(b"\n", b"") + b"\n" + f"{v:.2f}\r\n".encode() for junk, v in items)
    dec = AsciiLineDecoder()
    got = dec.feed(stream)
    assert [s.object_c for s in got] == [v for _, v in items]
    assert dec.counters.checksum_failures >= 1


# -- fuzzing: a corrupted frame never yields a reading -----------------------------------------------
@FUZZ
@given(temps, temps, st.integers(0, 8), st.integers(1, 255), temps, temps)
def test_90614_corrupt_byte_gives_no_false_reading(o: float, a: float, pos: int, mask: int,
                                                   o2: float, a2: float) -> None:
    frame = bytearray(encode_90614(o, a))
    frame[pos] ^= mask
    dec = Mlx90614Decoder()
    got = dec.feed(bytes(frame) + encode_90614(o2, a2))
    assert [(s.object_c, s.ambient_c) for s in got] == [(o2, a2)]  # only the intact frame


@settings(max_examples=120, deadline=None)
@given(st.data(), st.integers(0, 1543), st.integers(1, 255))
def test_90640_corrupt_byte_gives_no_false_reading(data: st.DataObject, pos: int, mask: int) -> None:
    (img,) = _sample_frames(data.draw, 1)
    frame = bytearray(encode_90640(img, 24.0))
    frame[pos] ^= mask
    dec = Mlx90640Decoder()
    assert dec.feed(bytes(frame)) == []
    assert dec.counters.frames_ok == 0


@FUZZ
@given(temps, st.integers(0, 4), st.sampled_from(b"xZ:/#\x00\xff"))
def test_ascii_corrupt_char_gives_no_false_reading(v: float, pos: int, junk: int) -> None:
    line = bytearray(f"{v:.2f}".encode())
    line[min(pos, len(line) - 1)] = junk
    dec = AsciiLineDecoder()
    assert dec.feed(bytes(line) + b"\n") == []


def test_ascii_regex_with_ambient_and_overlong_lines() -> None:
    dec = AsciiLineDecoder(r"T=(?P<object>-?\d+\.\d+),A=(?P<ambient>-?\d+\.\d+)", max_line=40)
    out = dec.feed(b"T=36.60,A=24.10\n" + b"9" * 100 + b"\nT=37.00,A=23.00\r\nT=999.0,A=1.0\n")
    assert [(s.object_c, s.ambient_c) for s in out] == [(36.6, 24.1), (37.0, 23.0)]
    assert dec.counters.implausible == 1 and dec.counters.bytes_skipped >= 100
    with pytest.raises(ValueError):
        AsciiLineDecoder(r"(?P<temp>\d+)")


# -- ascii_line: a corrupted digit has no checksum to catch it, only the plausibility range ------------
def test_ascii_corrupted_digit_outside_the_range_is_dropped() -> None:
    dec = AsciiLineDecoder(value_range=(20.0, 45.0))  # what a forehead sensor at a gate can see
    out = dec.feed(b"36.6\n86.6\n3G.6\n36.G\n-6.6\n36.7\n")
    assert [s.object_c for s in out] == [36.6, 36.7]
    assert dec.counters.implausible == 2  # 86.6 and -6.6: digits, but out of range
    assert dec.counters.checksum_failures == 2  # 3G.6 and 36.G do not parse
    assert dec.counters.frames_ok == 2


@pytest.mark.parametrize("text", ["36.6", "38.40", "35.95"])
def test_ascii_no_single_byte_corruption_escapes_the_range(text: str) -> None:
    """Every byte of the line replaced by every other byte (newlines too: '3\\n.6' splits into '3' and
    '.6'): whatever parses is inside the range, so e.g. 86.6 or 3 never reach the gate. A corruption
    that stays inside it (36.6 -> 37.6) cannot be told from a reading without a checksum; the policy's
    confirmation by a second, newer reading and the body-temperature bounds are the guard there."""
    lo, hi = 20.0, 45.0
    caught = in_range = 0
    for pos in range(len(text)):
        for byte in range(256):
            if byte == text.encode()[pos]:
                continue
            line = bytearray(text.encode())
            line[pos] = byte
            dec = AsciiLineDecoder(value_range=(lo, hi))
            values = [s.object_c for s in dec.feed(bytes(line) + b"\n")]
            assert all(lo <= v <= hi for v in values), (bytes(line), values)
            in_range += bool(values)
            caught += dec.counters.implausible
    assert caught > 0  # the range did drop parsable corruptions (86.6, 3, ...)
    assert in_range < 40  # only digit-for-digit swaps in the tens, units and decimals stay possible
