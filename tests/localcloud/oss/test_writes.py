"""LocalOss writes that must be atomic or complete: forbid-overwrite (also under a race) and multipart uploads."""
from __future__ import annotations

import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import oss2
import pytest

from localcloud.oss import storage
from tests.localcloud.oss.support import upper_md5
from tests.support import wait_until


def test_forbid_overwrite_rejects_existing_key(bucket):
    forbid = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object("marker.json", b"first", headers=forbid)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object("marker.json", b"second", headers=forbid)
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("marker.json").read() == b"first"
    bucket.put_object("marker.json", b"third")  # without the header, overwriting is allowed
    assert bucket.get_object("marker.json").read() == b"third"
    with pytest.raises(oss2.exceptions.ServerError, match="FileAlreadyExists"):
        bucket.copy_object(bucket.bucket_name, "marker.json", "marker.json", headers=forbid)


def race_forbid_overwrite(bucket, key: str, contenders: int) -> list[str]:
    """``contenders`` threads PUT ``key`` with forbid-overwrite at once; the writers that won."""
    barrier = threading.Barrier(contenders)

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            bucket.put_object(key, f"writer-{i}".encode(), headers={"x-oss-forbid-overwrite": "true"})
            return f"writer-{i}"
        except oss2.exceptions.ServerError as err:
            assert err.code == "FileAlreadyExists", err
            return ""

    with ThreadPoolExecutor(contenders) as pool:
        return [w for w in pool.map(attempt, range(contenders)) if w]


def test_forbid_overwrite_is_atomic_under_concurrency(bucket):
    """Racing forbid-overwrite PUTs of one key: exactly one wins, the others get FileAlreadyExists.

    Without the server's per-key lock, about a third of the rounds have two winners once the GIL
    switches threads often enough (measured), so 20 rounds catch a non-atomic check-then-write.
    """
    contenders, rounds = 8, 20
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for round_no in range(rounds):
            key = f"race/{round_no}"
            winners = race_forbid_overwrite(bucket, key, contenders)
            assert len(winners) == 1, f"round {round_no}: {winners}"
            assert bucket.get_object(key).read() == winners[0].encode()
    finally:
        sys.setswitchinterval(switch_interval)


# ---------------------------------------------------------------------------- multipart


def test_multipart_upload_and_list_parts(bucket):
    part1, part2 = b"a" * (100 * 1024), b"tail"
    upload_id = bucket.init_multipart_upload("big.mp4").upload_id
    etag1 = bucket.upload_part("big.mp4", upload_id, 1, part1).etag
    etag2 = bucket.upload_part("big.mp4", upload_id, 2, part2).etag
    assert etag1 == upper_md5(part1)

    parts = bucket.list_parts("big.mp4", upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in parts] == [(1, etag1, len(part1)), (2, etag2, 4)]

    done = bucket.complete_multipart_upload(
        "big.mp4", upload_id, [oss2.models.PartInfo(1, etag1), oss2.models.PartInfo(2, etag2)])
    assert re.fullmatch(r"[0-9A-F]{32}-2", done.etag)
    assert bucket.get_object("big.mp4").read() == part1 + part2
    assert bucket.head_object("big.mp4").object_type == "Multipart"


def test_multipart_enforces_oss_minimum_part_size(bucket):
    upload_id = bucket.init_multipart_upload("small.bin").upload_id
    parts = [oss2.models.PartInfo(n, bucket.upload_part("small.bin", upload_id, n, b"x" * 1000).etag)
             for n in (1, 2)]
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload("small.bin", upload_id, parts)
    assert err.value.code == "EntityTooSmall"


def test_resumable_upload_in_parts(bucket, tmp_path):
    data = bytes(range(256)) * 1300  # 332,800 bytes: 4 parts of 100 KB
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    oss2.resumable_upload(bucket, "up/video.mp4", str(path), multipart_threshold=100 * 1024,
                          part_size=100 * 1024, num_threads=2,
                          store=oss2.ResumableStore(root=str(tmp_path)))
    assert bucket.get_object("up/video.mp4").read() == data
    assert bucket.head_object("up/video.mp4").object_type == "Multipart"



def test_an_abort_during_a_complete_waits_for_it(bucket, monkeypatch):
    """On OSS one of the two wins; an abort that disposed of the parts while the Complete joined
    them made the Complete fail with InternalError."""
    part = b"p" * (100 * 1024)
    upload_id = bucket.init_multipart_upload("raced.mp4").upload_id
    etag = bucket.upload_part("raced.mp4", upload_id, 1, part).etag
    aborts: list[BaseException | None] = []

    def abort() -> None:
        try:
            bucket.abort_multipart_upload("raced.mp4", upload_id)
            aborts.append(None)
        except oss2.exceptions.OssError as err:
            aborts.append(err)

    moto_join = storage.ObjectFiles.join

    def join_while_aborting(files, parts):
        aborting = threading.Thread(target=abort)
        aborting.start()
        aborting.join(timeout=0.5)  # the abort is done by now, unless it waits for the Complete
        return moto_join(files, parts)

    monkeypatch.setattr(storage.ObjectFiles, "join", join_while_aborting)
    bucket.complete_multipart_upload("raced.mp4", upload_id, [oss2.models.PartInfo(1, etag)])
    assert bucket.get_object("raced.mp4").read() == part
    wait_until(lambda: aborts, "the abort's answer", timeout=10)
    assert isinstance(aborts[0], oss2.exceptions.NoSuchUpload)
