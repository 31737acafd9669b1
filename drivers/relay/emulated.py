"""The `type = "sim"` relay driver: runs a board emulator (drivers.emulators.relay) on a private pty and
drives it through the real LCUS or Modbus RTU driver, so demos and tests exercise the real byte path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from drivers.relay.config import RelayConfigBase
from drivers.relay.lcus import LcusConfig, LcusRelay
from drivers.relay.modbus_rtu import ModbusRtuConfig, ModbusRtuRelay
from drivers.relay.protocol import InputEvent, RelayStats

if TYPE_CHECKING:
    from drivers.emulators.relay import LcusSim, ModbusSim


class RelaySimConfig(RelayConfigBase):
    type: Literal["sim"] = Field("sim", description="Simulated relay board on a pty, driven by the real "
                                                    "driver.")
    kind: Literal["lcus", "modbus"] = Field("modbus", description="Which board the simulator imitates.")
    scenario: Literal["normal", "no_pass", "tailgate", "garbage", "unplug"] = Field(
        "normal", description="Scripted turnstile behaviour (modbus kind: PASS input after the relay opens).")
    seed: int = Field(0, description="Random seed of the simulator.")


class EmulatedRelay:
    """A Relay that owns its board emulator (`sim`) and the real driver talking to it (`driver`)."""

    def __init__(self, cfg: RelaySimConfig) -> None:
        from drivers.emulators.relay import make_relay_sim  # only when one is made, not for a config

        self.sim: LcusSim | ModbusSim = make_relay_sim(cfg.kind, cfg.scenario, seed=cfg.seed)
        self.sim.use_auto_link()
        self.driver: LcusRelay | ModbusRtuRelay
        if cfg.kind == "lcus":
            self.driver = LcusRelay(LcusConfig(port=self.sim.path, max_pulse_ms=cfg.max_pulse_ms))
        else:
            self.driver = ModbusRtuRelay(ModbusRtuConfig(port=self.sim.path, pass_input=0, door_input=1,
                                                         max_pulse_ms=cfg.max_pulse_ms,
                                                         input_poll_s=cfg.input_poll_s))

    def start(self) -> None:
        self.sim.start()
        self.driver.start()

    def pulse(self, ms: int) -> None:
        self.driver.pulse(ms)

    def set(self, on: bool) -> None:
        self.driver.set(on)

    @property
    def state(self) -> bool:
        return self.driver.state

    @property
    def pulsing(self) -> bool:
        return self.driver.pulsing

    def events(self) -> list[InputEvent]:
        return self.driver.events()

    def input_state(self, name: str) -> bool | None:
        return self.driver.input_state(name)

    def wait_idle(self, timeout: float) -> bool:
        return self.driver.wait_idle(timeout)

    @property
    def stats(self) -> RelayStats:
        return self.driver.stats

    def close(self) -> None:
        self.driver.close()
        self.sim.stop()
