"""The shape a reader can hold in their head: no source file over 500 lines, no function over 60.

Argument tables (functions that only declare a command line's options) are allowed to be long:
they are lists, not logic.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("shared", "functions", "localcloud", "bench", "tests")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
#: Functions that are argument tables: declarations of options, one after the other.
ARGUMENT_TABLES = frozenset({"build_parser", "add_arguments"})


def _sources() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_sources_are_found() -> None:
    assert len(_sources()) > 50


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_FILE_LINES})"


def test_no_function_over_60_lines() -> None:
    too_long = []
    for path in _sources():
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES and fn.name not in ARGUMENT_TABLES:
                too_long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({length} lines)")
    assert not too_long, "functions over 60 lines:\n" + "\n".join(too_long)
