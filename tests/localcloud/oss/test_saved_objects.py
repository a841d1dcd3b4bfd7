"""SavedObjects (localcloud.oss.storage) restarts from whatever a kill -9 left in the data dir."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from localcloud.oss import storage


def test_a_record_killed_before_its_rename_does_not_stop_the_restart(tmp_path: Path) -> None:
    files = storage.ObjectFiles(tmp_path, small_in_memory=False)
    bucket_records = tmp_path / "records" / "media"
    bucket_records.mkdir(parents=True)
    (bucket_records / "0123abcd.tmp").write_text('{"key": "half', encoding="utf-8")
    created: list[str] = []

    restored = storage.SavedObjects(files).restore(SimpleNamespace(buckets={}), created.append)

    assert restored == 0
    assert created == []  # the bucket held no acknowledged object
    assert not bucket_records.exists()
