"""Installer and test commands for the drivers: read a thermal sensor, pulse a relay, serve a simulator.

`add_commands(sub)` hangs `drivers read-thermal`, `drivers set-baud`, `drivers pulse` and
`sim thermal|relay` under the `gate` command's subparsers; `main(argv)` runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from pydantic import TypeAdapter, ValidationError

from drivers.emulators.relay import CONTROL_HELP, RELAY_KINDS, RELAY_SCENARIOS, run_relay_sim
from drivers.emulators.thermal import KINDS, SCENARIOS, run_thermal_sim
from drivers.relay import RELAY_TYPES, RelayConfig, RelayError, make_relay
from drivers.thermal import THERMAL_TYPES, ThermalConfig, make_thermal
from drivers.thermal.gy_mcu90640 import BAUD_CODES, GyMcu90640, GyMcu90640Config

log = logging.getLogger(__name__)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"][1:]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def cmd_read_thermal(args: argparse.Namespace) -> int:
    raw: dict[str, Any] = {"type": args.type}
    if args.type == "sim":
        raw.update(kind=args.kind, scenario=args.scenario)
    else:
        if not args.port:
            print("error: --port is required for a real sensor", file=sys.stderr)
            return 2
        raw["port"] = args.port
        if args.baud is not None:
            raw["baud"] = args.baud
    try:
        cfg = TypeAdapter(ThermalConfig).validate_python(raw)
    except ValidationError as exc:
        print(f"error: {_validation_message(exc)}", file=sys.stderr)
        return 2
    sensor = make_thermal(cfg)
    sensor.start()
    try:
        last: float | None = None
        deadline = time.monotonic() + args.timeout
        for _ in range(args.count):
            reading = sensor.wait(max(0.0, deadline - time.monotonic()), newer_than=last)
            if reading is None:
                st = sensor.stats
                print(f"error: no reading from {args.port or 'the simulator'} within {args.timeout:g} s "
                      f"(frames ok {st.frames_ok}, checksum failures {st.checksum_failures}, not a "
                      f"measurement {st.implausible}, resyncs {st.resyncs}, "
                      f"reconnects {st.reconnects}, last error: {st.last_error})", file=sys.stderr)
                return 1
            last = reading.t
            if args.json:
                print(json.dumps(reading.as_dict(with_frame=not args.no_frame)), flush=True)
            else:
                print(f"object {reading.object_c:6.2f} C   ambient {reading.ambient_c:6.2f} C", flush=True)
    finally:
        sensor.close()
    return 0


def cmd_set_baud(args: argparse.Namespace) -> int:
    """Switch a GY-MCU90640's UART speed: prove the current speed with a frame, send A5 15 code, and
    prove the new one with a frame read at it."""
    sensor = GyMcu90640(GyMcu90640Config(port=args.port, baud=args.baud))
    sensor.start()
    try:
        if sensor.wait(args.timeout) is None:
            st = sensor.stats
            print(f"error: no frame from {args.port} at {args.baud} baud within {args.timeout:g} s; is that the "
                  f"module's speed now? (last error: {st.last_error})", file=sys.stderr)
            return 1
        if sensor.set_module_baud(args.to, timeout=args.timeout):
            print(json.dumps({"port": args.port, "baud": args.to, "was": args.baud}))
            print(f"the module now speaks {args.to} baud: set `baud = {args.to}` in [thermal]", file=sys.stderr)
            return 0
        print(f"error: no frame at {args.to} baud after the command; the driver is back at {sensor.baud} "
              f"baud ({sensor.stats.last_error}). A module that applies the setting after a power cycle speaks "
              f"{args.to} baud once it was switched off and on.", file=sys.stderr)
        return 1
    finally:
        sensor.close()


def cmd_pulse(args: argparse.Namespace) -> int:
    raw: dict[str, Any] = {"type": args.type}
    if args.type == "lcus":
        raw.update(port=args.port, channel=args.channel)
    elif args.type == "modbus_rtu":
        raw.update(port=args.port, coil=args.channel - 1, slave=args.slave)
    elif args.type == "gpio":
        raw.update(chip=args.port or "/dev/gpiochip0", line=args.channel, active_low=args.active_low)
    else:
        raw.update(kind=args.kind)
    if args.type in ("lcus", "modbus_rtu") and not args.port:
        print("error: --port is required", file=sys.stderr)
        return 2
    if args.baud is not None and args.type in ("lcus", "modbus_rtu"):
        raw["baud"] = args.baud
    try:
        cfg = TypeAdapter(RelayConfig).validate_python(raw)
    except ValidationError as exc:
        print(f"error: {_validation_message(exc)}", file=sys.stderr)
        return 2
    relay = make_relay(cfg)
    try:
        relay.start()
        failures = relay.stats.switch_failures
        relay.pulse(args.ms)
        # pulse() returns at once; a command-line pulse waits for its end before releasing the port
        deadline = time.monotonic() + args.ms / 1000 + 2.0
        while relay.pulsing and time.monotonic() < deadline:
            time.sleep(0.01)
        if relay.pulsing:
            print(f"error: the relay did not switch off in time ({relay.stats.last_error})", file=sys.stderr)
            return 1
        if relay.stats.switch_failures > failures:  # a switch the relay's worker made (modbus_rtu) failed
            print(f"relay error: {relay.stats.last_error}", file=sys.stderr)
            return 1
        print(json.dumps({"pulsed_ms": args.ms, "state": relay.state, "events": [
            {"name": e.name, "active": e.active, "t": e.t} for e in relay.events()]}))
        return 0
    except RelayError as exc:
        print(f"relay error: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            relay.close()
        except RelayError as exc:
            print(f"relay error: {exc}", file=sys.stderr)


def _serve(run: Any, **kwargs: Any) -> int:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run(stop=stop, announce=lambda path: print(path, flush=True), **kwargs)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def cmd_sim_thermal(args: argparse.Namespace) -> int:
    return _serve(run_thermal_sim, kind=args.kind, scenario=args.scenario, link=args.link, seed=args.seed,
                  rate_hz=args.rate)


def cmd_sim_relay(args: argparse.Namespace) -> int:
    return _serve(run_relay_sim, kind=args.kind, scenario=args.scenario, link=args.link, seed=args.seed,
                  commands=sys.stdin if args.control else None)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `drivers ...` and `sim ...` to a subparsers object (the `gate` command's top level)."""
    drv = sub.add_parser("drivers", help="talk to the gate's hardware: thermal sensors, relays")
    dsub = drv.add_subparsers(dest="drivers_command", required=True)

    rt = dsub.add_parser("read-thermal", help="read a thermal sensor")
    rt.add_argument("--type", required=True, choices=THERMAL_TYPES)
    rt.add_argument("--port", help="serial port (not for --type sim)")
    rt.add_argument("--baud", type=int, help="serial speed (default: the module's)")
    rt.add_argument("--count", type=int, default=1, help="how many readings (default 1)")
    rt.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for all readings")
    rt.add_argument("--json", action="store_true", help="one JSON reading per line")
    rt.add_argument("--no-frame", action="store_true", help="leave the array frame out of the JSON")
    rt.add_argument("--kind", default="gy_mcu90640", choices=KINDS, help="--type sim: module to simulate")
    rt.add_argument("--scenario", default="normal", choices=SCENARIOS, help="--type sim: scenario")
    rt.set_defaults(func=cmd_read_thermal)

    speeds = sorted(BAUD_CODES)
    sb = dsub.add_parser("set-baud", help="switch a GY-MCU90640's UART speed (A5 15 01/02)")
    sb.add_argument("--type", required=True, choices=["gy_mcu90640"])
    sb.add_argument("--port", required=True, help="serial port")
    sb.add_argument("--baud", type=int, default=115200, choices=speeds, help="the module's speed now")
    sb.add_argument("--to", type=int, required=True, choices=speeds, help="the speed to switch to")
    sb.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a frame at each speed")
    sb.set_defaults(func=cmd_set_baud)

    pulse = dsub.add_parser("pulse", help="pulse a relay (forced off before and after)")
    pulse.add_argument("--type", required=True, choices=RELAY_TYPES)
    pulse.add_argument("--port", help="serial port (lcus, modbus_rtu) or GPIO chip (gpio)")
    pulse.add_argument("--baud", type=int, help="serial speed")
    pulse.add_argument("--channel", type=int, default=1,
                       help="relay number from 1 (lcus, modbus_rtu: coil = channel-1) or line offset (gpio)")
    pulse.add_argument("--slave", type=int, default=1, help="modbus_rtu: board address")
    pulse.add_argument("--active-low", action="store_true", help="gpio: relay on when the line is low")
    pulse.add_argument("--ms", type=int, default=500, help="pulse length in milliseconds")
    pulse.add_argument("--kind", default="modbus", choices=RELAY_KINDS, help="--type sim: board to simulate")
    pulse.set_defaults(func=cmd_pulse)

    sim = sub.add_parser("sim", help="run a device simulator on a pseudo-terminal (prints its path)")
    ssub = sim.add_subparsers(dest="sim_command", required=True)
    th = ssub.add_parser("thermal", help="simulated thermal sensor")
    th.add_argument("--pty", action="store_true", required=True, help="serve on a new pseudo-terminal")
    th.add_argument("--kind", default="gy_mcu90640", choices=KINDS)
    th.add_argument("--scenario", default="normal", choices=SCENARIOS)
    th.add_argument("--rate", type=float, help="frames per second (default: the module's)")
    th.add_argument("--link", help="also make this path a symlink to the pty (kept across unplugs)")
    th.add_argument("--seed", type=int, default=0)
    th.set_defaults(func=cmd_sim_thermal)
    rl = ssub.add_parser("relay", help="simulated relay board")
    rl.add_argument("--pty", action="store_true", required=True, help="serve on a new pseudo-terminal")
    rl.add_argument("--kind", default="modbus", choices=RELAY_KINDS)
    rl.add_argument("--scenario", default="normal", choices=RELAY_SCENARIOS)
    rl.add_argument("--link", help="also make this path a symlink to the pty (kept across unplugs)")
    rl.add_argument("--seed", type=int, default=0)
    rl.add_argument("--control", action="store_true",
                    help=f"press the board's inputs by typing lines on standard input: {CONTROL_HELP}; "
                    "e.g. gate sim relay --pty --control, then type: fire")
    rl.set_defaults(func=cmd_sim_relay)


def main(argv: list[str] | None = None) -> int:
    """Run one drivers/sim command standalone (as `python -m drivers.cli ...`)."""
    parser = argparse.ArgumentParser(prog="gate")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
