"""The ports: what the pipeline's logic needs from ICE and from an object store, and how they fail.

The logic (submit, callback, reconciler, backfill) depends on these protocols only; the adapters
:class:`.ice.IceClient` (over ``alibabacloud_ice20201109``) and :class:`.store.OssStore` (over
``oss2``) implement them. Each adapter is bound to one invocation's deadline when it is made, so
its retries end in time; nothing sets a deadline on a shared adapter.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .domain import ObjectInfo, OssLocation, SnapshotJob, SnapshotJobPage, SnapshotUrls


class IceError(RuntimeError):
    """An ICE call failed. ``code`` is ICE's error code (``Throttling.User``, ``InvalidParameter``...)."""

    def __init__(self, code: str, message: str, *, request_id: str | None = None,
                 status_code: int | None = None):
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status_code = status_code

    @property
    def throttled(self) -> bool:
        """The account's rate limit refused the call (``Throttling.User``...): nothing was done."""
        return self.code.startswith("Throttling")

    @property
    def retryable(self) -> bool:
        """Throttling, server-side and network failures may succeed when tried again."""
        return (
            self.throttled
            or self.code in ("ServiceUnavailable", "InternalError", "NetworkError")
            or (self.status_code is not None and self.status_code >= 500)
        )

    @property
    def rejects_job(self) -> bool:
        """ICE refused this job's own parameters (not the caller's identity or the service's
        health): retrying the same request cannot succeed, so the refusal is the outcome."""
        return self.code.startswith(("InvalidParameter", "MissingParameter", "ResourceNotFound"))

    @property
    def not_found(self) -> bool:
        return self.status_code == 404 or "NotFound" in self.code or "NotExist" in self.code


class ObjectStoreError(RuntimeError):
    """An object-store call failed with ``code`` (OSS's error code) and HTTP ``status``."""

    def __init__(self, code: str, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.status = status
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        # oss2 reports connection failures with a negative status (RequestError: -2).
        return self.status is None or self.status < 0 or self.status >= 500 or self.code.startswith("Throttling")


class Ice(Protocol):
    """The snapshot-job calls of ICE the pipeline makes."""

    def submit_snapshot_job(self, *, input: OssLocation, output: OssLocation, template_id: str,
                            overwrite_params: Mapping[str, Any] | None = None, user_data: str | None = None,
                            name: str | None = None, pipeline_id: str | None = None) -> str:
        """Submit a job; returns its JobId."""
        ...

    def get_snapshot_job(self, job_id: str) -> SnapshotJob: ...

    def list_snapshot_jobs(self, *, status: str | None = None, start_of_create_time: str | None = None,
                           end_of_create_time: str | None = None, page_size: int = 100,
                           next_page_token: str | None = None, order_by: str | None = None) -> SnapshotJobPage: ...

    def get_all_snapshot_urls(self, job_id: str, *, timeout_s: int = 3600) -> SnapshotUrls:
        """Every URL of a finished job, in order, signed for ``timeout_s`` seconds."""
        ...

    def first_urls_page_ahead(self, job_id: str, *, timeout_s: int) -> AbstractContextManager[Ice]:
        """This port, with ``job_id``'s first URL page fetched in the background for ``get_all_snapshot_urls``."""
        ...


class ObjectStore(Protocol):
    """The object operations the pipeline makes. Missing objects are ``None``, not errors."""

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  headers: dict[str, str] | None = None) -> None:
        """Write ``data`` in one PUT, with its Content-Type and any further headers (e.g. Cache-Control)."""
        ...

    def put_json(self, bucket: str, key: str, doc: Any) -> None:
        """Write a JSON document in one PUT: a reader sees the old or the new document, never half."""
        ...

    def create_json(self, bucket: str, key: str, doc: Any) -> bool:
        """Create ``key`` only if it does not exist; False when it does. Of concurrent creators exactly
        one succeeds."""
        ...

    def get_json(self, bucket: str, key: str) -> Any | None: ...

    def get_head_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        """The first ``max_bytes`` of an object, or None when it does not exist."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def list(self, bucket: str, prefix: str, *, page_size: int = 1000, start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``, in key order."""
        ...

    def list_folders(self, bucket: str, prefix: str) -> Iterator[str]:
        """The folders (``<prefix>name/``) directly under ``prefix``."""
        ...

    def delete_many(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete ``keys`` (missing ones are no error)."""
        ...
