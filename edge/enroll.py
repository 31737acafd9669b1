"""Enrolment and identification against the local store: photos in, templates (never photos) out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.config import GateConfig
from edge.records import PersonKind
from edge.store import PersonRecord, Store
from edge.vision import FaceEngine, Gallery, ImageError, load_image

log = logging.getLogger(__name__)

DB_NAME = "gate.db"


def store_path(cfg: GateConfig) -> Path:
    return cfg.gate.data_dir / DB_NAME


def load_gallery(store: Store, model_id: str) -> Gallery:
    person_ids, matrix = store.load_templates(model_id)
    if matrix.shape[0] == 0:
        return Gallery.empty(model_id)
    return Gallery(person_ids, matrix, model_id)


@dataclass
class EnrollResult:
    model_id: str
    templates: int = 0
    messages: list[str] = field(default_factory=list)


def enroll_images(cfg: GateConfig, person_id: str, name: str, images: list[str], *, kind: PersonKind = "resident",
                  unit: str | None = None, require_quality: bool = True,
                  engine: FaceEngine | None = None) -> EnrollResult:
    """Embed the largest face of each image and store the templates; the photos are not kept."""
    engine = engine or FaceEngine(cfg.vision)
    result = EnrollResult(model_id=engine.model_id)
    embeddings = []
    for path in images:
        try:
            faces = engine.analyze(load_image(path))
        except ImageError as exc:
            result.messages.append(f"{path}: skipped: {exc}")
            continue
        if not faces:
            result.messages.append(f"{path}: skipped: no face found")
            continue
        face = faces[0]
        if require_quality and face.quality is not None and not face.quality.ok:
            result.messages.append(f"{path}: skipped: face fails the quality gate ({', '.join(face.quality.reasons)})")
            continue
        embeddings.append(face.embedding)
        result.messages.append(f"{path}: template added (score {face.score:.2f})")
    if not embeddings:
        return result
    store = Store.open(store_path(cfg))
    try:
        existing = store.get_person(person_id)
        if existing is None:
            store.upsert_person(PersonRecord(id=person_id, name=name, kind=kind, unit=unit))
        store.add_templates(person_id, np.stack(embeddings).astype(np.float32), engine.model_id)
    finally:
        store.close()
    result.templates = len(embeddings)
    return result


def identify_image(cfg: GateConfig, image_path: str, engine: FaceEngine | None = None) -> dict[str, object]:
    engine = engine or FaceEngine(cfg.vision)
    faces = engine.analyze(load_image(image_path))
    out: dict[str, object] = {"image": image_path, "person_id": None, "name": None, "score": 0.0,
                              "margin": 0.0, "decision": "unknown", "reason": "no_face", "candidates": []}
    if not faces:
        return out
    face = faces[0]
    if face.quality is not None and not face.quality.ok:
        out["reason"] = "quality:" + ",".join(face.quality.reasons)
        out["bbox"] = [round(v, 1) for v in face.bbox]
        return out
    store = Store.open(store_path(cfg))
    try:
        gallery = load_gallery(store, engine.model_id)
        match = engine.identify(face.embedding, gallery)
        person = store.get_person(match.person_id) if match.person_id else None
    finally:
        store.close()
    out.update({
        "person_id": match.person_id, "name": person.name if person else None, "score": round(match.score, 4),
        "margin": round(match.margin, 4), "decision": "match" if match.person_id else "unknown",
        "reason": match.reason, "bbox": [round(v, 1) for v in face.bbox],
        "candidates": [{"person_id": c.person_id, "score": round(c.score, 4)} for c in match.candidates],
    })
    return out
