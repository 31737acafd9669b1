"""`gate sim relay --control`: the installer (or a demo) presses the simulated board's fire and exit
inputs by typing, and the real Modbus relay driver on the pty sees them."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from support.wait import poll_until as wait_until

from drivers.relay import ModbusRtuConfig
from drivers.relay.modbus_rtu import ModbusRtuRelay
from drivers.relay.protocol import InputEvent

REPO = Path(__file__).resolve().parents[2]
WIRED = {"pass_input": 0, "door_input": 1, "fire_input": 2, "exit_input": 3, "input_poll_s": 0.02,
         "fire_release_s": 0.3}


def test_typed_commands_press_the_boards_inputs() -> None:
    sim = subprocess.Popen([sys.executable, "-m", "edge", "sim", "relay", "--pty", "--kind", "modbus",
                            "--scenario", "no_pass", "--control"], cwd=REPO, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert sim.stdin is not None and sim.stdout is not None
    lines: list[str] = []

    def read() -> None:
        assert sim.stdout is not None
        for line in sim.stdout:
            lines.append(line.strip())

    threading.Thread(target=read, daemon=True).start()
    relay = None
    try:
        assert wait_until(lambda: bool(lines), 60), "the simulator printed no pty path"
        relay = ModbusRtuRelay(ModbusRtuConfig.model_validate({"port": lines[0], **WIRED}))
        relay.start()
        assert wait_until(lambda: relay is not None and relay.input_state("fire") is False, 30)

        def say(command: str, answer: str) -> None:
            assert sim.stdin is not None
            sim.stdin.write(command + "\n")
            sim.stdin.flush()
            assert wait_until(lambda: any(answer in line for line in lines[1:]), 30), lines

        say("fire", "FIRE")
        assert wait_until(lambda: relay is not None and relay.input_state("fire") is True and relay.state, 30)
        assert relay.holds == {"fire"}  # the driver holds the turnstile released
        say("fire off", "normal")
        assert wait_until(lambda: relay is not None and "fire" not in relay.holds, 30)
        events: list[InputEvent] = []

        def exit_pressed() -> bool:
            assert relay is not None
            events.extend(relay.events())
            return any(e.name == "exit" and e.active for e in events)

        say("exit", "exit button pressed")
        assert wait_until(exit_pressed, 30)
        say("bogus", "unknown command 'bogus'")
        say("cut", "fire line cut")
        assert sim.poll() is None  # bad input leaves it serving
    finally:
        if relay is not None:
            relay.close()
        sim.terminate()
        sim.wait(30)
    assert "Traceback" not in (sim.stderr.read() if sim.stderr else "")
