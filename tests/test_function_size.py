"""Functions stay short enough to read against the docs: none over MAX_LINES in the modules
listed here (issue 12's acceptance; add a module once it meets the limit)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 40
MODULES = [
    "firmware_bridge/bridge.py",
    "lastwatt/engine.py",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "lastwatt" / "model").glob("*.py")),
]


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function or method longer than ``limit`` lines (signature
    to last statement, docstring included, decorators not)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                out.append((node.name, lines))
    return out


def test_the_check_finds_a_long_function_and_passes_a_short_one():
    body = "".join(f"    x{i} = {i}\n" for i in range(3))
    assert long_functions(f"def f():\n{body}", 3) == [("f", 4)]
    assert long_functions(f"class C:\n    def g(self):\n{body.replace('    ', '        ')}",
                          4) == []


@pytest.mark.parametrize("module", MODULES)
def test_no_function_is_longer_than_the_limit(module):
    assert long_functions((ROOT / module).read_text(encoding="utf-8"), MAX_LINES) == []
