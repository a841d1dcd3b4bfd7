"""Listings in O(log n + page) instead of moto's O(all keys in the bucket) per call.

moto 5.2.5's ``S3Backend.list_objects`` walks every key of the bucket and sorts the matches, and
``list_objects_v2`` sorts them again and scans for the continuation token: a LIST returning one key
from a bucket of 300,000 took 0.15 s, so anything that lists a large bucket measured the emulator.
:func:`install` (called by ``LocalOss``) gives every bucket created from then on an
:class:`IndexedKeyStore`, moto's key store plus a sorted index of its key names kept in step with
every write moto makes, and serves both listings of those buckets from the index with the same
results, order, truncation and continuation tokens (moto's, from its ``_truncate_result``) as moto.
Whatever the index does not serve (other buckets, a negative max-keys) moto serves; an unknown
continuation token is OSS's 400 InvalidArgument.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import islice
from typing import Any

from moto.s3.exceptions import InvalidContinuationToken
from moto.s3.models import FakeBucket, FakeDeleteMarker, FakeKey, S3Backend
from moto.s3.utils import _VersionedKeyStore

from localcloud.oss.sorted_names import SortedNames

#: A listing entry as moto's backend returns it: an object, or a common prefix.
Entry = FakeKey | str

_moto_create_bucket = S3Backend.create_bucket
_moto_list_objects = S3Backend.list_objects
_moto_list_objects_v2 = S3Backend.list_objects_v2


class IndexedKeyStore(_VersionedKeyStore):
    """moto's key store (name -> list of versions, the last one current) with ``names``, the sorted
    names it holds. moto mutates its key store only through the methods overridden here."""

    def __init__(self, existing: _VersionedKeyStore) -> None:
        super().__init__()
        self.names = SortedNames()
        # werkzeug serves requests on threads: an index update and the dict's must not interleave.
        self.lock = threading.RLock()
        for name, versions in dict.items(existing):
            self.setlist(name, versions)

    def __setitem__(self, key: str, value: Any) -> None:
        with self.lock:
            super().__setitem__(key, value)
            self.names.add(key)

    def setlist(self, key: str, list_: Any) -> None:
        with self.lock:
            super().setlist(key, list_)
            self.names.add(key)

    def pop(self, key: str) -> None:  # type: ignore[override]
        with self.lock:
            try:
                super().pop(key)
            finally:
                self._resync(key)

    def __delitem__(self, key: str) -> None:
        with self.lock:
            try:
                super().__delitem__(key)
            finally:
                self._resync(key)

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.names = SortedNames()

    def _resync(self, key: str) -> None:
        if dict.__contains__(self, key):
            self.names.add(key)
        else:
            self.names.discard(key)


def install() -> None:
    """From now on, new buckets keep an index and their listings are served from it. Idempotent."""
    S3Backend.create_bucket = _create_bucket  # type: ignore[method-assign]
    S3Backend.list_objects = _list_objects  # type: ignore[method-assign]
    S3Backend.list_objects_v2 = _list_objects_v2  # type: ignore[method-assign]


def _create_bucket(self: S3Backend, *args: Any, **kwargs: Any) -> FakeBucket:
    bucket = _moto_create_bucket(self, *args, **kwargs)
    if not isinstance(bucket.keys, IndexedKeyStore):
        bucket.keys = IndexedKeyStore(bucket.keys)
    return bucket


def _list_objects(self: S3Backend, bucket: FakeBucket, prefix: str | None, delimiter: str | None,
                  marker: str | None, max_keys: int | None) -> Any:
    """moto's ListObjects (v1): this page of objects after the marker, and every common prefix."""
    store = bucket.keys
    if not isinstance(store, IndexedKeyStore) or (max_keys is not None and max_keys < 0):
        return _moto_list_objects(self, bucket, prefix, delimiter, marker, max_keys)
    after = (self._pagination_tokens.get(marker) or marker) if marker else None
    prefix, delimiter = prefix or "", delimiter or ""
    with store.lock:
        folders = [e for e in _entries(store, prefix, delimiter, None) if isinstance(e, str)] if delimiter else []
        objects = (e for e in _entries(store, prefix, delimiter, after) if isinstance(e, FakeKey))
        found = list(objects if max_keys is None else islice(objects, max_keys + 1))
    if max_keys is None:
        return found, folders, False, None
    page, truncated, next_marker = self._truncate_result(found, max_keys)
    return page, folders, truncated, next_marker


def _list_objects_v2(self: S3Backend, bucket: FakeBucket, prefix: str | None, delimiter: str | None,
                     continuation_token: str | None, start_after: str | None, max_keys: int) -> Any:
    """moto's ListObjectsV2: objects and common prefixes paged together, after the token or start-after."""
    if continuation_token and continuation_token not in self._pagination_tokens:
        raise InvalidContinuationToken()  # moto's own listing fails with a TypeError (a 500)
    store = bucket.keys
    if not isinstance(store, IndexedKeyStore) or max_keys < 0:
        return _moto_list_objects_v2(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
    after = self._pagination_tokens[continuation_token] if continuation_token else start_after or None
    with store.lock:
        found = list(islice(_entries(store, prefix or "", delimiter or "", after), max_keys + 1))
    return self._truncate_result(found, max_keys)


def _entries(store: IndexedKeyStore, prefix: str, delimiter: str, after: str | None) -> Iterator[Entry]:
    """The listing in name order, as moto builds it: current objects (not delete markers) and common
    prefixes, each named after ``after``. Like moto, a common prefix counts delete markers under it.
    One seek per entry: a common prefix is stepped over whole, however many keys it holds."""
    bound, inclusive = (after, False) if after is not None and after >= prefix else (prefix, True)
    while (name := store.names.first_from(bound, inclusive=inclusive)) is not None and name.startswith(prefix):
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            versions = dict.get(store, name)
            if versions and not isinstance(versions[-1], FakeDeleteMarker):
                yield versions[-1]
            bound, inclusive = name, False
            continue
        folder = name[:cut + len(delimiter)]
        if after is None or folder > after:
            yield folder
        # The first string after every string that starts with ``folder``.
        bound, inclusive = folder[:-1] + chr(ord(folder[-1]) + 1), True
