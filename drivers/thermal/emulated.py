"""The `type = "sim"` thermal driver: runs a module emulator (drivers.emulators.thermal) on a private
pty and reads it through the real driver for its kind, so demos and tests exercise the real byte path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from drivers.heartbeat import Heartbeat
from drivers.thermal.ascii_line import AsciiLine, AsciiLineConfig
from drivers.thermal.config import ThermalConfigBase
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config
from drivers.thermal.reading import Reading, ThermalStats
from drivers.thermal.serial_sensor import SerialThermalSensor

if TYPE_CHECKING:
    from drivers.emulators.thermal import ThermalSim


class ThermalSimConfig(ThermalConfigBase):
    type: Literal["sim"] = Field("sim", description="Simulated sensor on a pty, read through the real "
                                                    "driver.")
    kind: Literal["gy_mcu90614", "gy_mcu90640", "ascii_line"] = Field(
        "gy_mcu90640", description="Which module the simulator imitates (and which driver reads it).")
    scenario: Literal["normal", "fever", "noise", "dropouts", "garbage", "unplug", "hang", "photo",
                      "error_value"] = Field(
        "normal", description="Scripted behaviour of the simulated module.")
    rate_hz: float | None = Field(None, gt=0, le=100, description="Frames per second (default: the "
                                                                  "module's).")
    seed: int = Field(0, description="Random seed of the simulated noise.")
    ambient_c: float = Field(24.0, ge=-20, le=50, description="Simulated room temperature.")
    face_col: float = Field(16.0, ge=0, le=31, description="Array kind: face centre column (thermal pixels).")
    face_row: float = Field(12.0, ge=0, le=23, description="Array kind: face centre row (thermal pixels).")
    blackbody: bool = Field(False, description="Array kind: show a blackbody reference at x=28..30, "
                                               "y=20..22.")
    blackbody_c: float = Field(35.0, ge=20, le=50, description="Temperature of the simulated blackbody.")
    fever_windows: list[tuple[float, float]] = Field(
        default_factory=list, description="Seconds after start (start, end) in which the person in view has a "
        "fever (the demo's schedule); with schedule_period_s they repeat.")
    schedule_period_s: float | None = Field(None, gt=0, description="Length of the repeating fever schedule.")
    max_age_s: float = Field(2.0, gt=0, le=3600, description="read() returns nothing when the latest good "
                             "reading is older than this.")


class EmulatedThermal:
    """A ThermalSensor that owns its module emulator (`sim`) and the real driver reading it (`driver`)."""

    def __init__(self, cfg: ThermalSimConfig) -> None:
        # imported here: the emulator imports this package's drivers (a cycle at import time), and a
        # config that merely names the `sim` type need not load it
        from drivers.emulators.thermal import Scene, ThermalSim

        scene = Scene(ambient_c=cfg.ambient_c, face_center=(cfg.face_col, cfg.face_row),
                      blackbody=(28, 20, 3, 3) if cfg.blackbody else None, blackbody_c=cfg.blackbody_c)
        self.sim: ThermalSim = ThermalSim(cfg.kind, cfg.scenario, rate_hz=cfg.rate_hz, seed=cfg.seed, scene=scene,
                              fever_windows=tuple(cfg.fever_windows), schedule_period_s=cfg.schedule_period_s)
        self.sim.use_auto_link()
        common = {"port": self.sim.path, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5,
                  "max_age_s": cfg.max_age_s}
        self.driver: SerialThermalSensor
        if cfg.kind == "gy_mcu90614":
            self.driver = GyMcu90614(GyMcu90614Config.model_validate(common))
        elif cfg.kind == "gy_mcu90640":
            self.driver = GyMcu90640(GyMcu90640Config.model_validate(common))
        else:
            self.driver = AsciiLine(AsciiLineConfig.model_validate(common))

    def start(self) -> None:
        self.sim.start()
        self.driver.start()

    def read(self) -> Reading | None:
        return self.driver.read()

    def wait(self, timeout: float, newer_than: float | None = None) -> Reading | None:
        return self.driver.wait(timeout, newer_than)

    @property
    def stats(self) -> ThermalStats:
        return self.driver.stats

    @property
    def heartbeat(self) -> Heartbeat:
        return self.driver.heartbeat

    def close(self) -> None:
        self.driver.close()
        self.sim.stop()
