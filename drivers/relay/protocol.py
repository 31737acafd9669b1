"""The relay contract the gate codes against: the `Relay` protocol, `RelayError`, `InputEvent`,
`RelayStats`, and `input_changes` (one poll's input states and edges turned into events).

`pulse(ms)` always returns at once; a pulse asked for while one is pending or running extends it. A
switch that fails raises RelayError (in the caller for drivers that switch locally) or is counted in
`stats` (write_failures, switch_failures, last_error: the gate's relay_fault alarm) for drivers that
switch from their worker thread. The relay is forced off at start, at close() and at interpreter exit
(unless a fire holds it released, or `fail_mode = "safe"` leaves it released at close). `hold(reason,
on)` keeps it on (a guard's hold-open; the fire hold is the driver's own), `siren(seconds)` sounds the
siren output where the board has one.

Input names: "pass" (the turnstile's PASS output), "door" (a door sensor), "fire" (the fire input, as
the driver debounced it: active while the turnstile is held released for a fire), "fire_trouble" (the
supervised fire line is cut or shorted: fire is active too) and "exit" (the exit button).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RelayError(RuntimeError):
    """A relay could not be switched (or read back); the gate turns this into an alarm."""


@dataclass(frozen=True)
class InputEvent:
    """An input changed: `name` is "pass", "door", "fire", "fire_trouble" or "exit", `active` its new
    state, `t` time.monotonic()."""

    name: str
    active: bool
    t: float


@dataclass(frozen=True)
class RelayStats:
    writes: int
    write_failures: int
    reconnects: int
    input_failures: int
    pulses: int
    last_error: str | None
    switch_failures: int = 0  # switches that failed even after the reopen-and-retry (write_failures counts tries)


class Relay(Protocol):
    def start(self) -> None: ...

    def pulse(self, ms: int) -> None: ...

    def set(self, on: bool) -> None: ...

    @property
    def state(self) -> bool: ...

    @property
    def pulsing(self) -> bool: ...

    def hold(self, reason: str, on: bool) -> None: ...

    @property
    def holds(self) -> frozenset[str]: ...

    def siren(self, seconds: float) -> bool: ...

    @property
    def siren_on(self) -> bool: ...

    def events(self) -> list[InputEvent]: ...

    def input_state(self, name: str) -> bool | None: ...

    @property
    def stats(self) -> RelayStats: ...

    def close(self) -> None: ...


def input_changes(known: dict[str, bool], edges: list[InputEvent], values: dict[str, bool],
                  now: float) -> list[InputEvent]:
    """The input events of one poll, updating `known` (the last state of each input): first the edges the
    device timestamped (a pulse between two polls counts), then the states read now (stamped `now`).
    Only a change of state is an event, so an edge already seen as a state is not repeated; the first
    state of an input is its baseline, not an event."""
    out = []
    for event in [*edges, *(InputEvent(name, active, now) for name, active in values.items())]:
        if known.get(event.name) != event.active:
            if event.name in known:
                out.append(event)
            known[event.name] = event.active
    return out
