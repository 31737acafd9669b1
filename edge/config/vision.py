"""Configuration of the vision pipeline (a section of the gate's config tree)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge.config.base import Section
from edge.models import DEFAULT_MODELS_DIR


class DetectorConfig(Section):
    type: Literal["yunet", "scrfd"] = Field("yunet", description="Face detector: yunet (default, MIT) or scrfd "
                                            "(an insightface model the operator supplies; non-commercial licence).")
    file: str = Field("face_detection_yunet_2023mar.onnx", description="Model file name in models_dir.")
    sha256: str | None = Field(None, description="Expected sha256 of an operator-supplied model file (manifest "
                               "models are always verified against the manifest).")
    max_side: int = Field(640, ge=64, le=4096, description="Frames larger than this are scaled down before "
                          "detection (longest side, pixels); the input is then padded to a multiple of 32.")
    score_threshold: float = Field(0.7, ge=0.0, le=1.0, description="Minimum detection score, sqrt(cls*obj).")
    nms_threshold: float = Field(0.3, ge=0.0, le=1.0, description="IoU above which overlapping boxes are merged.")
    top_k: int = Field(50, ge=1, le=5000, description="At most this many faces per frame.")


class EmbedderConfig(Section):
    type: Literal["sface", "arcface"] = Field("sface", description="Embedding model family: sface (default, "
                                              "Apache-2.0) or arcface (insightface-style ONNX supplied by the "
                                              "operator).")
    file: str = Field("face_recognition_sface_2021dec.onnx", description="Model file name in models_dir.")
    sha256: str | None = Field(None, description="Expected sha256 of an operator-supplied model file.")
    model_id: str | None = Field(None, description="Id stored with every template; templates made by another model "
                                 "are never compared. Default: derived from the file's manifest entry or name.")
    optimize_graph: bool = Field(True, description="Apply the exact load-time graph rewrite (PRelu, constant "
                                 "weights); embeddings stay identical (cosine >= 0.9999, tested).")


class QualityConfig(Section):
    min_interocular_px: float = Field(32.0, ge=0, description="Reject faces whose eyes are closer than this.")
    min_sharpness: float = Field(30.0, ge=0, description="Reject aligned crops whose Laplacian variance is lower "
                                 "(motion blur, out of focus).")
    max_yaw: float = Field(0.45, ge=0, le=1, description="Reject faces turned further than this (nose offset from "
                           "the eye midpoint, as a fraction of the inter-ocular distance; 0 = frontal).")
    max_pitch: float = Field(0.45, ge=0, le=1, description="Reject faces tilted further than this (deviation of "
                             "the nose's relative height between eyes and mouth from frontal).")
    min_score: float = Field(0.8, ge=0, le=1, description="Reject detections less certain than this for recognition.")


class MatchConfig(Section):
    threshold: float | None = Field(None, ge=-1, le=1, description="Cosine similarity needed to name a person. "
                                    "Default: the embedder's calibrated value (SFace 0.50, ArcFace 0.35).")
    margin: float = Field(0.06, ge=0, le=1, description="The best person must beat the second-best person by "
                          "this much, otherwise the face stays unknown.")
    top_k: int = Field(5, ge=1, le=100, description="How many candidate persons a search returns.")


class RuntimeConfig(Section):
    intra_op_threads: int = Field(0, ge=0, le=64, description="onnxruntime threads inside one operator "
                                  "(0 = number of cores).")
    inter_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads across operators.")
    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level.")
    allow_spinning: bool = Field(False, description="Let idle onnxruntime threads spin. Off: the detector's and "
                                 "embedder's pools alternate on few cores, and spinning ones steal the CPU (measured "
                                 "1.5x slower on 2 cores).")
    providers: list[str] = Field(["CPUExecutionProvider"], description="onnxruntime execution providers, in order.")
    memory_arena: bool = Field(False, description="Keep onnxruntime's CPU memory arena (its peak activations stay "
                               "allocated between frames). Off: freed after each run, no slower measured here.")


class VisionSection(Section):
    models_dir: Path = Field(DEFAULT_MODELS_DIR, description="Directory holding the model files and manifest.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="Face detection.")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, description="Face embedding.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Quality gate before recognition.")
    match: MatchConfig = Field(default_factory=MatchConfig, description="1:N identification.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="onnxruntime session options.")
