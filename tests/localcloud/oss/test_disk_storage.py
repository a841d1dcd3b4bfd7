"""Objects live in files (localcloud.oss.storage): a big multipart upload does not grow the local
OSS's memory with its size, and a range GET reads the range from the object's file, not the object."""
from __future__ import annotations

import hashlib
import os
import uuid

import oss2
import pytest

from bench.oss_big_objects import MIB, generated_part, memory_mb, serve_oss, upload_generated
from localcloud.oss import crc64, storage

UPLOAD_MB, PART_MB = 300, 50
#: Two copies of a part in flight (werkzeug reads the body, then into bytes) plus slack; moto
#: alone held the whole upload three times over (parts, joined bytearray, checksum copy).
MEMORY_GROWTH_BOUND_MB = 3 * PART_MB + 60


def _file_of(bucket: oss2.Bucket, key: str) -> str:
    """The file the in-process local OSS keeps ``key``'s bytes in."""
    from localcloud.oss.compat import moto_backend

    return moto_backend().get_object(bucket.bucket_name, key)._value_buffer.name


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_a_multipart_upload_does_not_grow_the_servers_memory_with_its_size():
    with serve_oss(_unique("disk-mem")) as (proc, bucket):
        bucket.put_object("warm-up", b"x")
        idle = memory_mb(proc.pid)["rss_mb"]
        etag = upload_generated(bucket, "big", UPLOAD_MB * MIB, PART_MB * MIB)
        after_upload = memory_mb(proc.pid)["peak_rss_mb"]
        digest = hashlib.md5()
        for chunk in bucket.get_object("big"):
            digest.update(chunk)
        after_get = memory_mb(proc.pid)["peak_rss_mb"]
    assert after_upload - idle < MEMORY_GROWTH_BOUND_MB, (idle, after_upload)
    assert after_get - idle < MEMORY_GROWTH_BOUND_MB, (idle, after_get)
    expected = hashlib.md5()
    part_digests = b""
    for number in range(1, UPLOAD_MB // PART_MB + 1):
        part = generated_part(number, PART_MB * MIB)
        expected.update(part)
        part_digests += hashlib.md5(part).digest()
    assert digest.hexdigest() == expected.hexdigest()
    assert etag == f"{hashlib.md5(part_digests).hexdigest()}-{UPLOAD_MB // PART_MB}".upper()


@pytest.fixture
def files(server):
    """The process's object folder (the package's LocalOss installed it)."""
    return storage.install()


def test_a_range_get_reads_the_range_whatever_the_objects_size(bucket, files):
    part_size = 8 * MIB
    for size in (3 * MIB, 40 * MIB):
        upload_generated(bucket, f"{size}", size, part_size)
        start = size // 2
        path = _file_of(bucket, f"{size}")
        with files.watching([path]) as read:
            body = bucket.get_object(f"{size}", byte_range=(start, start + MIB - 1)).read()
        assert read[path] == MIB, size
        part = generated_part(start // part_size + 1, part_size)
        assert body == part[start % part_size:start % part_size + MIB]


def test_each_big_object_has_one_file_which_goes_with_it(bucket, files):
    def count() -> int:
        return len(os.listdir(files.folder))

    big = storage.IN_MEMORY_MAX + 1
    start = count()
    bucket.put_object("small", b"stays in memory")
    assert count() == start
    bucket.put_object("a", b"1" * big)
    assert count() == start + 1
    bucket.put_object("a", b"2" * big)  # the old value's file is deleted with it
    assert count() == start + 1
    upload_generated(bucket, "b", 3 * big, big)  # the part files go once joined
    assert count() == start + 2
    bucket.delete_object("a")
    bucket.delete_object("b")
    assert count() == start


def test_copies_stream_from_file_to_file(bucket, files):
    data = os.urandom(2 * MIB + 5)
    bucket.put_object("src", data)
    bucket.copy_object(bucket.bucket_name, "src", "copy")
    upload_id = bucket.init_multipart_upload("part-copy").upload_id
    part = bucket.upload_part_copy(bucket.bucket_name, "src", (10, MIB + 9), "part-copy", upload_id, 1)
    bucket.complete_multipart_upload("part-copy", upload_id, [oss2.models.PartInfo(1, part.etag)])
    paths = {key: _file_of(bucket, key) for key in ("src", "copy", "part-copy")}
    assert len(set(paths.values())) == 3, "each copy has a file of its own"
    with files.watching(paths.values()) as read:
        assert bucket.get_object("copy").read() == data
        assert bucket.get_object("part-copy").read() == data[10:MIB + 10]
    assert {key: read[path] for key, path in paths.items()} == {"src": 0, "copy": len(data), "part-copy": MIB}


def test_an_objects_crc_computed_on_demand_is_read_a_chunk_at_a_time(server, bucket, monkeypatch):
    data = os.urandom(8 * MIB)
    server.put_objects(bucket.bucket_name, {"seeded": data})  # stored without its CRC
    read: list[int] = []  # what the CRC reads, chunk by chunk (tracemalloc would count every thread)
    real_chunks = storage.chunks
    monkeypatch.setattr(storage, "chunks", lambda key: (read.append(len(c)) or c for c in real_chunks(key)))
    head = bucket.head_object("seeded")
    assert int(head.headers[crc64.HEADER]) == crc64.of_bytes(data)
    assert sum(read) == len(data) and max(read) <= storage.CHUNK_SIZE <= MIB  # never the object whole
