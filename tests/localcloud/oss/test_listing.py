"""LocalOss listings through oss2: V1 markers and common prefixes, V2 continuation, and the iterators."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import oss2

from tests.localcloud.oss.support import ACCOUNT, upper_md5


def test_list_v1_pages_keys_and_common_prefixes_together(bucket):
    for key in ["a/1", "a/2", "b/1", "c", "d/x/y", "e", "f"]:
        bucket.put_object(key, b"x")
    seen, marker, pages = [], "", 0
    while True:
        page = bucket.list_objects(delimiter="/", marker=marker, max_keys=2)
        seen += [o.key for o in page.object_list] + page.prefix_list
        pages += 1
        if not page.is_truncated:
            break
        assert page.next_marker == max([o.key for o in page.object_list] + page.prefix_list)
        marker = page.next_marker
    assert sorted(seen) == ["a/", "b/", "c", "d/", "e", "f"]  # each exactly once
    assert pages == 3

    under_a = bucket.list_objects(prefix="a/")
    assert [o.key for o in under_a.object_list] == ["a/1", "a/2"]
    assert under_a.object_list[0].type == "Normal"
    assert under_a.object_list[0].etag == upper_md5(b"x")


def test_list_v2_continuation_start_after_and_owner(bucket):
    keys = [f"k{i:02d}" for i in range(7)]
    for key in keys:
        bucket.put_object(key, b"x")
    seen, token, pages = [], "", 0
    while True:
        page = bucket.list_objects_v2(continuation_token=token, max_keys=3)
        seen += [o.key for o in page.object_list]
        pages += 1
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert (seen, pages) == (keys, 3)

    assert [o.key for o in bucket.list_objects_v2(start_after="k04").object_list] == ["k05", "k06"]
    assert bucket.list_objects_v2(max_keys=1).object_list[0].owner is None
    owner = bucket.list_objects_v2(max_keys=1, fetch_owner=True).object_list[0].owner
    assert owner.id == ACCOUNT


def test_iterators_over_more_than_1000_objects(bucket):
    keys = sorted(f"many/{i:04d}" for i in range(1001))  # one more than the largest page
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: bucket.put_object(k, b""), keys))
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="many/", max_keys=1000)] == keys
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="many/", max_keys=1000)] == keys
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="many/00", max_keys=7)] == keys[:100]
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="many/01", max_keys=9)] == keys[100:200]

