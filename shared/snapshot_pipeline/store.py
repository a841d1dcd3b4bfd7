"""The object-store port: the few OSS operations the pipeline needs, through ``oss2``.

``oss2`` is imported on first use (it costs ~0.15 s of cold start). Bucket handles are
cached per bucket name; an ``oss2.Bucket`` is safe to share between threads. Every call
is retried on 5xx and connection errors within the invocation's deadline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from .credentials import Credentials
from .retry import Deadline, RetryPolicy

T = TypeVar("T")


class ObjectStoreError(RuntimeError):
    def __init__(self, code: str, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.status = status
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        # oss2 reports connection failures with a negative status (RequestError: -2).
        return self.status is None or self.status < 0 or self.status >= 500 or self.code.startswith("Throttling")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: float  # epoch seconds


class ObjectStore:
    def __init__(self, *, endpoint: str, credentials: Credentials, connect_timeout_s: float = 10,
                 retry: RetryPolicy | None = None, deadline: Deadline | None = None):
        self._endpoint = endpoint
        self._credentials = credentials
        self._connect_timeout = connect_timeout_s
        self._buckets: dict[str, Any] = {}
        self.retry = retry or RetryPolicy()
        self.deadline = deadline or Deadline.after(300)

    def _bucket(self, name: str):
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
        return ObjectInfo(key, int(meta.content_length or 0), (meta.etag or "").strip('"').upper(),
                          float(meta.last_modified or 0))

    def list(self, bucket: str, prefix: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, following continuation tokens."""
        token = ""
        while True:
            result = self._run(bucket, lambda b: b.list_objects_v2(prefix=prefix, continuation_token=token,
                                                                    max_keys=page_size))
            for obj in result.object_list:
                yield ObjectInfo(obj.key, int(obj.size), (obj.etag or "").strip('"').upper(), float(obj.last_modified))
            if not result.is_truncated:
                return
            token = result.next_continuation_token
