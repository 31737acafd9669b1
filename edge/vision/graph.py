"""Load-time edits of the ONNX graphs (with the `onnx` package), run in a short-lived helper process.

- the detector: YuNet ships with a fixed 1x3x640x640 input; its reshapes are size-agnostic, so H and W
  are freed and any frame size (padded to a multiple of 32) runs as it is;
- the embedder: a free batch dimension, and with `optimize` the exact rewrite that makes SFace fast on
  onnxruntime's CPU provider (weights as constants, PRelu as ops kept in the blocked layout).

`prepared_model(kind, path)` runs the edit in a child process (`python edge/vision/graph.py KIND PATH`)
and returns the serialized graph it prints: the gate process then never imports `onnx` nor holds its
protobuf copies of the weights (measured: about 60 MB less resident memory for SFace). The edit functions
themselves stay importable here for tests.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)
KINDS = ("detector", "embedder", "embedder-optimized")


class GraphEditError(RuntimeError):
    """The helper process could not load or edit a model file."""


def dynamic_input(model_path: Path) -> bytes:
    """YuNet ships with a fixed 1x3x640x640 input; its reshapes are size-agnostic, so free H and W."""
    import onnx

    model = onnx.load(str(model_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in model.graph.output:
        out_dims = out.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[1].dim_param = "anchors"
    return bytes(model.SerializeToString())


def _free_batch_dim(model: onnx.ModelProto) -> None:
    init_names = {i.name for i in model.graph.initializer}
    data_inputs = [i for i in model.graph.input if i.name not in init_names]
    for value in [*data_inputs, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"


def _weights_as_constants(model: onnx.ModelProto) -> int:
    """Drop initializers from the graph inputs (old exporters list them there), which makes them
    overridable at run time and so blocks constant folding and Conv+BatchNorm fusion."""
    init_names = {i.name for i in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in init_names]
    removed = len(model.graph.input) - len(real_inputs)
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    return removed


def _rewrite_prelu(model: onnx.ModelProto) -> int:
    """Replace each PRelu by ops onnxruntime keeps in its blocked (NCHWc) layout.

    PRelu(x) = x if x >= 0 else s*x  =  x + (1 - s) * Relu(-x), for any slope sign or size. -x and
    (1 - s) * ... are 1x1 depthwise convolutions, into which the Relu and the Add fuse, so a layer
    costs two light passes and no layout change. For x >= 0 the result is exactly x; for x < 0 it
    differs from s*x by a few float32 roundings (max 1e-6 on SFace's output, cosine 1.0, tested).
    Measured side by side on 2 cores: the PRelu kernel 2.2x OpenCV's SFace time, a Max(x, s*x) form
    1.3x (layout reorders around every Max), this form 1.0x.
    """
    from onnx import helper, numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes, rewritten = [], 0
    for node in model.graph.node:
        slope = inits.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or slope.size != slope.shape[0] or any(d != 1 for d in slope.shape[1:]):
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        channels = int(slope.shape[0])
        neg_w, gain_w = y + "_neg_w", y + "_gain_w"
        model.graph.initializer.extend([
            numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, np.float32), neg_w),
            numpy_helper.from_array((1.0 - slope).reshape(channels, 1, 1, 1).astype(np.float32), gain_w),
        ])
        nodes += [
            helper.make_node("Conv", [x, neg_w], [y + "_neg"], group=channels, kernel_shape=[1, 1]),
            helper.make_node("Relu", [y + "_neg"], [y + "_negpart"]),
            helper.make_node("Conv", [y + "_negpart", gain_w], [y + "_corr"], group=channels, kernel_shape=[1, 1]),
            helper.make_node("Add", [x, y + "_corr"], [y]),
        ]
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return rewritten


def prepare_model(model_path: Path, optimize: bool) -> bytes:
    """Load an embedding model and return the serialized graph the session will run."""
    import onnx

    model = onnx.load(str(model_path))
    _free_batch_dim(model)
    if optimize:
        removed = _weights_as_constants(model)
        rewritten = _rewrite_prelu(model)
        log.info("%s: %d weights made constant, %d PRelu rewritten", model_path.name, removed, rewritten)
    return bytes(model.SerializeToString())




def edit(kind: str, model_path: Path) -> bytes:
    """The edited graph of `model_path`, in this process."""
    if kind == "detector":
        return dynamic_input(model_path)
    if kind in ("embedder", "embedder-optimized"):
        return prepare_model(model_path, optimize=kind == "embedder-optimized")
    raise ValueError(f"unknown graph kind {kind!r} (one of {', '.join(KINDS)})")


def prepared_model(kind: str, model_path: Path, timeout_s: float = 300.0) -> bytes:
    """The edited graph of `model_path`, made by a helper process (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown graph kind {kind!r} (one of {', '.join(KINDS)})")
    # the file itself, not `-m edge.vision.graph`: that would import the whole package (OpenCV, onnxruntime)
    proc = subprocess.run([sys.executable, "-I", __file__, kind, str(model_path)],
                          capture_output=True, timeout=timeout_s, check=False)
    if proc.returncode != 0 or not proc.stdout:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphEditError(f"cannot prepare {model_path.name}: {why[-1] if why else f'exit {proc.returncode}'}")
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.strip():
            log.info("%s", line.strip())
    return proc.stdout


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        print(f"usage: python graph.py {{{'|'.join(KINDS)}}} MODEL.onnx", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    data = edit(argv[0], Path(argv[1]))
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
