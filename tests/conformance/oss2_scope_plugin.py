"""pytest plugin for oss2's suite (loaded by run_oss2.py): skips the listed tests with their reason.

``oss2_out_of_scope.txt`` lists what the local OSS deliberately does not do. A listed id that the suite
no longer has is an error, so the list cannot rot. Two adaptations, neither touching a test: the suite
imports the ``mock`` backport, which is ``unittest.mock`` today; and the upload and download tests pick
their bucket at random among a plain one, an RSA client-side-encrypted one and a KMS one (which calls
Alibaba Cloud KMS, out of scope), so the KMS choice is made the RSA bucket.
"""
from __future__ import annotations

import sys
import unittest.mock
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SKIP_LISTS = {"out of scope": HERE / "oss2_out_of_scope.txt"}

#: The ids of the tests this run must pass: collected, selected, in neither skip list.
_IN_SCOPE = pytest.StashKey[set[str]]()


def pytest_configure(config: pytest.Config) -> None:
    sys.modules.setdefault("mock", unittest.mock)  # before the suite's modules import it


def read_skip_list(path: Path) -> dict[str, str]:
    """``test id  reason`` per line (blank lines and ``#`` comments ignored): {test id: reason}."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        test_id, _, reason = line.strip().partition(" ")
        if not reason.strip() or test_id in entries:
            raise pytest.UsageError(f"{path.name}:{number}: want one 'test-id  reason' per test, each once")
        entries[test_id] = reason.strip()
    return entries


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so that the stale check sees the whole suite
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    collected = {item.nodeid for item in items}
    skipped: set[str] = set()
    for kind, path in SKIP_LISTS.items():
        listed = read_skip_list(path)
        stale = sorted(set(listed) - collected)
        if stale:
            raise pytest.UsageError(f"{path.name} names tests the suite does not have: {stale}")
        for item in items:
            if item.nodeid in listed:
                item.add_marker(pytest.mark.skip(reason=f"{kind}: {listed[item.nodeid]}"))
        skipped |= set(listed)
    config.stash[_IN_SCOPE] = collected - skipped
    _without_kms_buckets(items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Tests left out by -k or -m are not counted as in scope for this run."""
    if items:
        items[0].config.stash.get(_IN_SCOPE, set()).difference_update(item.nodeid for item in items)


def _without_kms_buckets(items: list[pytest.Item]) -> None:
    """Make every test case's ``kms_crypto_bucket`` its ``rsa_crypto_bucket`` (set up by tests/common.py)."""
    for case in {item.cls for item in items if item.cls is not None}:
        original = case.setUp
        if getattr(original, "_kms_is_rsa", False):
            continue

        def set_up(self: Any, original: Callable[[Any], None] = original) -> None:
            original(self)
            self.kms_crypto_bucket = self.rsa_crypto_bucket

        set_up._kms_is_rsa = True  # type: ignore[attr-defined]
        case.setUp = set_up


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    in_scope = config.stash.get(_IN_SCOPE, set())
    passed = sum(report.nodeid in in_scope for report in terminalreporter.stats.get("passed", []))
    listed = ", ".join(f"{len(read_skip_list(path))} {kind}" for kind, path in SKIP_LISTS.items())
    terminalreporter.write_line(f"conformance: {passed} of {len(in_scope)} in-scope tests passed ({listed})")
