#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that take bytes from outside the gate.

  scripts/fuzz.py [--seconds S] [--target T ...] [--corpus DIR]

Targets (each runs in a child process of its own for S seconds, so one crash cannot hide another):
  push          a whitelist push as it arrives over MQTT: parse_push must raise RejectedPush or accept
  push-signed   the fuzzed JSON object signed with the trusted key first, so the schema, size and time
                checks behind the signature are reached too
  peer-event    a peer gate's passage event (the EventMessage schema): ValidationError or a valid event
  config        a gate config file: ConfigError or a valid GateConfig
  serial        the three thermal frame decoders fed the same bytes in fuzzer-chosen chunks: no
                exception, and no reading outside the decoder's plausible range
Any other exception is a finding: libFuzzer stops, prints the traceback and writes the input as
crash-*. Exit status is non-zero when any target found something. Bounded: -max_total_time per target.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("push", "push-signed", "peer-event", "config", "serial")
CANARY = "canary"  # a target with a planted bug: proves the harness reports what the fuzzer finds

# Seed inputs, so the fuzzer starts from documents of the right shape rather than from nothing.
_PUSH_SEED = (b'{"schema":"edge-gate/whitelist-delta/1","community":"c1","version":2,"base_version":1,'
              b'"issued_at":"2026-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z","upserts":[{"id":"p1",'
              b'"name":"A","kind":"resident","status":"active","templates":{"model_id":"sface_2021dec",'
              b'"vectors":[[0.5,0.5]]}}],"deletes":["p2"],"signature":{"alg":"ed25519","key_id":"00","value":""}}')
_PEER_SEED = (b'{"schema":"edge-gate/event/1","event_id":"01J0000000000000000000000A","ts":"2026-01-01T00:00:00Z",'
              b'"gate_id":"g2","community":"c1","direction":"in","decision":"grant","person_id":"p1",'
              b'"reasons":[],"alarms":[],"temperature":null,"scores":{}}')
_CONFIG_SEED = (b'version = 1\n[gate]\nid = "g1"\ncommunity = "c1"\n[thermal]\ntype = "gy_mcu90614"\n'
                b'port = "/dev/gate-thermal"\n[policy]\nfever_c = 37.3\n')
SEEDS = {
    "push": [_PUSH_SEED],
    "push-signed": [_PUSH_SEED],
    "peer-event": [_PEER_SEED],
    "config": [_CONFIG_SEED],
    "serial": [bytes.fromhex("5a5a45040c780d19a7"), b"36.6\nT=36.5,A=25.0\n"],
    CANARY: [b"edge"],
}


def _target(name: str) -> Callable[[bytes], None]:
    """The one-input callable atheris runs for `name` (imports inside, so they are instrumented)."""
    sys.path.insert(0, str(ROOT))
    if name in ("push", "push-signed"):
        import json

        from edge.protocol.messages import RejectedPush, parse_push
        from edge.protocol.signing import AdminKey

        key = AdminKey.generate()
        trusted = [key.public]

        def push(data: bytes) -> None:
            raw = data
            if name == "push-signed":
                try:
                    doc = json.loads(data.decode("utf-8"))
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return
                if not isinstance(doc, dict):
                    return
                try:
                    raw = json.dumps(key.sign(doc), allow_nan=False).encode("utf-8")
                except (ValueError, TypeError, RecursionError):
                    return  # NaN or nesting json cannot write back: not a document an admin could sign
            with contextlib.suppress(RejectedPush):
                parse_push(raw, trusted)
        return push
    if name == "peer-event":
        from pydantic import ValidationError

        from edge.protocol.payloads import EventMessage

        def peer(data: bytes) -> None:
            try:
                event = EventMessage.model_validate_json(data)
            except ValidationError:
                return
            event.model_dump(mode="json", by_alias=True)  # what the gate hands on must serialise
        return peer
    if name == "config":
        from edge.config import ConfigError, parse_config

        def config(data: bytes) -> None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return  # the loader reads files as UTF-8 and reports that itself
            with contextlib.suppress(ConfigError):
                parse_config(text)
        return config
    if name == "serial":
        import numpy as np

        from drivers.thermal.ascii_line import AsciiLineDecoder
        from drivers.thermal.gy_mcu90614 import Mlx90614Decoder
        from drivers.thermal.gy_mcu90640 import Mlx90640Decoder

        def serial(data: bytes) -> None:
            cut = data[0] if data else 0
            body = data[1:]
            for decoder in (Mlx90614Decoder(), Mlx90640Decoder(), AsciiLineDecoder()):
                step = max(1, cut)
                for i in range(0, len(body), step):
                    for sample in decoder.feed(body[i:i + step]):
                        if not -70.0 <= sample.object_c <= 400.0:  # the widest range any module reports
                            raise AssertionError(f"{type(decoder).__name__} gave object {sample.object_c}")
                        if sample.frame is not None and not bool(np.isfinite(sample.frame).all()):
                            raise AssertionError(f"{type(decoder).__name__} gave a frame with NaN")
        return serial
    if name == CANARY:
        import atheris

        def canary(data: bytes) -> None:
            if data[:4] == b"gate" and len(data) > 6 and data[6] == 0x47:
                raise RuntimeError("the planted bug")
        # defined here, not imported from edge/drivers: instrumented explicitly
        instrumented: Callable[[bytes], None] = atheris.instrument_func(canary)
        return instrumented
    raise SystemExit(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")


def run_one(name: str, seconds: int, corpus: Path, artifacts: Path) -> int:
    """Fuzz one target in a child process; its exit code (0: nothing found in the time)."""
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS[name]):
        (corpus / f"seed-{i}").write_bytes(seed)
    cmd = [sys.executable, __file__, "--child", name, f"-max_total_time={seconds}", "-timeout=10",
           "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-", str(corpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    stats = dict(line.split(":", 2)[2].split(":", 1) for line in proc.stderr.splitlines()
                 if line.startswith("stat::") and line.count(":") >= 3)
    runs, new = (stats.get(k, "?").strip() for k in ("number_of_executed_units", "new_units_added"))
    print(f"{name:12s} {'ok' if proc.returncode == 0 else 'FOUND'}  {runs} inputs, {new} new coverage units, "
          f"{seconds} s", flush=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        import atheris

        with atheris.instrument_imports(include=["edge", "drivers"]):
            one = _target(argv[1])
        atheris.Setup([sys.argv[0], *argv[2:]], one)
        atheris.Fuzz()
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60, help="time per target (default 60)")
    ap.add_argument("--target", action="append", choices=[*TARGETS, CANARY], help="fuzz only these (repeatable)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="keep the corpora here (one folder per target) to resume later; default: a temporary one")
    ap.add_argument("--findings", type=Path, default=ROOT / "test-artifacts" / "fuzz",
                    help="where a crashing input is written (default test-artifacts/fuzz)")
    args = ap.parse_args(argv)
    if args.seconds < 1 or args.seconds > 24 * 3600:
        ap.error("--seconds must be between 1 and 86400")
    failed = 0
    findings = args.findings.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.corpus or Path(tmp)
        for name in args.target or TARGETS:
            failed += run_one(name, args.seconds, base / name, findings) != 0
    if failed:
        print(f"inputs that crashed a parser are in {findings}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
