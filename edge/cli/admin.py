"""`gate admin ...`: the community admin's commands (keys, pushes, events, acks, the payloads' JSON Schema files).

The MQTT, OpenCV and numpy imports happen inside the commands, so `gate --help` loads none of them."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.protocol.limits import MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from edge.admin.client import AdminClient


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _client(args: argparse.Namespace) -> AdminClient:
    from edge.admin.client import AdminClient

    password = os.environ.get(args.password_env) if args.password_env else None
    return AdminClient(args.broker, args.prefix, args.username, password, tls_ca=_path(args.tls_ca),
                       tls_cert=_path(args.tls_cert), tls_key=_path(args.tls_key),
                       tls_min_version=args.tls_min_version)


def _connect(args: argparse.Namespace) -> AdminClient | None:
    try:
        return _client(args)
    except (ConnectionError, OSError, ValueError) as exc:  # ValueError: a bad URL or TLS option
        print(f"gate admin: {exc}", file=sys.stderr)
        return None


def cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        print(f"{out} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    from edge.admin.keys import keygen

    print(keygen(out))
    print(f"private key written to {out} (keep it off the gates); put the line above in each gate's "
          "[mqtt] admin_public_keys", file=sys.stderr)
    return 0


def _gates(args: argparse.Namespace, command: str) -> list[dict[str, str]] | None:
    """The --gates file's member gates (None: not given); prints the one-line error and raises SystemExit(2)."""
    if not args.gates:
        return None
    from edge.admin.gates import GatesFileError, read_gates_file

    try:
        return read_gates_file(Path(args.gates))
    except GatesFileError as exc:
        print(f"gate admin {command}: --gates {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def cmd_push(args: argparse.Namespace) -> int:
    from edge.admin.build import build_push, payload_version
    from edge.admin.gates import gate_keys
    from edge.admin.person_file import PersonFileError, read_person_file
    from edge.admin.publish import ack_notes_text, push
    from edge.protocol.signing import AdminKey

    kind = "snapshot" if args.snapshot else "delta"
    gates = _gates(args, "push")
    if args.acks and gates is None:
        print("gate admin push: --acks needs --gates FILE (each gate's ack is verified against its key; "
              "`gate keys show --json` on a gate prints its entry)", file=sys.stderr)
        return 2
    try:
        upserts, deletes = read_person_file(Path(args.snapshot or args.delta), args.model_id)
    except PersonFileError as exc:
        print(f"gate admin push: {exc}", file=sys.stderr)
        return 2
    try:
        key = AdminKey.load(Path(args.key))
    except (OSError, ValueError, TypeError) as exc:  # missing, unreadable, not a PEM key, encrypted
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
        print(f"gate admin push: --key {args.key}: not a usable admin private key ({reason}); give the file "
              "`gate admin keygen` wrote", file=sys.stderr)
        return 2
    version = args.version or int(time.time())
    try:
        payloads = build_push(key, args.community, kind, upserts, deletes, version=version,
                              base_version=args.base_version, gate=args.gate,
                              valid_for=timedelta(hours=args.valid_hours), max_bytes=args.max_message_bytes,
                              gates=gates if kind == "snapshot" or args.send_gates else None)
    except ValueError as exc:  # e.g. deletes in a snapshot, an entry larger than a message
        print(f"gate admin push: {args.snapshot or args.delta}: {exc}", file=sys.stderr)
        return 2
    final = payload_version(payloads[-1])
    if kind == "snapshot" and gates is None:
        print("gate admin push: no --gates: the snapshot lists no member gates, so the gates will refuse "
              "each other's passage events", file=sys.stderr)
    client = _connect(args)
    if client is None:
        return 2
    try:
        acks = push(client, args.community, kind, payloads, version, gate=args.gate, wait_acks=args.acks,
                    timeout=args.timeout, gate_keys=gate_keys(gates) if gates else None)
    finally:
        client.close()
    versions = f"version {version}" if final == version else f"versions {version}..{final} (one per message)"
    print(f"pushed {kind} {versions}: {len(upserts)} upserts, {len(deletes)} deletes, "
          f"{len(payloads)} message(s) of at most {max(len(p) for p in payloads)} bytes", file=sys.stderr)
    for ack in acks:
        print(json.dumps(ack, ensure_ascii=False))
        for line in ack_notes_text(ack):
            print(line, file=sys.stderr)
    if len(acks) < args.acks:
        print(f"only {len(acks)} of {args.acks} acks within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0 if all(a.get("status") == "applied" for a in acks) else 1


def _show(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def _watch(args: argparse.Namespace, topics: list[str]) -> int:
    """Print messages as JSON lines: until --count of them, or --timeout s (without --follow), or Ctrl-C.
    With --gates each line says whether the message is signed by the gate it names (`verified`).
    Exit 1 when --count was given and fewer came."""
    from edge.admin.gates import gate_keys

    gates = _gates(args, args.admin_command)
    keys = gate_keys(gates) if gates is not None else None
    client = _connect(args)
    if client is None:
        return 2
    count: int | None = args.count
    seen = 0
    try:
        client.subscribe(topics)
        print(f"watching {' '.join(topics)}", file=sys.stderr, flush=True)
        end = None if args.follow else time.monotonic() + args.timeout
        while (end is None or time.monotonic() < end) and (count is None or seen < count):
            msgs = client.wait(seen + 1, 1.0 if end is None else max(0.0, end - time.monotonic()))
            for topic, payload in msgs[seen:count]:
                line: dict[str, object] = {"topic": topic, "payload": _show(payload)}
                if keys is not None:
                    line["verified"] = _verified(line["payload"], topic, args, keys)
                print(json.dumps(line, ensure_ascii=False), flush=True)
            seen = len(msgs) if count is None else min(len(msgs), count)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    if count is not None and seen < count:
        print(f"only {seen} of {count} messages", file=sys.stderr)
        return 1
    return 0


def _verified(payload: object, topic: str, args: argparse.Namespace, keys: dict[str, Any]) -> bool:
    """Signed by the key of the gate whose topic it came on (and, for an ack, that it names)."""
    from edge.protocol.signing import SignatureError, verify

    head = f"{args.prefix}/{args.community}/"
    gate = topic[len(head):].split("/", 1)[0] if topic.startswith(head) else ""
    if not isinstance(payload, dict) or gate not in keys:
        return False
    if payload.get("gate", gate) != gate and payload.get("gate_id", gate) != gate:
        return False
    try:
        verify(payload, [keys[gate]])
    except SignatureError:
        return False
    return True


def cmd_events(args: argparse.Namespace) -> int:
    base = f"{args.prefix}/{args.community}/+"
    return _watch(args, [f"{base}/events", f"{base}/alarms"])


def cmd_acks(args: argparse.Namespace) -> int:
    return _watch(args, [f"{args.prefix}/{args.community}/+/whitelist/ack"])


def cmd_schemas(args: argparse.Namespace) -> int:
    from edge.protocol.schemas import write_schemas

    out = Path(args.out)
    try:
        written = write_schemas(out, Path(args.asyncapi) if args.asyncapi else out.parent / "asyncapi.yaml")
    except OSError as exc:
        print(f"gate admin schemas: cannot write {out}: {exc.strerror or exc}; give a writable --out", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} JSON Schema files to {out}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    admin = sub.add_parser("admin", help="community admin: keys, signed pushes, events, acks, payload schemas")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    kg = asub.add_parser("keygen", help="make an Ed25519 admin key; prints the public key for gate configs")
    kg.add_argument("--out", required=True, help="private key file to write (PEM, mode 0600)")
    kg.set_defaults(func=cmd_keygen)

    def broker(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
        p.add_argument("--community", required=True)
        p.add_argument("--prefix", default="edge-gate", help="topic prefix")
        p.add_argument("--username")
        p.add_argument("--password-env", help="environment variable holding the broker password")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
        p.add_argument("--tls-ca", help="mqtts: CA file (PEM) that signed the broker's certificate "
                       "(default: the system's CAs)")
        p.add_argument("--tls-cert", help="mqtts: client certificate (PEM), where the broker asks for one")
        p.add_argument("--tls-key", help="mqtts: the client certificate's private key (PEM)")
        p.add_argument("--tls-min-version", choices=("1.2", "1.3"), default="1.2", help="lowest TLS version")
        p.add_argument("--gates", help="the community's gates and public keys (JSON, docs/protocol.md): "
                       "acks and events are verified against them; snapshots carry them to every gate")
        return p

    pu = broker(asub.add_parser("push", help="sign and publish a whitelist snapshot or delta"))
    src = pu.add_mutually_exclusive_group(required=True)
    src.add_argument("--snapshot", help="CSV/JSON of every person (replaces the list; docs/person-files.md)")
    src.add_argument("--delta", help="CSV/JSON of changes (upserts, deletes; docs/person-files.md)")
    pu.add_argument("--key", required=True, help="admin private key (PEM)")
    pu.add_argument("--version", type=int, help="new whitelist version (default: the current Unix time); a "
                    "delta too large for one message becomes consecutive deltas of this version and the next ones")
    pu.add_argument("--base-version", type=int, help="delta: the version it applies on (default: version - 1)")
    pu.add_argument("--gate", help="only this gate")
    pu.add_argument("--model-id", help="model of embeddings given without one")
    pu.add_argument("--valid-hours", type=float, default=24.0, help="the push expires after this long")
    pu.add_argument("--acks", type=int, default=0, help="wait for this many gates' acks (verified: needs --gates)")
    pu.add_argument("--send-gates", action="store_true", help="delta: also replace the gates' list of member "
                    "gates with --gates (a snapshot always carries it)")
    pu.add_argument("--max-message-bytes", type=int, default=MAX_PAYLOAD_BYTES,
                    help="largest MQTT message to publish (for brokers with a smaller limit; default and "
                    "maximum: what gates accept)")
    pu.set_defaults(func=cmd_push)
    ev = broker(asub.add_parser("events", help="print the community's events and alarms (JSON lines)"))
    ev.add_argument("--follow", action="store_true", help="keep printing until Ctrl-C (or --count)")
    ev.add_argument("--count", type=int, help="exit after this many messages")
    ev.set_defaults(func=cmd_events)
    ac = broker(asub.add_parser("acks", help="print the gates' whitelist acks (the last of each gate is retained)"))
    ac.add_argument("--follow", action="store_true", help="keep printing until Ctrl-C (or --count)")
    ac.add_argument("--count", type=int, help="exit after this many messages")
    ac.set_defaults(func=cmd_acks)
    sc = asub.add_parser("schemas", help="write the JSON Schema file of every MQTT payload (docs/schemas/)")
    sc.add_argument("--out", default="docs/schemas", help="directory to write *.schema.json into "
                    "(default: docs/schemas)")
    sc.add_argument("--asyncapi", help="AsyncAPI 3.0 file to write as well (default: asyncapi.yaml next to "
                    "--out, i.e. docs/asyncapi.yaml)")
    sc.set_defaults(func=cmd_schemas, shared_output=True)  # documentation
