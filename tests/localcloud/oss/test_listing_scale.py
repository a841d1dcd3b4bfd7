"""LocalOss listings served from its sorted key index: the same pages as moto's own listing, through oss2,
and a cost that follows the page, not the bucket (counted in index seeks, not timed)."""
from __future__ import annotations

import contextlib
import itertools
import random

import oss2
import pytest
from moto.s3.models import S3Backend

from localcloud.oss import listing
from localcloud.oss.compat import moto_backend
from localcloud.oss.sorted_names import SortedNames

AWKWARD_KEYS = ["a", "a/", "a/b", "a/b/c", "a//x", "a0", "ab", "ab/c", "b c/d", "b+c", "b%2Fc", "é", "é/ü",
                "日本/語/x", "日本語", "z/", "zz", "~"]
PREFIXES = ["", "a", "a/", "a/b", "ab", "b", "é", "日本", "nothing"]


def _live_keys(bucket: oss2.Bucket) -> list[str]:
    """Write, overwrite and delete awkward keys; return the keys left."""
    for key in AWKWARD_KEYS + ["gone", "a/gone", "日本/gone"]:
        bucket.put_object(key, b"first")
    for key in ["a/b", "é", "zz"]:
        bucket.put_object(key, b"overwritten")
    bucket.delete_object("gone")
    bucket.batch_delete_objects(["a/gone", "日本/gone"])
    return AWKWARD_KEYS


def _expected(keys: list[str], prefix: str, delimiter: str, after: str) -> list[str]:
    """Brute force: every key under the prefix, folded into common prefixes at the delimiter, sorted."""
    entries = set()
    for key in keys:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        entries.add(prefix + rest.split(delimiter)[0] + delimiter if delimiter and delimiter in rest else key)
    return sorted(e for e in entries if e > after)


def _pages_v2(bucket: oss2.Bucket, prefix: str, delimiter: str, max_keys: int, start_after: str) -> list[list[str]]:
    pages, token = [], ""
    while True:
        page = bucket.list_objects_v2(prefix=prefix, delimiter=delimiter, continuation_token=token,
                                      start_after=start_after, max_keys=max_keys)
        pages.append([o.key for o in page.object_list] + page.prefix_list)
        assert len(pages[-1]) <= max_keys and len(pages) <= len(AWKWARD_KEYS), "paging does not end"
        if not page.is_truncated:
            return pages
        token = page.next_continuation_token


def _pages_v1(bucket: oss2.Bucket, prefix: str, delimiter: str, max_keys: int, marker: str) -> list[list[str]]:
    pages = []
    while True:
        page = bucket.list_objects(prefix=prefix, delimiter=delimiter, marker=marker, max_keys=max_keys)
        pages.append([o.key for o in page.object_list] + page.prefix_list)
        assert len(pages) <= len(AWKWARD_KEYS), "paging does not end"
        if not page.is_truncated:
            return pages
        marker = page.next_marker


@pytest.fixture
def moto_listing(monkeypatch):
    """Within the block, the backend lists with moto's own code (which scans the bucket), not the index."""
    @contextlib.contextmanager
    def unindexed():
        with monkeypatch.context() as patch:
            patch.setattr(S3Backend, "list_objects", listing._moto_list_objects)
            patch.setattr(S3Backend, "list_objects_v2", listing._moto_list_objects_v2)
            yield
    return unindexed


def _backend_pages(bucket_name: str, prefix: str, delimiter: str, max_keys: int, after: str) -> list[tuple]:
    """The backend's ListObjectsV2 pages (names, truncated, token), and its v1 pages (objects, prefixes...)."""
    backend = moto_backend()
    bucket = backend.get_bucket(bucket_name)
    pages, token = [], None
    while True:
        entries, truncated, token = backend.list_objects_v2(
            bucket, prefix or None, delimiter or None, token, after or None, max_keys)
        pages.append(([e if isinstance(e, str) else e.name for e in entries], truncated, token))
        if not truncated:
            break
    marker = after or None
    while True:
        objects, folders, truncated, marker = backend.list_objects(
            bucket, prefix or None, delimiter or None, marker, max_keys)
        pages.append(([o.name for o in objects], folders, truncated, marker))
        if not truncated:
            return pages


@pytest.mark.parametrize("delimiter", ["", "/"])
def test_listings_match_brute_force_and_moto_page_by_page(bucket, delimiter, moto_listing):
    keys = _live_keys(bucket)
    for prefix, max_keys in itertools.product(PREFIXES, (1, 2, 3)):
        for after in ["", prefix, prefix + "/", "a/b", "é"]:
            case = (prefix, delimiter, max_keys, after)
            expected = _expected(keys, prefix, delimiter, after)
            assert sorted(sum(_pages_v2(bucket, prefix, delimiter, max_keys, after), [])) == expected, case
            assert sorted(sum(_pages_v1(bucket, prefix, delimiter, max_keys, after), [])) == expected, case
            indexed = _backend_pages(bucket.bucket_name, *case)
            with moto_listing():
                assert indexed == _backend_pages(bucket.bucket_name, *case), case


def test_unpaged_listing_is_sorted_objects_then_prefixes_like_oss(bucket):
    keys = _live_keys(bucket)
    page = bucket.list_objects_v2(delimiter="/", max_keys=1000)
    assert [o.key for o in page.object_list] == [k for k in _expected(keys, "", "/", "") if not k.endswith("/")]
    assert page.prefix_list == ["a/", "ab/", "b c/", "z/", "é/", "日本/"]
    assert not page.is_truncated


def test_versioned_bucket_lists_no_deleted_keys_and_matches_moto(bucket, moto_listing):
    bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    for key in ["v/1", "v/2", "v/3", "w"]:
        bucket.put_object(key, b"x")
        bucket.put_object(key, b"again")
    bucket.delete_object("v/2")
    bucket.delete_object("w")
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=1)] == ["v/1", "v/3"]
    for delimiter, max_keys in itertools.product(["", "/"], (1, 2, 3)):
        indexed = _backend_pages(bucket.bucket_name, "", delimiter, max_keys, "")
        with moto_listing():
            assert indexed == _backend_pages(bucket.bucket_name, "", delimiter, max_keys, "")


@pytest.fixture
def seeks(monkeypatch):
    """How many times the listing seeks in the index (one per entry it looks at)."""
    count = [0]
    seek = SortedNames.first_from

    def counted(self, bound, *, inclusive):
        count[0] += 1
        return seek(self, bound, inclusive=inclusive)

    monkeypatch.setattr(SortedNames, "first_from", counted)
    return count


def test_index_stays_in_step_and_listing_cost_follows_the_page(server, bucket, seeks):
    names = [f"d{n % 100:02d}/{n:05d}" for n in range(10_000)]
    server.put_objects(bucket.bucket_name, {name: b"x" for name in names})
    backend, rng = moto_backend(), random.Random(11)
    deleted = set(rng.sample(names, 3_000))
    for name in deleted:
        backend.delete_object(bucket.bucket_name, name)
    rewritten = rng.sample(names, 2_000)  # overwrites, and some deleted keys written again
    server.put_objects(bucket.bucket_name, {name: b"y" for name in rewritten})
    store = backend.get_bucket(bucket.bucket_name).keys
    assert isinstance(store, listing.IndexedKeyStore)
    assert list(store.names) == sorted(dict.keys(store)) == sorted(set(names) - deleted | set(rewritten))

    survivor = min(set(names) - deleted - set(rewritten))
    seeks[0] = 0
    assert [o.key for o in bucket.list_objects_v2(prefix=survivor).object_list] == [survivor]
    assert seeks[0] <= 2  # the key, then the first name past the prefix
    seeks[0] = 0
    assert len(bucket.list_objects_v2(delimiter="/", max_keys=1000).prefix_list) == 100
    assert seeks[0] <= 101  # one per common prefix, however many keys each holds
    seeks[0] = 0
    assert len(bucket.list_objects_v2(prefix="d07/", max_keys=5).object_list) == 5
    assert seeks[0] <= 6
