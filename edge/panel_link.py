"""Panel mode: the lane's grant goes to an access panel (drivers.panel), and the panel decides.

`PanelLink` is the lane's `GrantHook` when `[panel] type` is not "none". On a face grant it sends the
person's card; the gate's own relay is pulsed as well only with `drive_relay`. While the panel is offline
(an OSDP panel that stopped polling, Wiegand lines not held) the gate falls back per `fallback`: "relay"
opens with its own relay, "deny" opens nothing (the event still records the face's grant; the
`panel_offline` alarm says why the turnstile stayed shut). The panel's commands come back through
`on_command`: an output turned on (OSDP osdp_OUT) pulses the relay when `obey_output`, the LED lit green
when `obey_led_green`; LED and buzzer are kept for the gate's health (`snapshot`). The supervisor's first
pass starts the driver (`supervise`; a second after the gate starts), and one that cannot start is retried
every `RETRY_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from drivers.panel import Panel, PanelCommand, PanelConfig, PanelError, make_panel
from drivers.relay import Relay, RelayError
from edge.records import PersonRecord

log = logging.getLogger(__name__)
RETRY_S = 10.0


class GrantHook(Protocol):
    """What the lane calls on a face grant instead of pulsing the relay itself."""

    def on_grant(self, person: PersonRecord | None) -> None: ...


class PanelLink:
    def __init__(self, cfg: PanelConfig, panel: Panel, relay: Relay | None, pulse_ms: int) -> None:
        self.cfg, self.panel, self.relay, self.pulse_ms = cfg, panel, relay, pulse_ms
        self.panel.on_command = self._on_command
        self._started = False
        self._start_error: str | None = None
        self._next_try = float("-inf")
        self._lock = threading.Lock()
        self.fallbacks = 0  # grants while the panel was offline or refused the card
        self.no_card = 0  # grants of persons without a card

    @property
    def active(self) -> bool:
        """Panel mode ([panel] type is not "none")."""
        return self.cfg.type != "none"

    def start(self) -> None:
        """Start the driver; a failure is kept for `health` (and retried from there), never raised."""
        if not self.active:
            return
        with self._lock:
            if self._started:
                return
            self._next_try = time.monotonic() + RETRY_S
            try:
                self.panel.start()
            except PanelError as exc:
                self._start_error = str(exc)
                log.error("panel: %s (retrying every %g s)", exc, RETRY_S)
                return
            self._started, self._start_error = True, None

    def on_grant(self, person: PersonRecord | None) -> None:
        if not (self._started and self.panel.online):
            self._fallback("the panel is offline")
            return
        card = person.card if person is not None else None
        if card is None:
            self.no_card += 1
            log.warning("panel: %s has no card; the panel is not told", person.id if person else "the person")
        else:
            try:
                self.panel.send_card(card)
            except PanelError as exc:
                self._fallback(str(exc))
                return
        if self.cfg.drive_relay:
            self._pulse(self.pulse_ms)

    def _fallback(self, why: str) -> None:
        self.fallbacks += 1
        if self.cfg.fallback == "relay":
            log.warning("panel: %s; opening with the gate's own relay (fallback = relay)", why)
            self._pulse(self.pulse_ms)
        else:
            log.warning("panel: %s; the turnstile stays shut (fallback = deny)", why)

    def _pulse(self, ms: int) -> None:
        if self.relay is None:
            return
        try:
            self.relay.pulse(ms)
        except RelayError as exc:
            log.error("panel: relay pulse failed: %s", exc)

    def _on_command(self, cmd: PanelCommand) -> None:
        """On the driver's thread: an output the panel turns on opens the turnstile (when obeyed)."""
        granted = (cmd.kind == "output" and self.cfg.obey_output) or \
            (cmd.kind == "led" and cmd.colour == "green" and self.cfg.obey_led_green)
        if granted and cmd.on:
            self._pulse(min(cmd.ms, 30_000) if cmd.kind == "output" and cmd.ms > 0 else self.pulse_ms)

    def health(self) -> tuple[bool, str]:
        """(ok, detail) for the supervisor's `panel_offline` alarm; retries a driver that did not start."""
        if not self._started and time.monotonic() >= self._next_try:
            self.start()
        if not self._started:
            return False, f"cannot start: {self._start_error}"
        if not self.panel.online:
            age = self.panel.stats.last_poll_age_s
            return False, "not polled" + (f" for {age:.1f} s" if age is not None else " yet") + \
                f"; fallback = {self.cfg.fallback}"
        return True, "ok"

    def supervise(self, set_health: Callable[[str, bool, str, str], None]) -> None:
        """The supervisor's pass: the `panel` part's health (`panel_offline` alarm), its detail naming
        what the panel shows on this reader (LED colour, buzzer)."""
        if not self.active:
            return
        ok, detail = self.health()
        shown = self.panel.indicators
        set_health("panel", ok, f"{detail}; led {shown.led or 'off'}, buzzer {'on' if shown.buzzer else 'off'}",
                   "panel_offline")

    def snapshot(self) -> dict[str, object]:
        st = self.panel.stats
        return {"type": self.cfg.type, "online": self._started and self.panel.online, **self.panel.indicators.as_dict(),
                "cards_sent": st.cards_sent, "send_failures": st.send_failures, "malformed_frames": st.malformed_frames,
                "fallbacks": self.fallbacks, "no_card": self.no_card, "error": st.last_error or self._start_error}

    def close(self) -> None:
        try:
            self.panel.close()
        except (PanelError, OSError) as exc:
            log.error("panel close failed: %s", exc)


class _Lane(Protocol):
    panel: GrantHook | None


def attach_panel(cfg: PanelConfig, lane: _Lane, relay: Relay | None, pulse_ms: int) -> PanelLink:
    """The link for `[panel]`, hooked into `lane` in panel mode; for type "none" it does nothing (the
    lane pulses the relay as always)."""
    link = PanelLink(cfg, make_panel(cfg), relay, pulse_ms)
    if link.active:
        lane.panel = link
    return link
