"""The object-store port: the few OSS operations the pipeline needs, through ``oss2``.

``oss2`` is imported on first use (it costs ~0.15 s of cold start). Bucket handles are
cached per bucket name; an ``oss2.Bucket`` is safe to share between threads.
"""
from __future__ import annotations

import json
from typing import Any

from .credentials import Credentials


class ObjectStoreError(RuntimeError):
    def __init__(self, code: str, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.status = status
        self.request_id = request_id


class ObjectStore:
    def __init__(self, *, endpoint: str, credentials: Credentials, connect_timeout_s: float = 10):
        self._endpoint = endpoint
        self._credentials = credentials
        self._connect_timeout = connect_timeout_s
        self._buckets: dict[str, Any] = {}
        self._oss2 = None

    def _bucket(self, name: str):
        if name not in self._buckets:
            import oss2

            self._oss2 = oss2
            c = self._credentials
            auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token) if c.security_token \
                else oss2.Auth(c.access_key_id, c.access_key_secret)
            self._buckets[name] = oss2.Bucket(auth, self._endpoint, name, connect_timeout=self._connect_timeout)
        return self._buckets[name]

    def _error(self, exc: Exception) -> ObjectStoreError:
        status = getattr(exc, "status", None)
        code = getattr(exc, "code", None) or type(exc).__name__
        return ObjectStoreError(str(code), str(getattr(exc, "message", "") or exc), status=status,
                                request_id=getattr(exc, "request_id", None))

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        b = self._bucket(bucket)
        try:
            b.put_object(key, data, headers={"Content-Type": content_type, **(headers or {})})
        except self._oss2.exceptions.OssError as exc:
            raise self._error(exc) from None

    def put_json(self, bucket: str, key: str, doc: Any) -> None:
        """Write a JSON document in one PUT: a reader sees the old or the new document, never half."""
        data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
        self.put_bytes(bucket, key, data, content_type="application/json; charset=utf-8")

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        b = self._bucket(bucket)
        try:
            return b.get_object(key).read()
        except self._oss2.exceptions.NoSuchKey:
            return None
        except self._oss2.exceptions.OssError as exc:
            raise self._error(exc) from None

    def get_json(self, bucket: str, key: str) -> Any | None:
        data = self.get_bytes(bucket, key)
        return None if data is None else json.loads(data)
