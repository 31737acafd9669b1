"""docs/protocol/test-vectors.json: in step with the code, checked with this project's signing code
and with an independent RFC 8785 + Ed25519 implementation in Node (tests/interop/verify-vectors.mjs,
written from the RFC without reading the Python)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.protocol.vectors import VECTORS_FILE, check_vector, vectors_text

NODE_VERIFIER = Path(__file__).with_name("verify-vectors.mjs")


def test_vectors_file_is_in_step_with_the_code() -> None:
    assert VECTORS_FILE.read_text(encoding="utf-8") == vectors_text(), \
        "run: python scripts/make_test_vectors.py"


def test_vectors_cover_what_implementers_get_wrong() -> None:
    vectors = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
    canon = "\n".join(v["canonical"] for v in vectors)
    assert "1e-7" in canon and "1e+21" in canon  # ECMAScript exponents, not Python's 1e-07
    assert '"three":3' in canon  # 3.0 is written 3
    assert "李伟" in canon and "\\u0001" in canon and "\\n" in canon
    assert any(not v["valid"] for v in vectors) and any(v["valid"] for v in vectors)


@pytest.mark.parametrize("index", range(len(json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"])))
def test_each_vector_holds_with_the_project_code(index: int) -> None:
    vector = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"][index]
    assert check_vector(vector) == [], vector["name"]


def _node(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is needed for the interop checks (scripts/test installs it)"
    return subprocess.run([node, str(NODE_VERIFIER), str(path)], capture_output=True, text=True, timeout=60)


def test_vectors_verify_in_node() -> None:
    run = _node(VECTORS_FILE)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failed" in run.stdout


def test_node_verifier_catches_a_wrong_vector(tmp_path: Path) -> None:
    doc = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    doc["vectors"][0]["valid"] = not doc["vectors"][0]["valid"]
    doc["vectors"][2]["canonical"] = doc["vectors"][2]["canonical"].replace(":", ": ", 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    run = _node(bad)
    assert run.returncode == 1
    assert "2 failed" in run.stdout
