"""Wiegand output: frames bit-exact (26 and 34 bits, parity, facility code) against a decoder written from
the Wiegand interface spec (tests/support/wiegand_spec.py: SIA AC-01 timing, H10301 26-bit layout, the
common 34-bit layout), the pulse train as played on the clock, the gpiod line request, and the errors an
installer sees.

No GPIO chip exists in this sandbox (see tests/drivers/test_gpio.py: the kernel has no GPIOLIB, no
gpio-sim, no gpio-mockup), so, as for the GPIO relay, what is tested with real gpiod objects is the request
the driver makes (`line_settings`, accepted by gpiod's own conversion to the kernel request); the frames go
through the driver's real playing loop (`play`, the loop `WiegandPanel` runs) into a line recorder that
timestamps each switch, and the decoder reads the recording as a panel reads the two wires. Still untested
here: `request.set_value` on a chip (the test at the end runs where /dev/gpiochip0 exists).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import gpiod
import pytest
from gpiod.line import Direction, Value
from gpiod.line_settings import _line_settings_to_ext
from pydantic import TypeAdapter, ValidationError

from drivers.panel import PanelConfig, PanelError, make_panel
from drivers.panel.wiegand import WiegandConfig, WiegandPanel, line_settings
from drivers.panel.wiegand_frame import Edge, frame_bits, play, pulse_train
from tests.support.wait import wait_until
from tests.support.wiegand_spec import WiegandDecodeError, decode_26, decode_34, decode_wires


def as_wires(train: list[Edge], pulse_us: int = 50) -> list[tuple[int, str, bool]]:
    return [(e.at_us * 1000, e.line, e.active) for e in train]


# ------------------------------------------------------------------------------- the frames


def test_a_known_26_bit_frame_bit_for_bit() -> None:
    # facility 1, card 1: 0 00000001 0000000000000001 0 -> first half has one 1 (even parity 1);
    # second half has one 1 (odd parity 0)
    assert "".join(map(str, frame_bits(1, 26, facility=1))) == "1" + "00000001" + "0000000000000001" + "0"
    # facility 0x7B (123), card 0xD431 (54321): worked by hand from the layout
    bits = "".join(map(str, frame_bits(54321, 26, facility=123)))
    assert bits[1:9] == "01111011" and bits[9:25] == "1101010000110001"
    assert bits[0] == str(sum(map(int, bits[1:13])) % 2) and bits[25] == str(1 - sum(map(int, bits[13:25])) % 2)


@pytest.mark.parametrize("facility, card", [(0, 0), (255, 65535), (1, 1), (123, 54321), (200, 4660), (85, 43690)])
def test_26_bit_frames_decode_to_what_was_sent(facility: int, card: int) -> None:
    train = pulse_train(frame_bits(card, 26, facility), pulse_us=50, interval_us=2000)
    assert decode_26(decode_wires(as_wires(train))) == (facility, card)


@pytest.mark.parametrize("card", [0, 1, 65535, 65536, 123456789, 0x8000_0000, 0xFFFF_FFFF, 0xA5A5_5A5A])
def test_34_bit_frames_decode_to_what_was_sent(card: int) -> None:
    train = pulse_train(frame_bits(card, 34), pulse_us=50, interval_us=1000)
    assert decode_34(decode_wires(as_wires(train))) == card


def test_the_decoder_catches_a_flipped_bit_in_every_position() -> None:
    for size, bits in ((26, frame_bits(54321, 26, 123)), (34, frame_bits(0xA5A55A5A, 34))):
        for i in range(size):
            bad = list(bits)
            bad[i] ^= 1
            with pytest.raises(WiegandDecodeError, match="parity"):
                (decode_26 if size == 26 else decode_34)(bad)


def test_cards_a_format_cannot_carry_are_refused() -> None:
    with pytest.raises(ValueError, match="26-bit"):
        frame_bits(65536, 26)
    with pytest.raises(ValueError, match="34-bit"):
        frame_bits(2**32, 34)
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError, match="non-negative"):
            frame_bits(bad, 26)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="facility"):
        frame_bits(1, 26, facility=256)
    with pytest.raises(ValueError, match="26 or 34"):
        frame_bits(1, 37)
    with pytest.raises(PanelError, match="does not fit a 26-bit"):  # the driver says so before any line moves
        WiegandPanel(WiegandConfig()).send_card(70000)


def test_the_train_keeps_the_configured_timing() -> None:
    train = pulse_train(frame_bits(4660, 26, 3), pulse_us=80, interval_us=1500)
    assert len(train) == 52 and train[0] == Edge(0, "d1", True) and train[1] == Edge(80, "d1", False)
    assert [e.at_us for e in train[::2]] == [i * 1500 for i in range(26)]
    with pytest.raises(ValueError, match="shorter than the interval"):
        pulse_train([1], pulse_us=100, interval_us=100)


def test_frames_played_by_the_drivers_loop_decode_and_keep_the_minimum_timing() -> None:
    """The loop WiegandPanel runs, on the real clock, into a recorder of line switches: the panel side of
    the wires reads the card. Whatever the machine's load, no pulse is shorter than `pulse_us` and no two
    pulses start closer than `interval_us` (a preempted edge moves the rest of the frame back); the widths
    and intervals measured are printed (an idle machine: within 1 us of the configured ones)."""
    recorded: list[tuple[int, str, bool]] = []

    def line(name: str, active: bool) -> None:
        recorded.append((time.perf_counter_ns(), name, active))

    for card, bits in ((54321, 26), (0xA5A55A5A, 34)):
        recorded.clear()
        frame = frame_bits(card, bits, 123)
        took_ns = play(pulse_train(frame, pulse_us=50, interval_us=2000), line)
        got = decode_wires(recorded, min_pulse_us=50, max_pulse_us=float("inf"), min_interval_us=2000,
                           max_interval_us=float("inf"))
        assert (decode_26(got) == (123, card)) if bits == 26 else (decode_34(got) == card)
        widths = [(b[0] - a[0]) / 1000 for a, b in zip(recorded[::2], recorded[1::2], strict=True)]
        gaps = [(b[0] - a[0]) / 1000 for a, b in zip(recorded[::2], recorded[2::2], strict=False)]
        assert took_ns >= (bits - 1) * 2000 * 1000
        print(f"{bits}-bit frame: pulse median {statistics.median(widths):.1f} us (max {max(widths):.1f}), "
              f"interval median {statistics.median(gaps):.1f} us (max {max(gaps):.1f}), frame {took_ns / 1e6:.2f} ms")


def test_a_decoder_refuses_overlapping_or_out_of_spec_pulses() -> None:
    with pytest.raises(WiegandDecodeError, match="same time"):
        decode_wires([(0, "d0", True), (10_000, "d1", True)])
    with pytest.raises(WiegandDecodeError, match="pulse of"):
        decode_wires([(0, "d0", True), (500_000, "d0", False)])
    with pytest.raises(WiegandDecodeError, match="interval"):
        decode_wires(as_wires(pulse_train([1, 0], pulse_us=50, interval_us=100)))


# --------------------------------------------------------------------------- config and gpiod


def test_config_defaults_and_validation() -> None:
    cfg = TypeAdapter(PanelConfig).validate_python({"type": "wiegand", "bits": 34, "d0_line": 5, "d1_line": 6})
    assert isinstance(cfg, WiegandConfig) and cfg.pulse_us == 50 and cfg.fallback == "deny" and not cfg.drive_relay
    assert all(f.description for f in WiegandConfig.model_fields.values())
    for bad in ({"d0_line": 5, "d1_line": 5}, {"bits": 37}, {"pulse_us": 5}, {"pulse_us": 100, "interval_us": 150},
                {"facility_code": 256}, {"interval_us": 50_000}, {"pin": 3}):
        with pytest.raises(ValidationError):
            WiegandConfig.model_validate(bad)


@pytest.mark.parametrize("active_low", [True, False])
def test_the_lines_are_requested_idle(active_low: bool) -> None:
    settings = line_settings(WiegandConfig(d0_line=23, d1_line=24, active_low=active_low))
    assert sorted(settings) == [23, 24]
    for s in settings.values():
        assert s.direction is Direction.OUTPUT and s.output_value is Value.INACTIVE and s.active_low is active_low
        _line_settings_to_ext(s)  # gpiod's own conversion to the kernel request accepts it


def test_missing_chip_is_a_clear_error(tmp_path: Path) -> None:
    panel = make_panel(WiegandConfig(chip=str(tmp_path / "gpiochip9")))
    with pytest.raises(PanelError, match="does not exist"):
        panel.start()
    assert not panel.online
    panel.close()
    with pytest.raises(PanelError, match="not a GPIO character device"):
        WiegandPanel(WiegandConfig(chip="/dev/null")).start()


@pytest.mark.skipif(not os.path.exists("/dev/gpiochip0"), reason="needs a GPIO chip (gpio-sim or real)")
def test_on_a_real_chip_a_frame_goes_out() -> None:
    panel = WiegandPanel(WiegandConfig(chip="/dev/gpiochip0", d0_line=0, d1_line=1))
    panel.start()
    try:
        panel.send_card(4660)
        wait_until(lambda: panel.stats.cards_sent == 1, what="the frame played on the chip")
        assert panel.stats.send_failures == 0 and gpiod.is_gpiochip_device("/dev/gpiochip0")
    finally:
        panel.close()
