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


def _entries() -> dict[str, str]:
    """Each Layout line's path (its first word) and the description after it."""
    entries = {}
    for line in _layout_section().splitlines():
        first, _, description = line.strip().partition(" ")
        if path := first.strip("`|"):
            entries[path] = description.strip()
    return entries


def test_every_module_has_its_line_in_the_layout() -> None:
    entries, modules = _entries(), _modules()
    missing = [m for m in modules if m not in entries]
    assert not missing, "README Layout lacks: " + ", ".join(missing)
    undescribed = [m for m in modules if len(entries[m].split()) < 2]
    assert not undescribed, "README Layout lines without a description: " + ", ".join(undescribed)


def test_the_layout_names_no_module_that_is_gone() -> None:
    stale = [p for p in _entries() if p.endswith(".py") and not (ROOT / p).exists()]
    assert not stale, "README Layout names modules that do not exist: " + ", ".join(stale)
