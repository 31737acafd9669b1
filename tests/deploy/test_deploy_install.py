"""scripts/install.sh into a staging root: the tree it writes, idempotence, and uninstall with and without purge."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from deploy_helpers import REPO, VENV_BIN

from edge.models import load_manifest, verify

INSTALL = REPO / "scripts" / "install.sh"


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_install_twice_then_uninstall_then_purge(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run("--prefix", root, "--venv-from", VENV_BIN.parent)
    opt, etc, var = root / "opt/edge-gate", root / "etc/edge-gate", root / "var/lib/edge-gate"

    # the code, without the repository's caches and working data
    for part in ("edge/gate.py", "drivers/relay/lcus.py", "pyproject.toml", "config/gate.example.toml",
                 "systemd/edge-gate.service", "models/manifest.toml"):
        assert (opt / part).is_file(), part
    for junk in (".git", ".cache", ".demo", ".mypy_cache"):
        assert not (opt / junk).exists(), junk
    assert not list(opt.rglob("__pycache__"))
    assert (opt / ".venv").is_symlink() and (opt / ".venv").resolve() == VENV_BIN.parent.resolve()
    # the models, fetched (here: present already) and verified by the installed `gate models fetch`
    for spec in load_manifest(opt / "models/manifest.toml").models.values():
        assert verify(opt / "models" / spec.file, spec.sha256) is None, spec.file
    # config, credentials, data
    assert (etc / "gate.toml").read_text() == (REPO / "config/gate.example.toml").read_text()
    assert stat.S_IMODE((etc / "gate.toml").stat().st_mode) == 0o640
    assert stat.S_IMODE((etc / "credentials").stat().st_mode) == 0o700
    cred = etc / "credentials/mqtt-password"
    assert cred.is_file() and cred.stat().st_size == 0 and stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert var.is_dir() and stat.S_IMODE(var.stat().st_mode) == 0o700  # the data: the service user's only
    # units and udev rules, as shipped
    for name in ("edge-gate.service", "edge-gate@.service", "edge-gate-hub.service"):
        assert (root / "etc/systemd/system" / name).read_text() == (REPO / "systemd" / name).read_text()
    rules = root / "etc/udev/rules.d/99-edge-gate.rules"
    assert rules.read_text() == (REPO / "systemd/99-edge-gate.rules").read_text()
    link = root / "usr/local/bin/gate"
    assert link.is_symlink() and os.readlink(link) == "/opt/edge-gate/.venv/bin/gate"
    # the installed config is valid for the installed code
    check = subprocess.run([str(opt / ".venv/bin/gate"), "config", "check", str(etc / "gate.toml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr

    # again: idempotent, and an operator's config and data are kept
    (etc / "gate.toml").write_text('[gate]\nid = "north-1"\n')
    cred.write_text("operator-secret\n")
    (var / "gate.db").write_bytes(b"data")
    (var / "gate.db").chmod(0o640)  # as an older version left them (UMask=0027, StateDirectoryMode=0750)
    var.chmod(0o750)
    cred.chmod(0o644)
    (opt / "edge" / "stale_module.py").write_text("# from an older version\n")
    second = run("--prefix", root, "--venv-from", VENV_BIN.parent)
    assert "kept existing" in second.stderr
    assert "tightening 3 entries open to other users" in second.stderr
    assert [stat.S_IMODE(p.stat().st_mode) for p in (var, var / "gate.db", cred)] == [0o700, 0o600, 0o600]
    assert (etc / "gate.toml").read_text() == '[gate]\nid = "north-1"\n'
    assert cred.read_text() == "operator-secret\n"
    assert (var / "gate.db").read_bytes() == b"data"
    assert not (opt / "edge" / "stale_module.py").exists()
    assert (opt / "edge/gate.py").is_file()

    # uninstall: code, venv link, units, rules, command gone; config and data kept; the linked venv untouched
    run("--prefix", root, "--uninstall")
    assert not opt.exists()
    assert not (root / "etc/systemd/system/edge-gate.service").exists()
    assert not (root / "etc/systemd/system/edge-gate@.service").exists()
    assert not (root / "etc/systemd/system/edge-gate-hub.service").exists()
    assert not rules.exists() and not link.is_symlink()
    assert (etc / "gate.toml").is_file() and (var / "gate.db").is_file()
    assert (VENV_BIN / "gate").is_file()

    # install over kept config, then uninstall --purge: everything goes
    run("--prefix", root, "--no-venv")
    assert (etc / "gate.toml").read_text() == '[gate]\nid = "north-1"\n'
    run("--prefix", root, "--uninstall", "--purge")
    for gone in (opt, etc, var, rules, root / "etc/systemd/system/edge-gate.service"):
        assert not gone.exists(), gone


def test_no_venv_staging_writes_no_venv(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = run("--prefix", root, "--no-venv")
    assert "no venv" in proc.stderr
    assert (root / "opt/edge-gate/edge/gate.py").is_file()
    assert not (root / "opt/edge-gate/.venv").exists()
    assert (root / "etc/edge-gate/gate.toml").is_file()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    assert run("--prefix", tmp_path / "r", "--purge", ok=False).returncode != 0
    assert run("--prefix", tmp_path / "r", "--bogus", ok=False).returncode != 0
    assert run("--prefix", tmp_path / "r", "--venv-from", tmp_path / "not-a-venv", ok=False).returncode != 0
    assert not (tmp_path / "r" / "etc").exists()


def test_script_is_valid_bash_and_documents_itself() -> None:
    assert subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True).returncode == 0
    help_text = run("--help").stdout
    for word in ("--prefix", "--uninstall", "--purge", "/etc/edge-gate/gate.toml", "/var/lib/edge-gate"):
        assert word in help_text


def test_purge_removes_the_home_assistant_device_from_the_broker(tmp_path: Path) -> None:
    """`--uninstall --purge` of a gate with [homeassistant] on empties its retained discovery configs, so
    the device disappears from Home Assistant with the gate (a real Mosquitto, the admin tools' client)."""
    from support.wait import poll_until

    from edge.admin.client import AdminClient
    from edge.config import load_config
    from edge.protocol.topics import Topics
    from edge.sync.ha_discovery import HaTopics
    from edge.tools.broker import Mosquitto

    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        root = tmp_path / "root"
        run("--prefix", root, "--venv-from", VENV_BIN.parent)
        gate_toml = root / "etc/edge-gate/gate.toml"
        gate_toml.write_text(f'[gate]\nid = "north-1"\n[mqtt]\nenabled = true\nurl = "{broker.url}"\n'
                             '[homeassistant]\nenabled = true\n')
        cfg = load_config(gate_toml)
        topics = HaTopics(Topics(cfg.mqtt.topic_prefix, cfg.gate.community, cfg.gate.id),
                          cfg.homeassistant.discovery_prefix).config_topics()
        admin = AdminClient(broker.url)
        for topic in topics:  # what a running gate left retained
            admin.publish(topic, b'{"name": "left by the gate"}', retain=True)
        admin.close()

        sentinel = f"{cfg.homeassistant.discovery_prefix}/sensor/zz-sentinel/end/config"

        def retained() -> list[str]:
            """What Home Assistant finds retained: the broker sends one subscription's retained messages
            together, so the test's own retained sentinel marks the end (no waiting on a clock)."""
            probe = AdminClient(broker.url)
            try:
                probe.publish(sentinel, b"{}", retain=True)
                probe.subscribe([f"{cfg.homeassistant.discovery_prefix}/#"])
                assert poll_until(lambda: any(t == sentinel for t, _ in probe.messages), 30)
                return [t for t, p in probe.messages if p and t != sentinel]
            finally:
                probe.close()

        assert sorted(retained()) == sorted(topics)
        proc = run("--prefix", root, "--uninstall", "--purge")
        assert "Home Assistant device" in proc.stderr + proc.stdout
        assert retained() == []  # every config emptied: the device is gone from Home Assistant
        assert not (root / "etc/edge-gate").exists()
    finally:
        broker.stop()
