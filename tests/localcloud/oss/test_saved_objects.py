"""SavedObjects (localcloud.oss.storage) restarts from whatever a kill -9 left in the data dir."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from localcloud.oss import storage
from localcloud.oss.compat import moto_backend

MIB = 1024 * 1024


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


def test_an_overwritten_objects_file_stays_until_its_record_names_the_new_one(bucket) -> None:
    """A kill -9 between moto storing the new object and its record being rewritten must find the
    old object whole, not a record naming a deleted file."""
    backend, name = moto_backend(), bucket.bucket_name
    saved = storage.SavedObjects(storage.install())
    bucket.put_object("clip", os.urandom(2 * MIB))  # beyond IN_MEMORY_MAX: a file of its own
    saved.record(backend, name, "clip")
    old_file = Path(backend.get_object(name, "clip")._value_buffer.name)

    bucket.put_object("clip", os.urandom(2 * MIB))  # moto disposes of the old key; the record is not rewritten yet
    assert old_file.is_file()

    saved.record(backend, name, "clip")
    assert not old_file.exists()
    bucket.delete_object("clip")
    saved.record(backend, name, "clip")
