"""The systemd units and udev rules: verified by systemd's own tools, and the claims in them checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import REPO, VENV_BIN

UNITS = REPO / "systemd"
SERVICE = UNITS / "edge-gate.service"
TEMPLATE = UNITS / "edge-gate@.service"
RULES = UNITS / "99-edge-gate.rules"
INSTALLED_GATE = "/opt/edge-gate/.venv/bin/gate"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (f"{name} is missing: install the Debian package `systemd` (apt-get install -y systemd; "
                  ".ci/run does this)")
    return path


def _staged(src: Path, dest_dir: Path, name: str, edit: tuple[str, str] | None = None) -> Path:
    """A copy whose ExecStart points at an executable that exists here (the repo's venv `gate`)."""
    text = src.read_text()
    assert INSTALLED_GATE in text
    text = text.replace(INSTALLED_GATE, str(VENV_BIN / "gate"))
    if edit is not None:
        assert edit[0] in text, edit
        text = text.replace(edit[0], edit[1])
    path = dest_dir / name
    path.write_text(text)
    return path


def verify(unit: Path) -> list[str]:
    """systemd-analyze verify's complaints (it exits 0 on unknown keys and bad values: read its output)."""
    proc = subprocess.run([_tool("systemd-analyze"), "verify", "--man=no", str(unit)], capture_output=True,
                          text=True, cwd=unit.parent, timeout=60)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode != 0 and not lines:
        lines = [f"exit status {proc.returncode}"]
    return lines


def directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


@pytest.mark.parametrize(("src", "name"), [(SERVICE, "edge-gate.service"), (TEMPLATE, "edge-gate@entry.service"),
                                          (UNITS / "edge-gate-hub.service", "edge-gate-hub.service")])
def test_units_verify_clean(src: Path, name: str, tmp_path: Path) -> None:
    assert verify(_staged(src, tmp_path, name)) == []


@pytest.mark.parametrize(("edit", "complaint"), [
    (("WatchdogSec=30", "WatchdogSecs=30"), "Unknown key"),
    (("AF_INET6", "AF_INET7"), "address family"),
    (("Type=notify", "Type=notifyy"), "service type"),
    (("ProtectSystem=strict", "ProtectSystem=stricter"), "protect system"),
])
def test_broken_copies_fail_verification(edit: tuple[str, str], complaint: str, tmp_path: Path) -> None:
    problems = verify(_staged(SERVICE, tmp_path, "edge-gate.service", edit))
    assert problems, f"systemd-analyze accepted {edit[1]!r}"
    assert any(complaint in p for p in problems), problems


def test_service_directives() -> None:
    d = directives(SERVICE)

    def one(key: str) -> str:
        assert len(d.get(key, [])) == 1, f"{key}: {d.get(key)}"
        return d[key][0]

    assert one("Service.Type") == "notify"
    assert one("Service.NotifyAccess") == "main"
    assert 10 <= int(one("Service.WatchdogSec")) <= 120
    assert one("Service.Restart") == "on-failure"
    assert int(one("Unit.StartLimitBurst")) >= 1 and int(one("Unit.StartLimitIntervalSec")) > 0
    assert one("Service.User") == "edge-gate"
    assert one("Service.StateDirectory") == "edge-gate"
    assert one("Service.StateDirectoryMode") == "0700" and one("Service.UMask") == "0077"  # docs/security.md
    assert one("Service.ConfigurationDirectory") == "edge-gate"
    assert one("Service.ExecStart") == f"{INSTALLED_GATE} run --config /etc/edge-gate/gate.toml"
    assert one("Service.DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in d["Service.DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-video4linux", "char-gpiochip"} <= allowed
    assert set(one("Service.SupplementaryGroups").split()) >= {"dialout", "video", "gpio"}
    assert one("Service.LoadCredential") == "mqtt-password:/etc/edge-gate/credentials/mqtt-password"
    assert one("Service.RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "LockPersonality", "MemoryDenyWriteExecute"):
        assert one(f"Service.{key}") == "yes", key
    assert one("Service.ProtectSystem") == "strict"
    assert one("Install.WantedBy") == "multi-user.target"


def test_template_differs_only_in_lane_lines() -> None:
    main = [ln for ln in SERVICE.read_text().splitlines() if not ln.startswith("#")]
    lane = [ln for ln in TEMPLATE.read_text().splitlines() if not ln.startswith("#")]
    expected = [ln.replace("/etc/edge-gate/gate.toml", "/etc/edge-gate/%i.toml") for ln in main]
    expected = [("StateDirectory=edge-gate/%i" if ln == "StateDirectory=edge-gate" else
                 "Description=edge-gate smart gate, lane %i" if ln.startswith("Description=") else ln)
                for ln in expected]
    assert lane == expected


def test_security_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security` scores the sandbox; ours must stay below 3 ("OK"), a bare unit does not."""
    tool = _tool("systemd-analyze")
    unit = _staged(SERVICE, tmp_path, "edge-gate.service")
    ok = subprocess.run([tool, "security", "--offline=true", "--threshold=30", "--no-pager", unit.name],
                        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", ok.stdout)
    assert m, ok.stdout[-500:]
    assert float(m.group(1)) < 3.0, m.group(0)
    bare = tmp_path / "bare"
    bare.mkdir()
    kept = [ln for ln in unit.read_text().splitlines() if ln.split("=")[0] in
            ("[Unit]", "[Service]", "[Install]", "Description", "Type", "ExecStart", "WantedBy")]
    (bare / "edge-gate.service").write_text("\n".join(kept) + "\n")
    weak = subprocess.run([tool, "security", "--offline=true", "--threshold=30", "--no-pager", "edge-gate.service"],
                          capture_output=True, text=True, cwd=bare, timeout=60)
    assert weak.returncode != 0, "an unhardened unit passed the threshold: the check proves nothing"


MDWE_PROBE = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    sys.exit("PR_SET_MDWE unavailable (errno %d): this kernel cannot check MemoryDenyWriteExecute" % ctypes.get_errno())
mm = __import__("mmap")
try:
    mm.mmap(-1, 4096, prot=mm.PROT_READ | mm.PROT_WRITE | mm.PROT_EXEC)
except OSError:
    pass
else:
    sys.exit("MDWE is set but a writable+executable mapping was allowed")
from pathlib import Path
import insightface
from edge.vision import FaceEngine, load_image
faces = FaceEngine.default().analyze(load_image(Path(insightface.__file__).parent / "data/images/t1.jpg"))
import paho.mqtt.client, serial, sqlite3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
Ed25519PrivateKey.generate().sign(b"x")
print(len(faces))
"""


def test_onnxruntime_works_without_writable_executable_memory() -> None:
    """MemoryDenyWriteExecute=yes is kept because the engine runs under the kernel's same rule (PR_SET_MDWE)."""
    proc = subprocess.run([sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 1


# -- udev rules ---------------------------------------------------------------------------------------
_UDEV_KEYS = re.compile(r"^(ACTION|DEVPATH|KERNEL|KERNELS|NAME|SYMLINK|SUBSYSTEM|SUBSYSTEMS|DRIVER|DRIVERS|TAG|"
                        r"TAGS|ATTR\{[^}]+\}|ATTRS\{[^}]+\}|ENV\{[^}]+\}|GROUP|OWNER|MODE|TEST|PROGRAM|RESULT|"
                        r"RUN\{?[a-z]*\}?|IMPORT\{[a-z]+\}|GOTO|LABEL|OPTIONS)$")
_UDEV_PAIR = re.compile(r'\s*([A-Z]+(?:\{[^}]*\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def parse_udev_line(line: str) -> list[tuple[str, str, str]]:
    """KEY op "value" pairs of one rule; ValueError on anything udev would reject or misread."""
    pairs, pos = [], 0
    while pos < len(line):
        m = _UDEV_PAIR.match(line, pos)
        if m is None:
            raise ValueError(f"cannot parse at column {pos}: {line[pos:pos + 40]!r}")
        key, op, value = m.groups()
        if not _UDEV_KEYS.match(key):
            raise ValueError(f"unknown key {key}")
        if (key in ("SUBSYSTEM", "KERNELS") or key.startswith("ATTRS{")) and op not in ("==", "!="):
            raise ValueError(f"{key} is a match key, not {op}")
        if key in ("SYMLINK", "GROUP", "MODE") and op not in ("=", "+=", ":="):
            raise ValueError(f"{key} is an assignment here, not {op}")
        pairs.append((key, op, value))
        pos = m.end()
    return pairs


def _rules(text: str, *, examples: bool) -> list[list[tuple[str, str, str]]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if examples and line.startswith("#SUBSYSTEM"):
            line = line[1:]
        if line and not line.startswith("#"):
            out.append(parse_udev_line(line))
    return out


def test_udev_rules_parse_and_name_the_devices() -> None:
    text = RULES.read_text()
    for examples in (False, True):  # the commented examples must work once uncommented
        rules = _rules(text, examples=examples)
        assert rules
        for rule in rules:
            keys = {k: (op, v) for k, op, v in rule}
            if keys["SUBSYSTEM"] == ("==", "video4linux"):  # the two-lane camera names
                assert examples and keys["SYMLINK"][1] in ("gate-camera-entry", "gate-camera-exit")
                assert keys["GROUP"] == ("=", "video") and "KERNELS" in keys
                continue
            assert keys["SUBSYSTEM"] == ("==", "tty")
            assert keys["ENV{ID_MM_DEVICE_IGNORE}"] == ("=", "1")
            if "SYMLINK" in keys:
                assert keys["SYMLINK"][0] == "+=" and re.fullmatch(
                    r"gate-(thermal|relay)(-entry|-exit)?", keys["SYMLINK"][1]), keys["SYMLINK"]
                assert keys["GROUP"] == ("=", "dialout") and keys["MODE"] == ("=", "0660")
                assert any(k in keys for k in ("ATTRS{idVendor}", "KERNELS", "ENV{ID_PATH}"))
    ids = {(dict((k, v) for k, _, v in r).get("ATTRS{idVendor}"), dict((k, v) for k, _, v in r).get(
        "ATTRS{idProduct}")) for r in _rules(text, examples=True)}
    assert {("1a86", "7523"), ("10c4", "ea60"), ("0403", "6001")} <= ids
    names = {v for r in _rules(text, examples=False) for k, _, v in r if k == "SYMLINK"}
    assert names == {"gate-thermal", "gate-relay"}
    assert re.search(r'KERNELS=="[0-9]+-[0-9.]+:1\.0"', text) and 'ENV{ID_PATH}=="' in text


@pytest.mark.parametrize("bad", [
    'SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86", SYMLNK+="gate-relay"',
    'SUBSYSTEM=="tty", ATTRS{idVendor}="1a86", SYMLINK+="gate-relay"',
    'SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86" SYMLINK+="gate-relay"',
    'SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86", SYMLINK+=gate-relay',
])
def test_udev_parser_rejects_typos(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_udev_line(bad)


def test_udevadm_verify_when_available(tmp_path: Path) -> None:
    """systemd >= 254 ships `udevadm verify`; older ones only have the parser above (which always runs)."""
    udevadm = _tool("udevadm")
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, text=True, timeout=30)
    ch340 = next(ln for ln in RULES.read_text().splitlines() if '"7523"' in ln and not ln.startswith("#"))
    assert ("SYMLINK", "+=", "gate-relay") in parse_udev_line(ch340)
    if probe.returncode == 0:
        proc = subprocess.run([udevadm, "verify", "--resolve-names=never", str(RULES)], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_lane_configs_fit_the_template_unit_side_by_side() -> None:
    """config/lanes/{entry,exit}.toml: valid, and nothing the two processes would fight over is shared."""
    from edge.config import load_config

    unit = (REPO / "systemd" / "edge-gate@.service").read_text()
    assert "StateDirectory=edge-gate/%i" in unit and "/etc/edge-gate/%i.toml" in unit
    rules = RULES.read_text()
    lanes = {lane: load_config(REPO / "config" / "lanes" / f"{lane}.toml") for lane in ("entry", "exit")}
    for lane, cfg in lanes.items():
        assert str(cfg.gate.data_dir) == f"/var/lib/edge-gate/{lane}"  # the unit's StateDirectory for %i
        for device in (cfg.camera.source, cfg.thermal.port, cfg.relay.port):
            assert f'SYMLINK+="{Path(str(device)).name}"' in rules, device  # udev names it
    a, b = lanes["entry"], lanes["exit"]
    assert {a.policy.direction, b.policy.direction} == {"in", "out"}
    assert a.gate.id != b.gate.id and a.gate.community == b.gate.community
    assert a.web.port != b.web.port
    assert len({a.camera.source, a.thermal.port, a.relay.port,
                b.camera.source, b.thermal.port, b.relay.port}) == 6
