"""The object-store adapter: the :class:`.ports.ObjectStore` operations, through ``oss2``.

``oss2`` is imported on first use (it costs ~0.15 s of cold start). Bucket handles are
cached per bucket name; an ``oss2.Bucket`` is safe to share between threads. Every call
is retried on 5xx and connection errors within the invocation's deadline.
"""
from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from .credentials import Credentials
from .domain import ObjectInfo
from .ports import ObjectStoreError
from .retry import Deadline, RetryPolicy

T = TypeVar("T")
DELETE_BATCH = 1000  # DeleteMultipleObjects' limit
_META = "x-oss-meta-"  # user metadata headers, as HEAD returns them


class OssStore:
    """Adapter over ``oss2``. ``deadline`` bounds the retries of every call; :meth:`with_deadline`
    gives the next invocation (or operation) its own, sharing the bucket handles."""

    def __init__(self, *, endpoint: str, credentials: Credentials, deadline: Deadline,
                 connect_timeout_s: float = 10, retry: RetryPolicy | None = None):
        self._endpoint = endpoint
        self._credentials = credentials
        self._connect_timeout = connect_timeout_s
        self._buckets: dict[str, Any] = {}
        self._buckets_lock = threading.Lock()
        self.retry = retry or RetryPolicy()
        self.deadline = deadline

    def with_deadline(self, deadline: Deadline) -> OssStore:
        """This adapter, sharing its bucket handles, with retries bounded by ``deadline``."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

    def _bucket(self, name: str) -> Any:
        with self._buckets_lock:
            if name not in self._buckets:
                import oss2

                c = self._credentials
                auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token) if c.security_token \
                    else oss2.Auth(c.access_key_id, c.access_key_secret)
                self._buckets[name] = oss2.Bucket(auth, self._endpoint, name, connect_timeout=self._connect_timeout)
            return self._buckets[name]

    def _run(self, bucket: str, operation: Callable[[Any], T]) -> T:
        """Run ``operation(oss2.Bucket)``, translating oss2 errors and retrying the transient ones."""
        import oss2

        b = self._bucket(bucket)

        def once() -> T:
            try:
                return operation(b)
            except oss2.exceptions.OssError as exc:
                raise ObjectStoreError(str(getattr(exc, "code", "") or type(exc).__name__),
                                       str(getattr(exc, "message", "") or exc), status=exc.status,
                                       request_id=getattr(exc, "request_id", None)) from None

        return self.retry.call(once, deadline=self.deadline,
                               retryable=lambda e: isinstance(e, ObjectStoreError) and e.retryable)

    def sign_get_url(self, bucket: str, key: str, expires_s: int) -> str:
        """A GET URL of ``key`` signed with this adapter's credentials, valid ``expires_s`` (no request)."""
        return str(self._bucket(bucket).sign_url("GET", key, expires_s, slash_safe=True))

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        self._run(bucket, lambda b: b.put_object(key, data, headers={"Content-Type": content_type, **(headers or {})}))

    def put_json(self, bucket: str, key: str, doc: Any) -> None:
        """Write a JSON document in one PUT: a reader sees the old or the new document, never half."""
        data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
        self.put_bytes(bucket, key, data, content_type="application/json; charset=utf-8")

    def create_json(self, bucket: str, key: str, doc: Any) -> bool:
        """Create ``key`` only if it does not exist (``x-oss-forbid-overwrite``); False when it does.

        Atomic on OSS: of concurrent creators exactly one succeeds.
        """
        data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        try:
            self.put_bytes(bucket, key, data, content_type="application/json; charset=utf-8",
                           headers={"x-oss-forbid-overwrite": "true"})
        except ObjectStoreError as exc:
            if exc.status == 409 and exc.code == "FileAlreadyExists":
                return False
            raise
        return True

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        try:
            return self._run(bucket, lambda b: b.get_object(key).read())
        except ObjectStoreError as exc:
            if exc.status == 404 and exc.code == "NoSuchKey":
                return None
            raise

    def get_head_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        """The first ``max_bytes`` of an object (one ranged GET), or None when it does not exist."""
        try:
            return self._run(bucket, lambda b: b.get_object(key, byte_range=(0, max_bytes - 1)).read())
        except ObjectStoreError as exc:
            if exc.status == 404 and exc.code == "NoSuchKey":
                return None
            raise

    def get_json(self, bucket: str, key: str) -> Any | None:
        data = self.get_bytes(bucket, key)
        return None if data is None else json.loads(data)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            meta = self._run(bucket, lambda b: b.head_object(key))
        except ObjectStoreError as exc:
            if exc.status == 404:
                return None
            raise
        metadata = {name.lower()[len(_META):]: value for name, value in (meta.headers or {}).items()
                    if name.lower().startswith(_META)}
        return ObjectInfo(key, int(meta.content_length or 0), (meta.etag or "").strip('"').upper(),
                          float(meta.last_modified or 0), metadata)

    def delete_many(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete ``keys`` with DeleteMultipleObjects, 1000 a request (missing keys are no error)."""
        for start in range(0, len(keys), DELETE_BATCH):
            self._run(bucket, _delete_batch(list(keys[start:start + DELETE_BATCH])))

    def list(self, bucket: str, prefix: str, *, page_size: int = 1000, start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (after the key ``start_after``), following continuation tokens."""
        token = ""
        while True:
            result = self._run(bucket, _list_page(prefix, token, page_size, "" if token else start_after))
            for obj in result.object_list:
                yield ObjectInfo(obj.key, int(obj.size), (obj.etag or "").strip('"').upper(), float(obj.last_modified))
            if not result.is_truncated:
                return
            token = result.next_continuation_token


    def list_folders(self, bucket: str, prefix: str) -> Iterator[str]:
        """The folders directly under ``prefix`` (ListObjectsV2 with delimiter ``/``: common prefixes only)."""
        token = ""
        while True:
            result = self._run(bucket, _folders_page(prefix, token))
            yield from result.prefix_list
            if not result.is_truncated:
                return
            token = result.next_continuation_token


def _folders_page(prefix: str, token: str) -> Callable[[Any], Any]:
    return lambda bucket: bucket.list_objects_v2(prefix=prefix, delimiter="/", continuation_token=token,
                                                 max_keys=1000)


def _delete_batch(keys: list[str]) -> Callable[[Any], Any]:
    """One DeleteMultipleObjects request, as an operation on an ``oss2.Bucket``."""
    return lambda bucket: bucket.batch_delete_objects(keys)


def _list_page(prefix: str, token: str, page_size: int, start_after: str) -> Callable[[Any], Any]:
    """One ListObjectsV2 page, as an operation on an ``oss2.Bucket``."""
    return lambda bucket: bucket.list_objects_v2(prefix=prefix, continuation_token=token, start_after=start_after,
                                                 max_keys=page_size)
