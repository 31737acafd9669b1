"""The `type = "sim"` relay driver: runs a board emulator (drivers.emulators.relay) on a private pty and
drives it through the real LCUS or Modbus RTU driver, so demos and tests exercise the real byte path.
The simulated Modbus board is wired as: discrete inputs 0 PASS, 1 door, 2 fire (an NC contact, so the
board's `fire_closed` is True while there is no fire), 3 exit button; coil 0 the turnstile, coil 1 the
siren; input register 0 the fire line's end-of-line reading (`fire_eol`). The LCUS board's channel 2
is the siren."""

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
    fire_eol: bool = Field(False, description="modbus kind: the fire line is supervised by an end-of-line "
                           "resistor read on input register 0 instead of the discrete input.")


class EmulatedRelay:
    """A Relay that owns its board emulator (`sim`) and the real driver talking to it (`driver`)."""

    def __init__(self, cfg: RelaySimConfig) -> None:
        from drivers.emulators.relay import make_relay_sim  # only when one is made, not for a config

        self.sim: LcusSim | ModbusSim = make_relay_sim(cfg.kind, cfg.scenario, seed=cfg.seed)
        common = {"max_pulse_ms": cfg.max_pulse_ms, "fail_mode": cfg.fail_mode, "fire_contact": cfg.fire_contact,
                  "fire_release_s": cfg.fire_release_s, "exit_pulse_ms": cfg.exit_pulse_ms,
                  "siren_max_s": cfg.siren_max_s}
        self.sim.use_auto_link()
        self.driver: LcusRelay | ModbusRtuRelay
        if cfg.kind == "lcus":
            self.driver = LcusRelay(LcusConfig.model_validate({"port": self.sim.path, "siren_channel": 2, **common}))
        else:  # the sim board's wiring: see drivers.emulators.relay.ModbusSim
            self.driver = ModbusRtuRelay(ModbusRtuConfig.model_validate({
                "port": self.sim.path, "pass_input": 0, "door_input": 1, "exit_input": 3, "siren_coil": 1,
                **({"fire_eol_register": 0} if cfg.fire_eol else {"fire_input": 2}),
                "input_poll_s": cfg.input_poll_s, **common}))

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

    def hold(self, reason: str, on: bool) -> None:
        self.driver.hold(reason, on)

    @property
    def holds(self) -> frozenset[str]:
        return self.driver.holds

    def siren(self, seconds: float) -> bool:
        return self.driver.siren(seconds)

    @property
    def siren_on(self) -> bool:
        return self.driver.siren_on

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
