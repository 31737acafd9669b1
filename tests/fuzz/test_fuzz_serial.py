"""Serial frame decoders beyond tests/drivers/test_thermal_decoders.py: round trips over the sensors'
whole range, frames hidden in garbage full of sync bytes and header fragments, exact byte accounting
whatever the chunking, ASCII lines in any layout, and the relay simulators' request parsers (LCUS frames,
Modbus RTU requests) fed arbitrary bytes. (The Modbus *replies* are parsed by minimalmodbus, not by us.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fuzz_helpers import fuzz_settings
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.emulators.relay import LcusSim, ModbusSim
from drivers.relay.lcus import lcus_frame
from drivers.thermal.ascii_line import AsciiLineDecoder
from drivers.thermal.decoder import HeaderFrameDecoder
from drivers.thermal.gy_mcu90614 import AMBIENT_RANGE, ERROR_WORDS, HEADER, OBJECT_RANGE, Mlx90614Decoder
from drivers.thermal.gy_mcu90614 import encode_frame as encode_90614
from drivers.thermal.gy_mcu90640 import AMBIENT_RANGE as AMBIENT_RANGE_90640
from drivers.thermal.gy_mcu90640 import HEADER as HEADER_90640
from drivers.thermal.gy_mcu90640 import PIXEL_RANGE, Mlx90640Decoder
from drivers.thermal.gy_mcu90640 import encode_frame as encode_90640
from drivers.thermal.reading import Sample

pytestmark = pytest.mark.fuzz


def centi(lo: float, hi: float) -> st.SearchStrategy[int]:
    """Hundredths of a degree from lo to hi inclusive (the frames' resolution)."""
    return st.integers(round(lo * 100), round(hi * 100))


int16 = st.integers(-32768, 32767)
# The frame carries hundredths in a signed 16-bit word: the MLX90614's range up to 380 C ends at 327.66 C here
# (0x7FFF, 327.67 C, is the module's error word).
OBJECT_ENCODABLE = (OBJECT_RANGE[0], min(OBJECT_RANGE[1], 327.66))
# garbage made mostly of the bytes that start a 90614 frame: sync bytes, header fragments, whole headers
sync_heavy = st.lists(st.sampled_from([b"\x5a", b"\x5a\x5a", b"\x5a\x5a\x45", HEADER, b"\x04", b"\x45"])
                      | st.binary(max_size=6), max_size=12).map(b"".join)


def feed_chunked(decoder: HeaderFrameDecoder | AsciiLineDecoder, stream: bytes, cuts: list[int]) -> list[Sample]:
    """Feed `stream` split at the given cut points (any chunking a serial port may deliver)."""
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [s for a, b in itertools.pairwise(points) for s in decoder.feed(stream[a:b])]


# ------------------------------------------------------------------------------------- GY-MCU90614


@fuzz_settings(300)
@given(centi(*OBJECT_ENCODABLE), centi(*AMBIENT_RANGE))
def test_90614_round_trip_over_the_whole_sensor_range(obj: int, amb: int) -> None:
    (s,) = Mlx90614Decoder().feed(encode_90614(obj / 100, amb / 100))
    assert (s.object_c, s.ambient_c) == (obj / 100, amb / 100)


@fuzz_settings(200)
@given(int16, int16)
def test_90614_values_no_mlx90614_reports_are_never_readings(obj: int, amb: int) -> None:
    plausible = (OBJECT_RANGE[0] <= obj / 100 <= OBJECT_RANGE[1]) and (
        AMBIENT_RANGE[0] <= amb / 100 <= AMBIENT_RANGE[1]) and not {obj, amb} & set(ERROR_WORDS)
    dec = Mlx90614Decoder()
    got = dec.feed(encode_90614(obj / 100, amb / 100))
    assert len(got) == int(plausible) and dec.counters.implausible == int(not plausible)


@fuzz_settings(300)
@given(sync_heavy, centi(*OBJECT_ENCODABLE), centi(*AMBIENT_RANGE), st.lists(st.integers(0, 200), max_size=8))
def test_90614_frame_after_header_fragments_is_found_exactly(junk: bytes, obj: int, amb: int, cuts: list[int]) -> None:
    frame = encode_90614(obj / 100, amb / 100)
    stream = junk + frame
    assume(stream.find(HEADER) == len(junk))  # no complete header in the garbage itself
    dec = Mlx90614Decoder()
    got = feed_chunked(dec, stream, cuts)
    assert [(s.object_c, s.ambient_c) for s in got] == [(obj / 100, amb / 100)]
    assert dec.counters.frames_ok == 1 and dec.counters.bytes_skipped == len(junk)


@pytest.mark.parametrize("decoder", [Mlx90614Decoder, Mlx90640Decoder])
@fuzz_settings(150)
@given(st.lists(st.binary(max_size=300) | sync_heavy | st.just(HEADER_90640 + b"\x00" * 40), max_size=10),
       st.data())
def test_every_byte_is_a_frame_a_skipped_byte_or_still_buffered(decoder: type[HeaderFrameDecoder],
                                                                 chunks: list[bytes], data: st.DataObject) -> None:
    dec = decoder()
    if data.draw(st.booleans()):  # sometimes with real frames among the garbage
        chunks = [*chunks, encode_90614(36.6, 24.0) if decoder is Mlx90614Decoder
                  else encode_90640(np.full((24, 32), 30.0), 25.0)]
        chunks = data.draw(st.permutations(chunks))
    samples = [s for chunk in chunks for s in dec.feed(chunk)]
    c = dec.counters
    total = sum(len(chunk) for chunk in chunks)
    accounted = c.frames_ok * dec.frame_len + c.bytes_skipped
    assert c.frames_ok == len(samples)
    assert total - (dec.frame_len - 1) <= accounted <= total  # at most one partial frame is held back


# ------------------------------------------------------------------------------------- GY-MCU90640


@fuzz_settings(60)
@given(st.integers(0, 2**32 - 1), centi(*PIXEL_RANGE), centi(*PIXEL_RANGE), centi(*AMBIENT_RANGE_90640),
       st.booleans(), st.lists(st.integers(0, 4000), max_size=4))
def test_90640_round_trip_over_the_whole_range_either_pixel_order(seed: int, lo: int, hi: int, amb: int,
                                                                 flip: bool, cuts: list[int]) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    img = np.random.default_rng(seed).integers(lo, hi, (24, 32), endpoint=True) / 100
    dec = Mlx90640Decoder(flip_horizontal=flip)
    (s,) = feed_chunked(dec, encode_90640(img, amb / 100, flip_horizontal=flip), cuts)
    assert s.frame is not None and s.frame.flags.writeable is False
    np.testing.assert_allclose(s.frame, img, atol=0.006)
    assert s.object_c == pytest.approx(float(img.max()), abs=0.006)
    assert s.ambient_c == pytest.approx(amb / 100, abs=0.006)


@fuzz_settings(80)
@given(st.integers(0, 2**32 - 1), st.integers(0, 767), st.sampled_from([-40.01, 300.01, -327.68, 327.67]))
def test_90640_one_pixel_out_of_range_drops_the_frame(seed: int, pixel: int, bad: float) -> None:
    img = np.random.default_rng(seed).uniform(20, 40, (24, 32))
    img.flat[pixel] = bad
    dec = Mlx90640Decoder()
    assert dec.feed(encode_90640(img, 25.0)) == [] and dec.counters.implausible == 1


# ------------------------------------------------------------------------------------- ASCII lines

number_text = st.tuples(centi(-40, 300), st.integers(0, 3), st.booleans()).map(
    lambda t: ("+" if t[2] and t[0] >= 0 else "") + f"{t[0] / 100:.{t[1]}f}")
space = st.sampled_from(["", " ", "  ", "\t"])
eol = st.sampled_from(["\n", "\r\n"])


@fuzz_settings(200)
@given(st.lists(st.tuples(space, number_text, space, eol), min_size=1, max_size=10),
       st.lists(st.integers(0, 400), max_size=10))
def test_ascii_default_lines_in_any_layout_and_chunking(
        lines: list[tuple[str, str, str, str]], cuts: list[int]) -> None:
    stream = "".join(a + n + b + e for a, n, b, e in lines).encode()
    dec = AsciiLineDecoder()
    got = feed_chunked(dec, stream, cuts)
    assert [s.object_c for s in got] == [float(n) for _, n, _, _ in lines]
    assert dec.counters.frames_ok == len(lines) and dec.counters.checksum_failures == 0


@fuzz_settings(150)
@given(st.lists(st.tuples(number_text, number_text), min_size=1, max_size=8), st.lists(st.integers(0, 300)))
def test_ascii_pattern_with_ambient_round_trip(values: list[tuple[str, str]], cuts: list[int]) -> None:
    dec = AsciiLineDecoder(r"^T=(?P<object>[-+]?\d+(?:\.\d+)?),A=(?P<ambient>[-+]?\d+(?:\.\d+)?)$")
    stream = b"".join(f"T={o},A={a}\r\n".encode() for o, a in values)
    got = feed_chunked(dec, stream, cuts)
    assert [(s.object_c, s.ambient_c) for s in got] == [(float(o), float(a)) for o, a in values]


@fuzz_settings(150)
@given(st.integers(41, 400), st.binary(max_size=500).map(lambda b: b.replace(b"\n", b"")), number_text,
       st.lists(st.integers(0, 600), max_size=6))
def test_ascii_overlong_line_never_reads_and_the_next_line_does(max_line: int, junk: bytes, value: str,
                                                                cuts: list[int]) -> None:
    long_line = b"9" * max_line + junk + value.encode()  # longer than max_line, ends like a reading
    dec = AsciiLineDecoder(max_line=max_line)
    got = feed_chunked(dec, long_line + b"\n" + value.encode() + b"\n", cuts)
    assert [s.object_c for s in got] == [float(value)]
    assert dec.counters.bytes_skipped >= max_line


# ------------------------------------------------------------------------------------- relay boards

no_a0 = st.binary(max_size=12).map(lambda b: b.replace(b"\xa0", b"\x00"))


@fuzz_settings(200)
@given(st.lists(st.tuples(no_a0, st.integers(1, 8), st.booleans()), min_size=1, max_size=10),
       st.lists(st.integers(0, 200), max_size=8))
def test_lcus_commands_amid_garbage_switch_exactly_those_channels(cmds: list[tuple[bytes, int, bool]],
                                                                 cuts: list[int]) -> None:
    sim = LcusSim(channels=8)
    stream = b"".join(junk + lcus_frame(ch, on) for junk, ch, on in cmds)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in itertools.pairwise(points):
        sim.handle(stream[a:b], 0.0)
    assert sim.log.frames == [lcus_frame(ch, on) for _, ch, on in cmds]
    expected = [False] * 8
    for _, ch, on in cmds:
        expected[ch - 1] = on
    assert sim.channels == expected


@fuzz_settings(200)
@given(st.lists(st.binary(max_size=40), max_size=10), st.integers(1, 8))
def test_lcus_board_takes_only_well_formed_frames(chunks: list[bytes], channels: int) -> None:
    sim = LcusSim(channels=channels)
    for chunk in chunks:
        sim.handle(chunk, 0.0)
    for frame in sim.log.frames:
        assert frame in {lcus_frame(ch, on) for ch in range(1, channels + 1) for on in (False, True)}


def crc16_modbus(data: bytes) -> bytes:
    """CRC-16/MODBUS written from the specification (poly 0xA001 reflected, init 0xFFFF, low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def test_crc_oracle_matches_the_specification_check_value() -> None:
    assert crc16_modbus(b"123456789") == (0x4B37).to_bytes(2, "little")


@fuzz_settings(200)
@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(0, 3), st.booleans())
def test_modbus_board_survives_garbage_then_obeys_a_request_after_a_silence(chunks: list[bytes], coil: int,
                                                                           on: bool) -> None:
    sim = ModbusSim(coils=4)
    t = 1.0
    for chunk in chunks:
        sim.handle(chunk, t)
        t += 0.001
    sim.tick(t + 0.1)  # an RTU silence ends whatever broken frame was pending
    sim.coils = [not on] * 4
    body = bytes([1, 5]) + coil.to_bytes(2, "big") + (b"\xff\x00" if on else b"\x00\x00")
    sim.handle(body + crc16_modbus(body), t + 0.2)
    assert sim.log.frames[-1] == body + crc16_modbus(body)
    assert sim.coils[coil] is on
