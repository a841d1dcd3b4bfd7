"""LocalOss notifications for every way an object is created or removed: copies and deletes.

Removal records name the key with eTag "" and size 0, and deltaSize minus the bytes freed (the
conservative reading documented in localcloud.oss.notifications).
"""
from __future__ import annotations

import time
import uuid

import oss2

from tests.localcloud.oss.support import AK, SK, upper_md5


def _objects(events, bucket: oss2.Bucket, last_key: str, count: int = 1) -> list[tuple[str, dict]]:
    """(eventName, oss.object) of the bucket's records, once ``last_key`` has its ``count``-th one."""
    return [(r["eventName"], r["oss"]["object"]) for r in events.wait_for(bucket.bucket_name, last_key, count=count)]


def _removal(key: str, freed: int) -> dict:
    return {"deltaSize": -freed, "eTag": "", "key": key, "size": 0}


def test_copy_within_and_across_buckets_notifies_the_destination(server, bucket, events):
    other = oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, f"test-{uuid.uuid4().hex[:12]}")
    server.create_bucket(other.bucket_name)
    source = bucket.put_object("src.mp4", b"source bytes")
    within = bucket.copy_object(bucket.bucket_name, "src.mp4", "in/copy.mp4")
    across = other.copy_object(bucket.bucket_name, "src.mp4", "in/copy.mp4")

    assert within.etag == across.etag == source.etag == upper_md5(b"source bytes")  # a copy keeps the ETag
    created = {"deltaSize": 12, "eTag": source.etag, "key": "in/copy.mp4", "size": 12}
    assert _objects(events, bucket, "in/copy.mp4")[-1] == ("ObjectCreated:CopyObject", created)
    assert _objects(events, other, "in/copy.mp4") == [("ObjectCreated:CopyObject", created)]
    record = events.for_bucket(other.bucket_name)[0]
    assert record["responseElements"]["requestId"] == across.request_id


def test_copy_over_an_existing_key_and_onto_itself(bucket, events):
    bucket.put_object("a", b"short")
    bucket.put_object("b", b"a longer object")
    before = bucket.head_object("b").last_modified
    time.sleep(1.1)  # Last-Modified has whole seconds: let the copy land in a later one
    bucket.copy_object(bucket.bucket_name, "a", "b")
    assert bucket.get_object("b").read() == b"short"
    assert bucket.head_object("b").last_modified > before  # the copy time, not the source's

    bucket.copy_object(bucket.bucket_name, "a", "a",
                       headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-stage": "checked"})
    assert bucket.head_object("a").headers["x-oss-meta-stage"] == "checked"

    etag = upper_md5(b"short")
    assert _objects(events, bucket, "a", count=2)[2:] == [
        ("ObjectCreated:CopyObject", {"deltaSize": 5 - 15, "eTag": etag, "key": "b", "size": 5}),
        ("ObjectCreated:CopyObject", {"deltaSize": 0, "eTag": etag, "key": "a", "size": 5}),
    ]


def test_delete_notifies_the_removal_even_of_a_missing_key(bucket, events):
    bucket.put_object("gone.mp4", b"12345")
    assert bucket.delete_object("gone.mp4").status == 204
    assert bucket.delete_object("never-there.mp4").status == 204  # as OSS: success, and notified
    assert not bucket.object_exists("gone.mp4")
    assert _objects(events, bucket, "never-there.mp4")[1:] == [
        ("ObjectRemoved:DeleteObject", _removal("gone.mp4", 5)),
        ("ObjectRemoved:DeleteObject", _removal("never-there.mp4", 0)),
    ]


def test_batch_delete_notifies_one_record_per_key(bucket, events):
    bucket.put_object("x/1", b"1")
    bucket.put_object("x/2 ü+", b"22")
    result = bucket.batch_delete_objects(["x/1", "x/2 ü+", "x/missing"])
    assert sorted(result.deleted_keys) == ["x/1", "x/2 ü+", "x/missing"]
    assert [name for name, _ in bucket.list_objects_v2(prefix="x/").object_list] == []
    removed = _objects(events, bucket, "x/missing")[2:]
    assert removed == [
        ("ObjectRemoved:DeleteObjects", _removal("x/1", 1)),
        ("ObjectRemoved:DeleteObjects", _removal("x/2 ü+", 2)),
        ("ObjectRemoved:DeleteObjects", _removal("x/missing", 0)),
    ]
    request_ids = {r["responseElements"]["requestId"] for r in events.for_bucket(bucket.bucket_name)[2:]}
    assert request_ids == {result.request_id}


def test_created_events_still_one_per_write_and_none_per_part(bucket, events):
    upload_id = bucket.init_multipart_upload("mp.mp4").upload_id
    parts = [oss2.models.PartInfo(n, bucket.upload_part("mp.mp4", upload_id, n, b"p" * (100 * 1024)).etag)
             for n in (1, 2)]
    bucket.complete_multipart_upload("mp.mp4", upload_id, parts)
    bucket.put_object("put.mp4", b"")
    bucket.delete_object("mp.mp4")
    seen = [(name, obj["key"]) for name, obj in _objects(events, bucket, "mp.mp4", count=2)]
    assert seen == [
        ("ObjectCreated:CompleteMultipartUpload", "mp.mp4"),
        ("ObjectCreated:PutObject", "put.mp4"),
        ("ObjectRemoved:DeleteObject", "mp.mp4"),
    ]
