"""OSDP reader output against an INDEPENDENT control panel: the `osdp` package from PyPI (ryanhz/osdp-python,
its own framing, CRC, secure channel and reply parsing) polls the gate's PD (libosdp) over a real pty pair.
The CP must read the card number the gate sends (osdp_RAW with a 26- or 34-bit Wiegand frame, decoded by
the spec decoder of test_wiegand.py), in the clear and in the secure channel with the SCBK
from a credential file; the panel's LED, buzzer and output commands reach the gate; junk on the bus is
counted and the reader keeps answering; a panel that stops polling is `panel_offline` and the gate falls
back per config (a real relay, LCUS driver on its pty simulator, is pulsed or not). The wire framing the
gate watches is checked against known values."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from osdp._secure_channel import calculate_scbk
from osdp._types import (
    LedColor,
    OutputControl,
    OutputControlCode,
    OutputControls,
    PermanentReaderControlCode,
    ReaderLedControl,
    ReaderLedControls,
    TemporaryReaderControlCode,
)
from pydantic import TypeAdapter, ValidationError

from drivers.emulators.relay import LcusSim
from drivers.panel import PanelConfig, PanelError
from drivers.panel.osdp_frame import FrameCounter, crc16, frame
from drivers.panel.osdp_pd import OsdpConfig, OsdpPanel, read_scbk
from drivers.relay.lcus import LcusConfig, LcusRelay
from edge.panel_link import PanelLink
from edge.records import PersonRecord
from tests.support.osdp_cp import CUID, Bus, acked, bits_of
from tests.support.wait import wait_until
from tests.support.wiegand_spec import decode_26, decode_34


@pytest.fixture
def bus() -> Iterator[Bus]:
    b = Bus()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    items: list[Any] = []
    yield items
    for item in reversed(items):
        (item.stop if hasattr(item, "stop") else item.close)()


def started(cfg: OsdpConfig, cleanup: list[Any]) -> OsdpPanel:
    pd = OsdpPanel(cfg)
    pd.start()
    cleanup.append(pd)
    return pd


@pytest.mark.parametrize("bits, card", [(26, 54321), (34, 0xA5A55A5A)])
def test_the_independent_cp_reads_the_card_in_osdp_raw(bus: Bus, cleanup: list[Any], bits: int, card: int) -> None:
    pd = started(OsdpConfig(port=bus.path, address=3, bits=bits, facility_code=123), cleanup)
    cp = bus.connect(address=3)
    wait_until(lambda: cp.is_online(bus.cid, 3) and pd.online, what="the CP polling the gate's reader")
    pd.send_card(card)
    wait_until(lambda: cp.raw, what="the card read at the CP")
    raw = cp.raw[0]
    assert raw.bit_count == bits and raw.reader_number == 0 and raw.format_code.name == "Wiegand"
    assert (decode_26(bits_of(raw)) == (123, card)) if bits == 26 else (decode_34(bits_of(raw)) == card)
    assert pd.stats.cards_sent == 1 and pd.stats.malformed_frames == 0


def test_the_secure_channel_with_the_scbk_from_a_credential_file(bus: Bus, cleanup: list[Any], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    master_key = bytes(range(16))
    (tmp_path / "osdp-scbk").write_text(calculate_scbk(master_key, CUID).hex() + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # as systemd's LoadCredential= sets it
    pd = started(OsdpConfig(port=bus.path, scbk_file="osdp-scbk", secure_only=True), cleanup)
    cp = bus.connect(master_key=master_key)
    wait_until(lambda: pd.secure, what="the secure channel")
    pd.send_card(4660)
    wait_until(lambda: cp.raw, what="the card read over the secure channel")
    assert decode_26(bits_of(cp.raw[0])) == (0, 4660)


def test_a_cp_with_the_wrong_key_gets_no_card(bus: Bus, cleanup: list[Any], tmp_path: Path) -> None:
    (tmp_path / "scbk").write_text(calculate_scbk(bytes(range(16)), CUID).hex())
    pd = started(OsdpConfig(port=bus.path, scbk_file=str(tmp_path / "scbk"), secure_only=True), cleanup)
    cp = bus.connect(master_key=bytes(16))  # another community's key
    wait_until(lambda: pd.stats.last_poll_age_s is not None, what="the CP's first frames")
    pd.send_card(4660)
    assert not wait_until_or_none(lambda: cp.raw or pd.secure, 2.0)
    assert not cp.raw and not pd.secure


def wait_until_or_none(cond: Any, seconds: float) -> bool:
    """True if `cond` came true within `seconds` (for what must NOT happen: the whole window is watched)."""
    from tests.support.wait import poll_until

    return poll_until(cond, seconds)


def test_led_buzzer_and_output_commands_reach_the_gate(bus: Bus, cleanup: list[Any]) -> None:
    pd = started(OsdpConfig(port=bus.path), cleanup)
    seen: list[Any] = []
    pd.on_command = seen.append
    cp = bus.connect()
    wait_until(lambda: pd.online and cp.is_online(bus.cid, 1), what="the CP polling the reader")
    led = ReaderLedControl(0, 0, TemporaryReaderControlCode.SetTemporaryAndStartTimer, 5, 5, LedColor.Green,
                           LedColor.Black, 30, PermanentReaderControlCode.Nop, 0, 0, LedColor.Black, LedColor.Black)
    wait_until(lambda: acked(lambda: cp.reader_led_control(bus.cid, 1, ReaderLedControls([led]))), what="LED ack")
    out = OutputControl(0, OutputControlCode.PermanentStateOnAbortTimedOperation, 0)
    wait_until(lambda: acked(lambda: cp.output_control(bus.cid, 1, OutputControls([out]))), what="output ack")
    wait_until(lambda: {c.kind for c in seen} == {"led", "output"}, what="both commands at the gate")
    assert {(c.kind, c.on, c.colour) for c in seen} == {("led", True, "green"), ("output", True, None)}
    assert pd.indicators.as_dict() == {"led": "green", "buzzer": False, "output": True}
    assert pd.stats.commands == len(seen)


def test_junk_on_the_bus_is_counted_and_the_reader_keeps_answering(bus: Bus, cleanup: list[Any]) -> None:
    pd = started(OsdpConfig(port=bus.path), cleanup)
    cp = bus.connect()
    wait_until(lambda: pd.online and cp.is_online(bus.cid, 1), what="the CP polling the reader")
    bad_crc = bytearray(frame(1, 0x60))
    bad_crc[-1] ^= 0xFF
    for junk in (b"\x00\x13garbage", bytes(bad_crc), b"\x53\x01\xff\xff\x04", bytes(300)):
        os.write(bus.master, junk)  # between (or into) the CP's frames, as a noisy RS-485 line does
    wait_until(lambda: pd.stats.malformed_frames >= 3, what="the malformed frames counted")
    pd.send_card(1)
    wait_until(lambda: cp.raw, what="a card read after the junk")
    assert decode_26(bits_of(cp.raw[-1])) == (0, 1) and pd.online


def test_a_panel_that_stops_polling_is_offline_and_the_gate_falls_back(bus: Bus, cleanup: list[Any]) -> None:
    sim = LcusSim()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path))
    relay.start()
    cleanup.append(relay)
    cfg = OsdpConfig(port=bus.path, offline_after_s=0.5, fallback="relay")
    link = PanelLink(cfg, OsdpPanel(cfg), relay, 200)
    link.start()
    cleanup.append(link)
    health: list[tuple[str, bool, str, str]] = []

    def set_health(part: str, ok: bool, detail: str, alarm: str) -> None:
        health.append((part, ok, detail, alarm))

    cp = bus.connect()
    wait_until(lambda: link.health()[0] and cp.is_online(bus.cid, 1), what="the panel online")
    link.on_grant(PersonRecord(id="R1", name="Li", card=777))  # online: the panel gets the card, no relay
    wait_until(lambda: cp.raw, what="the card at the CP")
    assert decode_26(bits_of(cp.raw[0])) == (0, 777) and relay.stats.pulses == 0
    out = OutputControl(0, OutputControlCode.PermanentStateOnAbortTimedOperation, 0)
    wait_until(lambda: acked(lambda: cp.output_control(bus.cid, 1, OutputControls([out]))), what="output ack")
    wait_until(lambda: relay.stats.pulses >= 1, what="the relay pulsed on the panel's output command")
    pulses = relay.stats.pulses  # (a command the CP repeated after a lost ack pulses again, as it should)
    bus.stop_polling()
    wait_until(lambda: not link.health()[0], what="panel_offline")
    link.supervise(set_health)
    assert health[-1][:2] == ("panel", False) and health[-1][3] == "panel_offline" and "not polled" in health[-1][2]
    link.on_grant(PersonRecord(id="R1", name="Li", card=777))
    wait_until(lambda: relay.stats.pulses == pulses + 1, what="the fallback relay pulse")
    assert link.fallbacks == 1
    link.cfg = cfg.model_copy(update={"fallback": "deny"})
    link.on_grant(PersonRecord(id="R1", name="Li", card=777))
    assert link.fallbacks == 2 and not wait_until_or_none(lambda: relay.stats.pulses > pulses + 1, 1.0)


def test_a_panel_that_grants_with_a_green_led_opens_when_configured(bus: Bus, cleanup: list[Any]) -> None:
    sim = LcusSim()
    sim.start()
    cleanup.append(sim)
    relay = LcusRelay(LcusConfig(port=sim.path))
    relay.start()
    cleanup.append(relay)
    cfg = OsdpConfig(port=bus.path, obey_led_green=True, obey_output=False)
    link = PanelLink(cfg, OsdpPanel(cfg), relay, 200)
    link.start()
    cleanup.append(link)
    cp = bus.connect()
    wait_until(lambda: link.health()[0] and cp.is_online(bus.cid, 1), what="the panel online")

    def led(colour: LedColor) -> ReaderLedControls:
        return ReaderLedControls([ReaderLedControl(0, 0, TemporaryReaderControlCode.SetTemporaryAndStartTimer, 5, 5,
                                                   colour, LedColor.Black, 30, PermanentReaderControlCode.Nop, 0,
                                                   0, LedColor.Black, LedColor.Black)])

    wait_until(lambda: acked(lambda: cp.reader_led_control(bus.cid, 1, led(LedColor.Red))), what="red LED ack")
    out = OutputControl(0, OutputControlCode.PermanentStateOnAbortTimedOperation, 0)
    wait_until(lambda: acked(lambda: cp.output_control(bus.cid, 1, OutputControls([out]))), what="output ack")
    wait_until(lambda: link.panel.indicators.output, what="the output command at the gate")
    assert relay.stats.pulses == 0  # red is a refusal, and this gate does not obey outputs
    wait_until(lambda: acked(lambda: cp.reader_led_control(bus.cid, 1, led(LedColor.Green))), what="green ack")
    wait_until(lambda: relay.stats.pulses >= 1, what="the relay pulsed on the green LED")
    assert link.panel.indicators.led == "green"


def test_random_bytes_never_break_the_framer() -> None:
    rng = random.Random(16)
    counter = FrameCounter()
    good = frame(1, 0x60)
    seen = 0
    for _ in range(3000):
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        if rng.random() < 0.3:
            chunk += good
        seen += sum(1 for f in counter.feed(chunk) if (f.address, f.command) == (1, 0x60))
    seen += sum(1 for f in counter.feed(good * 2) if (f.address, f.command) == (1, 0x60))
    assert counter.malformed > 100 and seen >= 2 and counter.frames >= seen


def test_setup_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PanelError, match="cannot open"):
        OsdpPanel(OsdpConfig(port=str(tmp_path / "nope"))).start()
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(PanelError, match="32 hex digits"):
        read_scbk(str(tmp_path / "short"))
    with pytest.raises(PanelError, match="cannot read the SCBK file"):
        OsdpPanel(OsdpConfig(port="/dev/null", scbk_file=str(tmp_path / "missing"))).start()
    with pytest.raises(PanelError, match="does not fit"):
        OsdpPanel(OsdpConfig()).send_card(70000)
    cfg = TypeAdapter(PanelConfig).validate_python({"type": "osdp", "address": 5, "baud": 115200})
    assert isinstance(cfg, OsdpConfig) and all(f.description for f in OsdpConfig.model_fields.values())
    for bad in ({"address": 127}, {"baud": 1200}, {"refresh_s": 0.2}, {"scbk": "00"}):
        with pytest.raises(ValidationError):
            OsdpConfig.model_validate(bad)


def test_the_watched_framing_against_known_values() -> None:
    assert crc16(b"123456789") == 0xE5CC  # CRC-16/AUG-CCITT check value
    poll = frame(1, 0x60)
    assert poll == bytes([0x53, 0x01, 0x08, 0x00, 0x04, 0x60]) + crc16(poll[:6]).to_bytes(2, "little")
    counter = FrameCounter()
    reply = bytes([0x53, 0x81, 0x07, 0x00, 0x00, 0x40])
    reply += bytes([(-sum(reply)) & 0xFF])  # a checksum (not CRC) reply: osdp_ACK
    got = counter.feed(b"\xff" + poll[:3]) + counter.feed(poll[3:] + b"\xff" + reply)
    assert [(f.address, f.reply, f.command) for f in got] == [(1, False, 0x60), (1, True, 0x40)]
    assert counter.malformed == 0
    bad = bytearray(poll)
    bad[5] = 0x61
    got = counter.feed(b"noise" + bytes(bad) + poll)
    assert len(got) == 1 and counter.malformed == 2 and counter.frames == 3
