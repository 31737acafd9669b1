"""A real `gate run` process as the service runs it, and what it tells: its log (stderr) and its
decisions (stdout, one line per decision: time, GRANT/DENY, who, temperature, reasons, latency)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.paths import REPO
from support.wait import wait_until

STARTED = "starting:"  # the gate's log line once its parts are built, just before its threads start
_DECISION = re.compile(r"^\S+ (GRANT|DENY)\s+(.*?)\s{2,}")
_PERSON = re.compile(r"\(([^()]+)\)$")


@dataclass(frozen=True)
class Decision:
    """One decision line of `gate run`: "grant" or "deny", and the person's id (None: an unknown face)."""

    decision: str
    person_id: str | None
    line: str


def parse_decision(line: str) -> Decision | None:
    m = _DECISION.match(line)
    if not m:
        return None
    who = _PERSON.search(m.group(2))
    return Decision(m.group(1).lower(), who.group(1) if who else None, line)


@dataclass
class GateProcess:
    """`python -m edge run --config FILE`; stdout and stderr go to files in `workdir`. `preexec` runs in
    the child before exec (resource limits)."""

    config: Path
    workdir: Path
    name: str = "gate"
    preexec: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.out_path = self.workdir / f"{self.name}.out"
        self.err_path = self.workdir / f"{self.name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(self.config)],
                                         cwd=REPO, stdout=out, stderr=err, preexec_fn=self.preexec,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def decisions(self) -> list[str]:
        return [line for line in self.out_path.read_text(errors="replace").splitlines()
                if " GRANT " in line or " DENY " in line]

    def parsed_decisions(self) -> list[Decision]:
        return [d for line in self.decisions if (d := parse_decision(line)) is not None]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, timeout: float) -> None:
        """Until `text` is in the log; AssertionError if the gate exits first or the deadline passes."""
        wait_until(lambda: text in self.log or not self.alive(), timeout, f"{text!r} in the gate's log", every=0.05)
        log = self.log
        assert text in log, f"the gate exited ({self.proc.returncode}) before logging {text!r}:\n{log[-3000:]}"

    def wait_started(self, timeout: float = 300.0) -> None:
        """Until the gate has loaded its models and store and is starting its threads."""
        self.wait_log(STARTED, timeout)

    def wait_decisions(self, done: Callable[[list[Decision]], bool], timeout: float, what: str) -> list[Decision]:
        """Until `done(decisions so far)`; AssertionError if the gate exits first or the deadline passes."""
        wait_until(lambda: done(self.parsed_decisions()) or not self.alive(), timeout, what, every=0.1)
        decided = self.parsed_decisions()
        assert done(decided), (f"the gate exited ({self.proc.returncode}) before {what}; decided "
                               f"{[d.line for d in decided]}:\n{self.log[-3000:]}")
        return decided

    def kill(self) -> None:
        """SIGKILL: no handler, no flush, no clean close (a power cut as far as the process can tell)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as systemd stops the service; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"the gate did not stop within {timeout} s of SIGTERM:\n{self.log[-3000:]}") from None
