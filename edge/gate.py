"""`gate run`: wires camera, vision, drivers, policy and store together and supervises them.

Threads: camera capture, the vision loop (one Lane), the thermal reader, the relay's pulse timer, the
store writer, and this supervisor, which checks each part's freshness every second, raises an alarm
when a part fails or recovers (the broker link after a grace period), restarts what died with a
backoff, writes again what the disk refused, and on SIGTERM turns the relay off and flushes the store
before exiting.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from drivers.backoff import Backoff
from drivers.heartbeat import Heartbeat
from drivers.relay import Relay, RelayError, make_relay
from drivers.thermal import ThermalSensor, make_thermal
from edge import __version__, sdnotify
from edge.camera import Camera
from edge.carewatch import overdue
from edge.config import GateConfig
from edge.enroll import store_path
from edge.heap import release_free_heap
from edge.lane import Lane, Outcome, Whitelist
from edge.panel_link import attach_panel
from edge.peer_passages import PeerPassages, reload_passages
from edge.policy import manual_open_decision
from edge.safety import LaneSafety
from edge.store import AlarmRecord, EventRecord, Store
from edge.store.retention import purge_expired
from edge.store.writer import StoreWriter
from edge.vision import FaceEngine

if TYPE_CHECKING:
    from edge.protocol.payloads import HubState
    from edge.sync.mqtt import MqttSync
    from edge.sync.whitelist import WhitelistApplier
    from edge.web.ports import WebParts

log = logging.getLogger(__name__)
ALARM_FLUSH_S = 5.0  # how often grouped alarms that grew are looked at (sent once their window has passed)


@dataclass
class PartHealth:
    ok: bool = True
    detail: str = ""
    since: float = field(default_factory=time.monotonic)


class Gate:
    def __init__(self, cfg: GateConfig, on_outcome: Callable[[Outcome], None] | None = None) -> None:
        self.cfg = cfg
        self.policy = cfg.policy
        self.stop_event = threading.Event()
        self.store = Store.open(store_path(cfg), snapshots=cfg.store.snapshots)
        self.store.configure_alarms(timedelta(minutes=cfg.store.alarm_group_minutes), cfg.store.alarm_max_rows)
        self.writer = StoreWriter(self.store)
        self.engine = FaceEngine(cfg.vision)
        self.camera = Camera(cfg.camera)
        self.thermal: ThermalSensor | None = make_thermal(cfg.thermal) if self.policy.temperature_screening else None
        self.relay: Relay = make_relay(cfg.relay)
        self._on_outcome = on_outcome
        self._listeners: list[Callable[[str, dict[str, object]], None]] = []
        self._listeners_lock = threading.Lock()
        self.lane = Lane(cfg.lane, self.policy, cfg.temperature, self.engine,
                         Whitelist.load(self.store, self.engine.model_id), self.thermal, self.relay, self.writer,
                         self._outcome, gate_id=cfg.gate.id)
        self.panel = attach_panel(cfg.panel, self.lane, self.relay, cfg.lane.relay_pulse_ms)  # panel mode
        self.safety = LaneSafety.attach(self, self._publish)  # fire alarms, exit button, siren, hold-open
        reload_passages(self.lane, self.store, self.policy.anti_passback_s)  # anti-passback survives a restart
        release_free_heap()  # what loading the models and the whitelist freed goes back to the OS
        self.applier: WhitelistApplier | None = None
        self.peers = PeerPassages(self.lane, self.store, self.writer.submit_kept, cfg.gate.id,
                                  max_clock_skew_s=cfg.mqtt.max_clock_skew_s)
        self.sync: MqttSync | None = self._make_sync() if cfg.mqtt.enabled else None
        self.health: dict[str, PartHealth] = {}
        self._vision_thread: threading.Thread | None = None
        self.vision_heartbeat = Heartbeat()
        self._stuck: list[str] = []
        self.backoff: dict[str, Backoff] = {}
        self._crashed: dict[str, str] = {}  # part -> why its thread ended
        self._mqtt_down_since: float | None = None
        self._care_alarmed: dict[str, datetime] = {}  # care alarms raised, before the store has them
        self._hub_care_until: float | None = None  # the hub keeps the care watch until then (monotonic)
        self._relay_started = False
        self._started = False
        self._relay_counts = (0, 0)
        self._last_care_check = float("-inf")  # the first pass checks at once
        self._last_retention = float("-inf")  # the first pass purges at once
        self._last_alarm_flush = float("-inf")
        self.started_at = time.monotonic()

    # -- sync with the community server ---------------------------------------------------------------
    def _make_sync(self) -> MqttSync:
        from edge.sync.ha_bridge import make_bridge
        from edge.sync.identity import load_identity
        from edge.sync.mqtt import MqttSync
        from edge.sync.snapshot_ask import SnapshotAsk
        from edge.sync.whitelist import WhitelistApplier

        mqtt = self.cfg.mqtt
        identity = load_identity(mqtt.gate_key_file, self.cfg.gate.data_dir)  # GateKeyError: the fix in one line
        log.info("gate key %s (key id %s): %s", identity.path, identity.key.key_id, identity.key.public_text)
        applier = WhitelistApplier(
            self.store, self.engine, self.engine.model_id, mqtt.trusted_keys(), community=self.cfg.gate.community,
            gate_id=self.cfg.gate.id, keep_photos=mqtt.keep_photos,
            photo_dir=self.cfg.gate.data_dir / "photos" if mqtt.keep_photos else None,
            max_snapshot_persons=mqtt.max_snapshot_persons, on_applied=self._whitelist_applied,
            snapshot_chunk_timeout_s=mqtt.snapshot_chunk_timeout_s,
            ask=SnapshotAsk(mqtt.snapshot_reask_min_s, mqtt.snapshot_reask_max_s))
        self.applier = applier
        sync = MqttSync(mqtt, self.store, gate_id=self.cfg.gate.id, community=self.cfg.gate.community,
                        state=self.health_snapshot, whitelist=applier, on_peer_event=self.peers.on_event,
                        password=mqtt.password(), key=identity.key, members=applier.members,
                        alarm=self._sync_alarm, on_hub_state=self._hub_state, on_passages=self.peers.on_backfill,
                        ha=make_bridge(self.cfg, manual_open=self.manual_open, alarm=self._sync_alarm,
                                       subscribe=self.subscribe))
        return sync

    def _hub_state(self, state: HubState | None) -> None:
        """The community hub's heartbeat (intake thread): while fresh and it keeps the care watch, this
        gate raises no care-watch alarm of its own (the hub raises one for the community)."""
        until = None if state is None or not state.care_watch else time.monotonic() + 3 * state.interval_s
        if (until is None) != (self._hub_care_until is None):
            log.info("care watch %s", "left to the community hub" if until else "kept by this gate (no hub)")
        self._hub_care_until = until

    def _sync_alarm(self, kind: str, severity: str, message: str, details: dict[str, object]) -> None:
        """An alarm the sync raises (forged_message, intake_shed), already throttled there."""
        self._alarm(kind, severity, message, **details)

    def _whitelist_applied(self, version: int) -> None:
        self.lane.swap_whitelist(Whitelist.load(self.store, self.engine.model_id))
        release_free_heap()  # the old whitelist and the load's temporaries
        log.info("whitelist version %s applied: %d persons", version, len(self.lane.whitelist.persons))

    # -- what the guard page and other observers see -----------------------------------------------
    def subscribe(self, fn: Callable[[str, dict[str, object]], None]) -> Callable[[], None]:
        """Call fn(kind, payload) for every "decision" and "alarm" from now on; returns the unsubscribe."""
        with self._listeners_lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)
        return unsubscribe

    def _publish(self, kind: str, payload: dict[str, object]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(kind, payload)
            except Exception:  # an observer's bug must not stop the gate
                log.exception("listener failed on %s", kind)

    def _outcome(self, outcome: Outcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        self._publish("decision", {**outcome.event.to_dict(), "name": outcome.name,
                                   "latency_ms": outcome.latency_ms})
        for alarm in outcome.event.alarms:
            self._publish("alarm", dict(alarm))

    def record_alarm(self, alarm: AlarmRecord) -> None:
        self.writer.submit_kept(self.store.record_alarm, alarm)
        self._publish("alarm", alarm.to_dict())

    def manual_open(self, guard: str, reason: str) -> EventRecord:
        """A guard opens the gate by hand: relay pulse, an event (synced like any other) and an audit row."""
        if not reason.strip():
            raise ValueError("a reason is required to open the gate by hand")
        now = datetime.now(UTC)
        decision = manual_open_decision(guard, reason, now)
        if decision.outcome != "grant":
            raise ValueError("manual open refused: " + ", ".join(r.code for r in decision.reasons))
        self.relay.pulse(self.cfg.lane.relay_pulse_ms)  # RelayError propagates: the guard must see it
        event = EventRecord(ts=now, gate_id=self.cfg.gate.id, direction=self.policy.direction, decision="grant",
                            reasons=tuple(r.as_dict() for r in decision.reasons), scores={"guard": guard})
        self.lane.expect_passage(event)  # the guard's opening is no tailgating
        self.writer.submit_kept(self.store.record_event, event, passage=False)
        self.writer.submit_kept(self.store.audit, guard, "manual_open",
                                {"reason": reason, "event_id": event.event_id}, ts=now)
        self._publish("decision", {**event.to_dict(), "name": None, "latency_ms": None})
        return event

    def health_snapshot(self) -> dict[str, object]:
        """Everything a status page or the MQTT `state` topic shows about this gate, as JSON-able values."""
        cam = self.camera.health()
        thermal = self.thermal.stats if self.thermal is not None else None
        wl_version = self.lane.whitelist.version
        applier = self.applier
        return {
            "gate_id": self.cfg.gate.id, "community": self.cfg.gate.community, "software_version": __version__,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "camera": {"ok": cam.ok, "fps": round(cam.fps, 1), "skipped_fps": round(cam.skipped_fps, 1),
                       "frames": cam.frames, "dropped": cam.dropped, "frozen": cam.frozen, "black": cam.black,
                       "stale": cam.stale, "error": cam.last_error if cam.ok else cam.problem,
                       "age_s": None if cam.last_frame_age_s is None else round(cam.last_frame_age_s, 2)},
            "thermal": None if thermal is None else {
                "ok": thermal.last_good_age_s is not None and thermal.last_good_age_s <= 3.0,
                "age_s": None if thermal.last_good_age_s is None else round(thermal.last_good_age_s, 2),
                "checksum_failures": thermal.checksum_failures, "error": thermal.last_error},
            "relay": {"ok": self.health.get("relay", PartHealth()).ok, "on": self.relay.state,
                      "pulses": self.relay.stats.pulses, "error": self.relay.stats.last_error},
            "vision": {"alive": self.alive(), "decisions": self.lane.decisions},
            "outbox_depth": self.store.outbox_depth(),
            "store": {"ok": self.writer.error is None, "error": self.writer.error, "pending": self.writer.pending,
                      "kept": self.writer.kept, "lost": self.writer.lost},
            "whitelist": {"version": int(wl_version) if wl_version and wl_version.isdigit() else 0,
                          "persons": len(self.lane.whitelist.persons),
                          "templates": self.lane.whitelist.gallery.template_count, "model": self.engine.model_id,
                          "need_snapshot": applier is not None and applier.ask.needed,
                          "member_gates": len(applier.members) if applier is not None else 0},
            "health": {k: {"ok": v.ok, "detail": v.detail} for k, v in self.health.items()},
            "panel": self.panel.snapshot() if self.panel.active else None,  # not in the MQTT state (closed schema)
            "mqtt": None if self.sync is None else self.sync.health(),
        }

    def preview_jpeg(self, quality: int = 75) -> bytes | None:
        """The latest frame with face boxes and names drawn on a copy (for the live preview)."""
        return self.lane.preview_jpeg(quality)

    def web_parts(self) -> WebParts:
        """What the guards' page may see and do of this gate (`edge.web.ports`): its read-only store, its
        writes through the store writer, the gate's actions, identity and the MQTT link's state."""
        from edge.web.ports import GateActions, GuardWrites, WebParts

        def cached_name(person_id: str) -> str | None:
            person = self.lane.whitelist.persons.get(person_id)  # the whitelist in use now (it is swapped)
            return person.name if person is not None else None

        sync = self.sync
        return WebParts(
            gate_id=self.cfg.gate.id, timezone=self.policy.timezone, web=self.cfg.web, store=self.store,
            writes=GuardWrites(self.writer),
            gate=GateActions(manual_open=self.manual_open, subscribe=self.subscribe, preview_jpeg=self.preview_jpeg,
                             health=self.health_snapshot, alive=self.alive, stopping=self.stop_event.is_set,
                             record_alarm=self.record_alarm, relay_pulses=lambda: self.relay.stats.pulses,
                             **self.safety.actions()),
            cached_name=cached_name, mqtt_connected=(lambda: sync.connected) if sync is not None else None)

    # -- parts --------------------------------------------------------------------------------------
    def _alarm(self, kind: str, severity: str, message: str, **details: object) -> None:
        log.warning("alarm %s: %s", kind, message)
        self.record_alarm(AlarmRecord(ts=datetime.now(UTC), kind=kind, severity=severity, message=message,
                                      details=dict(details), gate_id=self.cfg.gate.id))

    def _set_health(self, part: str, ok: bool, detail: str, alarm_kind: str, **details: object) -> None:
        prev = self.health.get(part)
        if prev is None or prev.ok != ok:
            self.health[part] = PartHealth(ok, detail)
            if not ok:
                self._alarm(alarm_kind, "high", f"{part}: {detail}", part=part, **details)
            elif prev is not None:
                self._alarm(f"{part}_recovered", "info", f"{part} recovered", part=part)
        else:
            prev.detail = detail

    def _backoff(self, part: str) -> Backoff:
        sup = self.cfg.supervisor
        return self.backoff.setdefault(part, Backoff(sup.restart_min_s, max(sup.restart_max_s, sup.restart_min_s)))

    def _restart_dead(self, part: str, alive: bool, restart: Callable[[], None], alarm_kind: str | None) -> None:
        """A worker thread that ended is restarted after its backoff, alarmed once per outage (a crash loop
        does not flood the guards: the alarm stays raised until the part stays up); recovery is noted."""
        now = time.monotonic()
        b = self._backoff(part)
        if alive:
            if alarm_kind is not None:
                self._set_health(part, True, "ok", alarm_kind)
            return
        if b.next_at is None:
            wait = b.schedule(now)
            why = self._crashed.pop(part, "the thread ended")
            log.error("%s thread died (%s); restarting in %g s (restart %d)", part, why, wait, b.restarts + 1)
            if alarm_kind is not None:
                self._set_health(part, False, f"thread died ({why}); restarting in {wait:g} s", alarm_kind,
                                 restart_in_s=wait, restarts=b.restarts)
        if b.due(now):
            log.warning("restarting the %s thread", part)
            b.restarted(now)
            restart()

    def _start_relay(self) -> None:
        try:
            self.relay.start()
            self._relay_started = True
            self._set_health("relay", True, "ok", "relay_fault")
        except (RelayError, OSError) as exc:
            self._set_health("relay", False, f"cannot start: {exc}", "relay_fault")

    def _vision_loop(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.vision_heartbeat.beat()
                frame = self.camera.buffer.get(timeout=0.5)
                if frame is None:
                    continue
                try:
                    self.lane.process(frame)
                except Exception:  # a bug or a bad frame must not stop the gate: log, alarm, continue
                    log.exception("vision loop failed on frame %d", frame.seq)
                    self._alarm("vision_fault", "high", "the vision loop failed on a frame; continuing")
        except BaseException as exc:  # the thread ends: the supervisor restarts it with a backoff
            self._crashed["vision"] = f"{type(exc).__name__}: {exc}"
            log.critical("vision thread crashed: %s", self._crashed["vision"], exc_info=True)

    def _start_vision(self) -> None:
        self._vision_thread = threading.Thread(target=self._vision_loop, name="vision", daemon=True)
        self._vision_thread.start()

    def start(self) -> None:
        log.info("gate %s (%s) starting: %d persons, %d templates", self.cfg.gate.id, self.cfg.gate.community,
                 len(self.lane.whitelist.persons), self.lane.whitelist.gallery.template_count)
        self._start_relay()
        if self.thermal is not None:
            self.thermal.start()
        self.camera.start()
        self._start_vision()
        self._started = True
        if self.cfg.web.enabled:
            from edge.web.server import WebServer  # FastAPI and uvicorn only when the page is on

            self.web_server = WebServer(self.web_parts(), self.cfg.web)
            self.web_server.start()
        if self.sync is not None:
            self.sync.start()

    # -- supervision ---------------------------------------------------------------------------------
    def check(self) -> None:
        """One supervision pass: freshness of every part, alarms on changes, restarts, periodic jobs."""
        cam = self.camera.health()
        self._set_health("camera", cam.ok, cam.problem, "camera_fault")
        if self.thermal is not None:
            st = self.thermal.stats
            fresh = st.last_good_age_s is not None and st.last_good_age_s <= 3.0
            self._set_health("thermal", fresh, "ok" if fresh else (st.last_error or "no readings"), "sensor_fault")
        self.writer.retry_kept()  # what the disk refused, written again once it has room
        refused = self.writer.error  # the last write the store refused (disk full, I/O error), None once ok
        detail = "ok" if refused is None else f"{refused} ({self.writer.kept} writes kept in memory)"
        self._set_health("store", refused is None, detail, "store_fault")
        self._check_mqtt()
        self.panel.supervise(self._set_health)
        now = time.monotonic()
        if not self._relay_started:
            relay = self._backoff("relay")
            relay.schedule(now)
            if relay.due(now):
                relay.restarted(now)
                self._start_relay()
        else:
            rs = self.relay.stats
            writes, failures = self._relay_counts
            if rs.write_failures > failures:
                self._set_health("relay", False, str(rs.last_error), "relay_fault")
            elif rs.writes > writes:
                self._set_health("relay", True, "ok", "relay_fault")
            self._relay_counts = (rs.writes, rs.write_failures)
            for alarm in self.lane.on_relay_events(self.safety.check(self.relay.events())) + self.lane.expired_grants(
                    self.relay.input_state("pass") is not None) + self.lane.door_held():
                log.warning("alarm %s: %s", alarm.kind, alarm.message)
                self.record_alarm(alarm)
        if self._started and not self.stop_event.is_set():
            self._restart_dead("vision", self._vision_thread is not None and self._vision_thread.is_alive(),
                               self._start_vision, "vision_fault")
            # a dead camera thread: its frames go stale, and the camera's health raises camera_fault
            self._restart_dead("camera_thread", self.camera.alive, self.camera.start, None)
        if now - self._last_care_check >= 60:
            self._last_care_check = now
            self._care_watch()
        if now - self._last_alarm_flush >= ALARM_FLUSH_S:  # grouped alarms' updates for the server
            self._last_alarm_flush = now
            self.writer.submit(self.store.flush_alarm_groups)
        if now - self._last_retention >= 3600:
            self._last_retention = now
            self.writer.submit(purge_expired, self.store, self.cfg.store, anti_passback_s=self.policy.anti_passback_s)

    def _check_mqtt(self) -> None:
        """The broker link down for longer than the grace period is a fault the guards see."""
        if self.sync is None:
            return
        now = time.monotonic()
        if self.sync.connected:
            self._mqtt_down_since = None
            self._set_health("mqtt", True, "ok", "mqtt_fault")
            return
        if self._mqtt_down_since is None:
            self._mqtt_down_since = now
        down = now - self._mqtt_down_since
        if down >= self.cfg.supervisor.mqtt_fault_after_s:
            why = self.sync.health().get("last_error") or "not connected"
            self._set_health("mqtt", False, f"broker unreachable for {down:.0f} s ({why}); events wait in the "
                             "outbox", "mqtt_fault", down_s=round(down, 1))

    def _care_watch(self) -> None:
        if self._hub_care_until is not None and time.monotonic() < self._hub_care_until:
            return  # the hub raises the community's care-watch alarms (one per person, not one per gate)
        self._care_watch_here()

    def _care_watch_here(self) -> None:
        persons = list(self.lane.whitelist.persons.values())
        if not any(p.care_watch_hours for p in persons):
            return
        alarmed = self.store.last_alarm_times("care_watch")
        for pid, t in self._care_alarmed.items():  # raised here, perhaps not written yet
            if pid not in alarmed or alarmed[pid] < t:
                alarmed[pid] = t
        now = datetime.now(UTC)
        for c in overdue(persons, self.store.last_seen(), now, alarmed):
            log.warning("alarm care_watch: %s", c.message())
            self._care_alarmed[c.person_id] = now
            self.record_alarm(AlarmRecord(
                ts=now, kind="care_watch", severity="warning", message=c.message(),
                details={"hours": c.hours, "overdue_h": round(c.overdue_by.total_seconds() / 3600, 2)},
                gate_id=self.cfg.gate.id, person_id=c.person_id))

    def stuck_parts(self) -> list[str]:
        """The worker threads that are dead or broke their heartbeat's promise (hung, not merely without a
        device: a camera or broker in reconnect backoff still beats). Empty means the watchdog may be fed."""
        beats: dict[str, tuple[bool, Heartbeat]] = {
            "camera": (self.camera.alive, self.camera.heartbeat),
            "vision": (self._vision_thread is not None and self._vision_thread.is_alive(), self.vision_heartbeat),
        }
        if self.thermal is not None:
            beats["thermal"] = (True, self.thermal.heartbeat)
        if self.sync is not None:
            beats["mqtt"] = (self.sync.running, self.sync.heartbeat)
        return [name for name, (running, beat) in beats.items() if not (running and beat.fresh)]

    def alive(self) -> bool:
        """For the systemd watchdog: camera, vision, sensor and MQTT threads alive and fresh."""
        return not self.stuck_parts()

    # -- lifecycle -----------------------------------------------------------------------------------
    def run(self, seconds: float | None = None) -> int:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        sdnotify.ready()
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while not self.stop_event.wait(1.0):
                self.check()
                stuck = self.stuck_parts()
                if not stuck:
                    sdnotify.watchdog()
                elif stuck != self._stuck:
                    log.error("watchdog not fed: %s stuck (systemd restarts the gate after WatchdogSec)",
                              ", ".join(stuck))
                self._stuck = stuck
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        sdnotify.stopping()
        web = getattr(self, "web_server", None)
        if web is not None:
            web.stop()
        self.stop_event.set()
        self.camera.stop()
        if self._vision_thread is not None:
            self._vision_thread.join(5.0)
        try:
            self.relay.close()  # forces the relay off
        except (RelayError, OSError) as exc:
            log.error("relay close failed: %s", exc)
        self.panel.close()
        if self.thermal is not None:
            self.thermal.close()
        if self.sync is not None:
            self.sync.stop(timeout=5.0)  # publishes `stopped`
        self.writer.close(timeout=10.0)
        log.info("gate %s stopped; store flushed", self.cfg.gate.id)
