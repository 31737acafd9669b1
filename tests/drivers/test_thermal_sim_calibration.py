"""The simulators' calibration scenes over a real pty, read by the real drivers: a reference target of
known temperature seen through a known sensor error (spot), and a warm target where it was put (array)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.emulators.thermal import Scene, ThermalSim
from drivers.thermal import Reading
from drivers.thermal.gy_mcu90614 import GyMcu90614, GyMcu90614Config
from drivers.thermal.gy_mcu90640 import GyMcu90640, GyMcu90640Config


@pytest.mark.parametrize("ambient", [18.0, 24.0, 30.0])
def test_spot_reads_the_target_through_the_sensor_error(ambient: float) -> None:
    scene = Scene(ambient_c=ambient, target_c=35.0, error_offset_c=0.6, error_ambient_slope=0.04)
    with ThermalSim("gy_mcu90614", rate_hz=40.0, scene=scene, seed=2) as sim:
        drv = GyMcu90614(GyMcu90614Config(port=sim.path))
        drv.start()
        try:
            readings: list[Reading] = []
            while len(readings) < 8:
                r = drv.wait(30.0, newer_than=readings[-1].t if readings else 0.0)
                assert r is not None, drv.stats
                readings.append(r)
        finally:
            drv.close()
    expected = 35.0 + 0.6 + 0.04 * (ambient - 24.0)
    assert abs(np.mean([r.object_c for r in readings]) - expected) < 0.06
    assert all(r.ambient_c == pytest.approx(ambient) for r in readings)


def test_array_shows_the_warm_target_where_it_was_put() -> None:
    scene = Scene(face_present=False, warm_target=(21.0, 6.0), warm_target_c=41.0)
    with ThermalSim("gy_mcu90640", rate_hz=8.0, scene=scene, seed=2) as sim:
        drv = GyMcu90640(GyMcu90640Config(port=sim.path))
        drv.start()
        try:
            r = drv.wait(30.0, newer_than=0.0)
        finally:
            drv.close()
    assert r is not None and r.frame is not None
    row, col = np.unravel_index(int(np.argmax(r.frame)), r.frame.shape)
    assert (int(row), int(col)) == (6, 21) and r.frame.max() == pytest.approx(41.0, abs=0.4)
    assert float(np.median(r.frame)) < 26.0  # nobody in view: the wall, not a face
