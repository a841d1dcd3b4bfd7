"""The conformance run's skip lists are well formed (fast; part of ``make test``): one ``test-id reason``
per line, each test once, only in the files the run covers. ``make conformance``
itself checks that each listed test still exists in oss2's suite."""
from __future__ import annotations

from tests.conformance.oss2_scope_plugin import SKIP_LISTS, read_skip_list
from tests.conformance.run_oss2 import IN_SCOPE_FILES


def test_skip_lists_name_tests_of_the_files_in_scope_once_each_with_a_reason() -> None:
    lists = {kind: read_skip_list(path) for kind, path in SKIP_LISTS.items()}
    ids = [test_id for entries in lists.values() for test_id in entries]
    assert len(ids) == len(set(ids)), "a test is listed twice"
    assert all(test_id.split("::")[0].removeprefix("tests/") in IN_SCOPE_FILES for test_id in ids)
    assert all(len(reason.split()) >= 3 for entries in lists.values() for reason in entries.values())
