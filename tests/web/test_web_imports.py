"""The guards' page depends on `edge.web.ports` only, never on the gate's modules: every import of every
module in edge/web (top level, inside functions, under TYPE_CHECKING) is read with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import edge.web

WEB = Path(edge.web.__file__).resolve().parent
FORBIDDEN = ("edge.gate", "edge.lane", "edge.app")


def imported_modules(path: Path) -> set[str]:
    """Every module name an import in this file may load (`from a import b` counts as a and a.b)."""
    package = "edge.web" if path.name == "__init__.py" else f"edge.web.{path.stem}"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = package.split(".")
                base = base[:len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_of_the_page_imports_the_gate() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert len(modules) >= 8 and WEB / "ports.py" in modules  # the check reads the real package
    offending = {p.name: sorted(n for n in imported_modules(p) if n in FORBIDDEN or n.startswith(
        tuple(f"{f}." for f in FORBIDDEN))) for p in modules}
    assert {k: v for k, v in offending.items() if v} == {}
    assert "edge.web.ports" in imported_modules(WEB / "app.py")  # the page's one way to its gate


def test_the_check_sees_imports_in_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge.gate import Gate\n"
                      "def f():\n    import edge.lane\n    from edge import app\n")
    found = imported_modules(sample)
    assert {"edge.gate", "edge.lane", "edge.app"} <= found
