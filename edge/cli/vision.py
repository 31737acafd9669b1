"""`gate models|faces|enroll|identify`: model files, and faces in images checked, enrolled and named."""

from __future__ import annotations

import argparse
import json
import sys

from edge.cli.common import load, with_config


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from edge.models import fetch_all

    cfg = load(args)
    for line in fetch_all(cfg.vision.models_dir, names=args.model or None, source=args.source,
                          samples=args.samples):
        print(line)
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from edge.models import load_manifest, verify

    cfg = load(args)
    manifest = load_manifest(cfg.vision.models_dir / "manifest.toml")
    bad = 0
    for spec in manifest.models.values():
        problem = verify(cfg.vision.models_dir / spec.file, spec.sha256)
        print(f"{spec.name}: {problem or 'ok'}")
        bad += problem is not None
    return 1 if bad else 0


def cmd_faces(args: argparse.Namespace) -> int:
    from edge.vision import FaceEngine, ImageError, load_image

    engine = FaceEngine(load(args).vision)
    status = 0
    for path in args.images:
        try:
            faces = engine.analyze(load_image(path))
        except ImageError as exc:
            print(json.dumps({"image": path, "error": str(exc)}) if args.json else f"{path}: error: {exc}")
            status = 2
            continue
        if args.json:
            print(json.dumps({"image": path, "faces": [f.to_json() for f in faces]}))
        else:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                q = f.quality
                verdict = "ok" if q is None or q.ok else ",".join(q.reasons)
                print(f"  bbox={tuple(round(v) for v in f.bbox)} score={f.score:.3f} quality={verdict}")
    return status


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.enroll import enroll_images

    cfg = load(args)
    result = enroll_images(cfg, args.id, args.name, args.images, kind=args.kind, unit=args.unit,  # choices= checks kind
                           require_quality=not args.force)
    for line in result.messages:
        print(line)
    if result.templates == 0:
        print(f"no usable face for {args.id}; nothing enrolled", file=sys.stderr)
        return 1
    print(f"enrolled {args.id} ({args.name}) with {result.templates} template(s) [{result.model_id}]")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from edge.enroll import identify_image
    from edge.vision import ImageError

    cfg = load(args)
    try:
        result = identify_image(cfg, args.image)
    except ImageError as exc:
        print(json.dumps({"image": args.image, "error": str(exc)}) if args.json else f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        who = result["person_id"] or "unknown"
        print(f"{args.image}: {who} (score {result['score']:.3f}, margin {result['margin']:.3f}, "
              f"{result['decision']}: {result['reason']})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="fetch and verify model files")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = with_config(models_sub.add_parser("fetch", help="fetch missing or mismatching models (sha256 verified)"))
    fetch.add_argument("--model", action="append", help="only this manifest model (repeatable)")
    fetch.add_argument("--from", dest="source", help="operator-given local path or URL for one --model")
    fetch.add_argument("--samples", action="store_true", help="also extract the sample photos (tests, demo)")
    fetch.set_defaults(func=cmd_models_fetch, shared_output=True)  # the service user reads them
    verify_p = with_config(models_sub.add_parser("verify", help="check every manifest model's hash"))
    verify_p.set_defaults(func=cmd_models_verify)

    faces = with_config(sub.add_parser("faces", help="detect and embed faces in images"))
    faces.add_argument("images", nargs="+")
    faces.add_argument("--json", action="store_true", help="one JSON object per image")
    faces.set_defaults(func=cmd_faces)

    enroll = with_config(sub.add_parser("enroll", help="enroll a person's face templates into the local store"))
    enroll.add_argument("--id", required=True)
    enroll.add_argument("--name", required=True)
    enroll.add_argument("--kind", default="resident", choices=["resident", "visitor", "staff"])
    enroll.add_argument("--unit", default=None, help="flat or house number")
    enroll.add_argument("--force", action="store_true", help="accept faces that fail the quality gate")
    enroll.add_argument("images", nargs="+")
    enroll.set_defaults(func=cmd_enroll)

    ident = with_config(sub.add_parser("identify", help="name the largest face in an image (1:N)"))
    ident.add_argument("image")
    ident.add_argument("--json", action="store_true")
    ident.set_defaults(func=cmd_identify)
