"""onnxruntime session construction: provider choice and session options, apart from any model's
pre/post-processing (which lives with the model)."""

from __future__ import annotations

import logging

import onnxruntime as ort

from edge.config.vision import RuntimeConfig

log = logging.getLogger(__name__)

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def make_session(model: bytes, cfg: RuntimeConfig, name: str) -> ort.InferenceSession:
    """Create an inference session for serialized ONNX `model` with the configured options."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _LEVELS[cfg.graph_optimization]
    opts.intra_op_num_threads = cfg.intra_op_threads
    opts.inter_op_num_threads = cfg.inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = cfg.memory_arena
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if cfg.allow_spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if cfg.allow_spinning else "0")
    available = set(ort.get_available_providers())
    providers = [p for p in cfg.providers if p in available] or ["CPUExecutionProvider"]
    session = ort.InferenceSession(model, sess_options=opts, providers=providers)
    log.info("loaded %s on %s", name, session.get_providers()[0])
    return session
