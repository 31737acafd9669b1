"""The community demo (`scripts/run-demo --community`): a real Mosquitto on a free local port, the hub with
its own SQLite register holding the demo's residents and a visitor, and two gates, `entry` (direction in)
and `exit` (direction out), that start with EMPTY whitelists and learn everyone from the hub (a snapshot
each asks for by itself). Each runs as its own process, as on a real site; their lines are printed with
the process's name. Data under `.demo/community/` (`broker/`, `hub/`, `entry/`, `exit/`, `scene/`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from edge.demo_scene import RESIDENTS, VISITOR_EXPIRED, build_scene, photo

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / ".demo" / "community"
COMMUNITY = "demo"
GATES = (("entry", "in"), ("exit", "out"))


def _gate_toml(name: str, direction: str, broker_url: str, admin_pub: str) -> str:
    return f"""# written by the community demo
[gate]
id = "{name}"
community = "{COMMUNITY}"
data_dir = "{ROOT / name}"

[camera]
type = "folder"
source = "{ROOT / 'scene'}"
fps = 10
loop = true

[thermal]
type = "sim"
kind = "gy_mcu90614"

[relay]
type = "sim"
kind = "lcus"

[policy]
anti_passback_s = 10
direction = "{direction}"

[web]
enabled = false

[mqtt]
enabled = true
url = "{broker_url}"
admin_public_keys = ["{admin_pub}"]
state_interval_s = 10
"""


def _register(hub_dir: Path) -> tuple[str, list[str]]:
    """The hub's register: the demo's residents and a visitor, with templates made from their photos."""

    from edge.hub.config import load_hub_config
    from edge.hub.db import HubDatabase
    from edge.hub.photos import templates_of
    from edge.hub.register import Register
    from edge.models import fetch_samples, load_manifest
    from edge.protocol.signing import SigningKey
    from edge.sync.identity import load_identity
    from edge.vision import FaceEngine
    from edge.vision.image import load_image

    cfg = load_hub_config(hub_dir / "hub.toml")
    key = SigningKey.generate()
    key.save(cfg.admin_key_path())
    samples = fetch_samples(load_manifest().samples["ctu_unknowns"])
    engine = FaceEngine.default()
    entries = []
    now = datetime.now(UTC)
    vid, _vname, vfile = VISITOR_EXPIRED
    people: list[tuple[str, str, Path, dict[str, Any]]] = [
        (pid, name, photo(f, samples), {}) for pid, name, f in RESIDENTS]
    people.append((vid, "Chen Jie (visitor)", samples / vfile, {
        "kind": "visitor", "max_uses": 20, "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=1)).isoformat()}))
    for pid, name, path, extra in people:
        faces = engine.analyze(load_image(str(path)))
        vec = [float(x) for x in faces[0].embedding]
        entries.append({"id": pid, "name": name, **extra, "templates": templates_of(vec, engine.model_id)})
    with HubDatabase.open(cfg.database_url) as db:
        reg = Register(db)
        for name, _direction in GATES:  # each gate's identity made now, registered before it first connects
            reg.set_gate(name, load_identity(None, ROOT / name).key.public_text, "demo")
        reg.upsert(entries, "demo")
    return key.public_text, [e["id"] for e in entries]


SHOWN = (" GRANT ", " DENY ", " WARNING ", " ERROR ", "snapshot", "hub connected", "whitelist version", "hub page")


def _office_account(hub_dir: Path) -> str:
    """An `office` account for the hub's page with a fresh random password (stored only as a hash)."""
    import secrets

    from edge.hub.config import load_hub_config
    from edge.hub.db import HubDatabase
    from edge.hub.web import add_account

    password = secrets.token_urlsafe(12)
    with HubDatabase.open(load_hub_config(hub_dir / "hub.toml").database_url) as db:
        add_account(db, "office", "office", password)
    return password


def _pump(name: str, stream: IO[str]) -> None:
    """A process's lines, prefixed with its name: decisions, snapshots and problems (not the relay's clicks)."""
    for line in stream:
        if any(w in line for w in SHOWN):
            print(f"[{name:5s}] {line.rstrip()}", flush=True)


def run(seconds: float | None) -> int:
    """The whole community for `seconds` (None: until Ctrl-C); 0 when every process ended cleanly."""
    from edge.tools.broker import Mosquitto

    if ROOT.exists():
        shutil.rmtree(ROOT)
    for sub in ("hub", *(g for g, _ in GATES)):
        (ROOT / sub).mkdir(parents=True, mode=0o700)
    visits = build_scene(ROOT / "scene")
    broker = Mosquitto(ROOT / "broker")
    broker.start()
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        (ROOT / "hub" / "hub.toml").write_text(
            f'[hub]\ncommunity = "{COMMUNITY}"\ndata_dir = "{ROOT / "hub"}"\nstate_interval_s = 10\n'
            f'web_port = 0\nweb_language = "en"\n'
            f'[mqtt]\nurl = "{broker.url}"\n', encoding="utf-8")
        admin_pub, people = _register(ROOT / "hub")
        password = _office_account(ROOT / "hub")
        for name, direction in GATES:
            (ROOT / name / "gate.toml").write_text(_gate_toml(name, direction, broker.url, admin_pub), encoding="utf-8")
        print(f"community demo: broker {broker.url}; the hub's register holds {', '.join(people)}; gates "
              f"{' and '.join(g for g, _ in GATES)} start with empty whitelists; {len(visits)} arrivals replayed; "
              f"data in {ROOT}", flush=True)
        env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"} | {"PYTHONUNBUFFERED": "1"}
        commands = [("hub", ["hub", "run", "--config", str(ROOT / "hub" / "hub.toml")])]
        commands += [(name, ["run", "--config", str(ROOT / name / "gate.toml")]) for name, _ in GATES]
        for name, args in commands:
            proc = subprocess.Popen([sys.executable, "-m", "edge", *args], cwd=REPO, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append((name, proc))
            assert proc.stdout is not None
            threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()
        print(f"the archive: gate hub events --data-dir {ROOT / 'hub'} --json   (Ctrl-C stops the demo)", flush=True)
        print(f"the hub's page: the URL the hub prints below; sign in as office / {password} (an account of this "
              "demo's data only)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        end = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set() and (end is None or time.monotonic() < end):
            if any(p.poll() is not None for _, p in procs):
                print("community demo: a process ended early; stopping", file=sys.stderr)
                break
            stop.wait(0.5)
    finally:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for _name, proc in procs:
            try:
                codes.append(proc.wait(30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(-9)
        broker.stop()
    return 0 if all(c == 0 for c in codes) else 1
