# Sourced by scripts/test and scripts/run-demo: create or reuse .venv in the repo root, install the
# package (again only when pyproject.toml changed), and fetch + verify the models and sample photos.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "edge-gate needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.edge-gate-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing edge-gate and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$VENV/bin/python" -c 'import edge, cv2, onnxruntime, insightface' || { echo "install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" "$ROOT/scripts/fetch_models.py" --samples >&2
