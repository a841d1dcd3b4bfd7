"""The README's Layout section names every module of the library, the handlers, the local cloud and
the benchmarks, each with a line saying what it holds: a new module without its line fails here."""
from __future__ import annotations

import re

from tests.conftest import ROOT

DOCUMENTED_TREES = ("shared/snapshot_pipeline", "functions", "localcloud", "bench")


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Layout' section"
    return match.group(1)


def _modules() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for tree in DOCUMENTED_TREES for p in (ROOT / tree).rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_every_module_has_its_line_in_the_layout() -> None:
    lines = {line.split()[0].strip("`|"): line for line in _layout_section().splitlines() if line.strip()}
    listed = {path: line for path, line in lines.items()}
    missing = [m for m in _modules() if m not in listed]
    assert not missing, "README Layout lacks: " + ", ".join(missing)
    undescribed = [m for m in _modules() if len(listed[m].split()) < 3]
    assert not undescribed, "README Layout lines without a description: " + ", ".join(undescribed)


def test_the_layout_names_no_module_that_is_gone() -> None:
    paths = [line.split()[0].strip("`|") for line in _layout_section().splitlines() if line.strip()]
    stale = [p for p in paths if p.endswith(".py") and not (ROOT / p).exists()]
    assert not stale, "README Layout names modules that do not exist: " + ", ".join(stale)
