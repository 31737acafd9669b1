"""Panel mode on the real lane: a face grant (the real FaceEngine on a composed hallway frame, a resident
enrolled in a real store with a card) sends the card to the access panel (the gate's OSDP reader, polled by
the independent `osdp` CP over a pty pair) and does not pulse the gate's relay (LCUS driver on its pty
simulator); the panel's grant, an output turned on, pulses it. With `[panel] type = "none"` the lane
pulses the relay itself, as before."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from osdp._types import OutputControl, OutputControlCode, OutputControls
from test_lane import Setup, feed, scene, setup  # noqa: F401 (the module's fixture)

from drivers.emulators.relay import LcusSim
from drivers.panel.none import NoPanelConfig
from drivers.panel.osdp_pd import OsdpConfig
from drivers.relay.lcus import LcusConfig, LcusRelay
from edge.config.lane import LaneConfig
from edge.config.policy import PolicyConfig
from edge.config.temperature import TemperatureConfig
from edge.lane import Lane, Outcome, Whitelist
from edge.panel_link import attach_panel
from edge.store import Store
from edge.store.writer import StoreWriter
from tests.support.osdp_cp import Bus, acked, bits_of
from tests.support.wait import poll_until, wait_until
from tests.support.wiegand_spec import decode_26


@pytest.fixture
def parts(setup: Setup) -> Iterator[dict[str, Any]]:  # noqa: F811
    store = Store.open(setup.db)
    person = store.get_person("R001")
    assert person is not None
    store.upsert_person(dataclasses.replace(person, card=4660))
    writer = StoreWriter(store)
    sim = LcusSim()
    sim.start()
    relay = LcusRelay(LcusConfig(port=sim.path))
    relay.start()
    bus = Bus()
    made: dict[str, Any] = {"store": store, "writer": writer, "relay": relay, "bus": bus, "links": []}
    try:
        yield made
    finally:
        for link in made["links"]:
            link.close()
        bus.close()
        relay.close()
        sim.stop()
        writer.close(10)
        store.close()


def lane_with(setup: Setup, parts: dict[str, Any], panel: Any) -> tuple[Lane, list[Outcome]]:  # noqa: F811
    outcomes: list[Outcome] = []
    lane = Lane(LaneConfig(), PolicyConfig(temperature_screening=False, anti_passback_s=0), TemperatureConfig(),
                setup.engine, Whitelist.load(parts["store"], setup.engine.model_id), None, parts["relay"],
                parts["writer"], outcomes.append, gate_id="lane-panel")
    link = attach_panel(panel, lane, parts["relay"], 300)
    link.start()
    parts["links"].append(link)
    return lane, outcomes


def test_a_face_grant_goes_to_the_panel_and_the_panel_opens(setup: Setup, parts: dict[str, Any]) -> None:  # noqa: F811
    bus, relay = parts["bus"], parts["relay"]
    lane, outcomes = lane_with(setup, parts, OsdpConfig(port=bus.path, address=2))
    assert lane.panel is not None
    cp = bus.connect(address=2)
    wait_until(lambda: cp.is_online(bus.cid, 2) and parts["links"][0].health()[0], what="the panel polling")
    feed(lane, scene((setup.resident, 0.5, 0.5, 260)), 8)
    assert [(o.event.decision, o.event.person_id) for o in outcomes] == [("grant", "R001")]
    wait_until(lambda: cp.raw, what="the card at the panel")
    assert decode_26(bits_of(cp.raw[0])) == (0, 4660)
    assert relay.stats.pulses == 0  # the panel decides: the gate's relay waits for its answer
    out = OutputControl(0, OutputControlCode.PermanentStateOnAbortTimedOperation, 0)
    wait_until(lambda: acked(lambda: cp.output_control(bus.cid, 2, OutputControls([out]))), what="output ack")
    wait_until(lambda: relay.stats.pulses >= 1, what="the relay pulsed by the panel's grant")


def test_without_a_panel_the_lane_pulses_the_relay(setup: Setup, parts: dict[str, Any]) -> None:  # noqa: F811
    lane, outcomes = lane_with(setup, parts, NoPanelConfig())
    assert lane.panel is None
    feed(lane, scene((setup.resident, 0.5, 0.5, 260)), 8)
    assert [o.event.decision for o in outcomes] == ["grant"]
    assert poll_until(lambda: parts["relay"].stats.pulses == 1, 10)
