"""LocalOss objects against the unmodified oss2 SDK: put, get, head, ranges, odd keys, copy and delete."""
from __future__ import annotations

import re
import uuid

import oss2
import pytest

from tests.localcloud.oss.support import AK, SK, upper_md5

SPECIAL_KEYS = ["dir/a b+c.mp4", "ü/视频 1.mov", "100%/x&y=z?.txt", "trailing/"]


def test_put_get_head_roundtrip_with_user_metadata(bucket):
    data = b"frame data " * 100
    put = bucket.put_object("v/clip.mp4", data, headers={"x-oss-meta-source": "camera-7",
                                                         "Content-Type": "video/mp4"})
    assert put.etag == upper_md5(data)  # OSS ETags are upper-case hex; oss2 strips the quotes
    assert re.fullmatch(r"[0-9A-F]{24}", put.request_id)

    got = bucket.get_object("v/clip.mp4")
    assert got.read() == data
    assert got.headers["x-oss-meta-source"] == "camera-7"
    assert got.object_type == "Normal"
    assert got.content_type == "video/mp4"

    head = bucket.head_object("v/clip.mp4")
    assert head.content_length == len(data)
    assert head.etag == put.etag
    assert head.headers["x-oss-meta-source"] == "camera-7"
    assert not any(name.lower().startswith("x-amz") for name in head.headers)

    meta = bucket.get_object_meta("v/clip.mp4")
    assert (meta.content_length, meta.etag) == (len(data), put.etag)


def test_range_reads(bucket):
    data = bytes(range(256)) * 4
    bucket.put_object("r.bin", data)
    assert bucket.get_object("r.bin", byte_range=(10, 19)).read() == data[10:20]
    tail = bucket.get_object("r.bin", headers={"Range": "bytes=1000-"})
    assert tail.status == 206
    assert tail.read() == data[1000:]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_keys_roundtrip_and_list(bucket, key):
    bucket.put_object(key, key.encode())
    assert bucket.get_object(key).read() == key.encode()
    assert [o.key for o in bucket.list_objects().object_list] == [key]
    assert [o.key for o in bucket.list_objects_v2().object_list] == [key]


def test_exists_and_not_found_errors(server, bucket):
    bucket.put_object("here", b"1")
    assert bucket.object_exists("here")
    assert not bucket.object_exists("missing")

    with pytest.raises(oss2.exceptions.NoSuchKey) as err:
        bucket.get_object("missing")
    assert err.value.status == 404
    assert err.value.request_id and err.value.details["RequestId"] == err.value.request_id

    # HEAD has no body: the error code travels base64-encoded in x-oss-err, as on OSS.
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("missing")

    nobucket = oss2.Bucket(oss2.Auth(AK, SK), server.endpoint, f"nope-{uuid.uuid4().hex[:8]}")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        nobucket.get_object("x")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        nobucket.object_exists("x")


def test_copy_keeps_metadata(bucket):
    src = "src/ü 1.mp4"
    bucket.put_object(src, b"payload", headers={"x-oss-meta-origin": "upload"})
    copied = bucket.copy_object(bucket.bucket_name, src, "dst/copy.mp4")
    assert copied.etag == upper_md5(b"payload")
    assert bucket.get_object("dst/copy.mp4").read() == b"payload"
    assert bucket.head_object("dst/copy.mp4").headers["x-oss-meta-origin"] == "upload"


def test_delete_and_batch_delete(bucket):
    keys = ["a", "b/c d", "ü%&"]
    for key in keys:
        bucket.put_object(key, b"x")
    bucket.put_object("single", b"x")
    bucket.delete_object("single")
    assert not bucket.object_exists("single")

    result = bucket.batch_delete_objects(keys)
    assert sorted(result.deleted_keys) == sorted(keys)
    assert bucket.list_objects_v2().object_list == []

