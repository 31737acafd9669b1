"""The access-panel contract the gate codes against: `Panel`, `PanelError`, `PanelCommand`, `PanelStats`.

A panel output sends a granted person's card number to an access controller the community already owns,
as a standard reader would (Wiegand, OSDP). `send_card(card)` returns at once (the frame goes out on the
driver's own thread); a card the format cannot carry raises PanelError. What the panel says back (OSDP:
LED, buzzer and output commands) is handed to `on_command` as it arrives, on the driver's thread, and is
kept in `indicators` for the gate's health. `online` is False while a panel that should poll does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol


class PanelError(RuntimeError):
    """A card could not be sent (a number the format cannot carry, the device gone); the message says why."""


@dataclass(frozen=True)
class PanelCommand:
    """A command from the panel: `kind` led/buzzer/output, `on` (LED lit, buzzer sounding, output active),
    `colour` for an LED, `ms` how long (0: until told otherwise), `t` time.monotonic()."""

    kind: Literal["led", "buzzer", "output"]
    on: bool
    t: float
    colour: str | None = None
    ms: int = 0
    number: int = 0  # the output or LED number on the reader


@dataclass(frozen=True)
class PanelStats:
    cards_sent: int = 0
    send_failures: int = 0
    malformed_frames: int = 0  # frames from the panel that failed their checks (counted, never fatal)
    commands: int = 0
    last_error: str | None = None
    last_poll_age_s: float | None = None  # since the panel last polled (None: it never did, or no polling)


@dataclass
class Indicators:
    """What the panel last showed on this reader: the LED colour and whether the buzzer sounds."""

    led: str | None = None
    buzzer: bool = False
    output: bool = False
    history: list[PanelCommand] = field(default_factory=list)

    def apply(self, cmd: PanelCommand) -> None:
        if cmd.kind == "led":
            self.led = cmd.colour if cmd.on else None
        elif cmd.kind == "buzzer":
            self.buzzer = cmd.on
        else:
            self.output = cmd.on
        self.history = [*self.history[-19:], cmd]

    def as_dict(self) -> dict[str, object]:
        return {"led": self.led, "buzzer": self.buzzer, "output": self.output}


class Panel(Protocol):
    on_command: Callable[[PanelCommand], None] | None

    def start(self) -> None: ...

    def send_card(self, card: int) -> None: ...

    @property
    def online(self) -> bool: ...

    @property
    def stats(self) -> PanelStats: ...

    @property
    def indicators(self) -> Indicators: ...

    def close(self) -> None: ...
