"""An OSS request and response as the compatibility layer sees them, and the error OSS answers."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from oss2.auth import ProviderAuth

#: Query parameters that are part of the signed resource: the same set oss2 signs, so both agree.
SIGNED_SUBRESOURCES: frozenset[str] = frozenset(ProviderAuth._subresource_key_set)
#: Signed sub-resources that select another API than the plain object/bucket one (a signed URL's
#: security-token, a versionId or response-* overrides do not).
CONTROL_SUBRESOURCES = frozenset(
    k for k in SIGNED_SUBRESOURCES
    if not k.startswith(("response-", "x-oss-")) and k not in ("security-token", "versionId", "continuation-token")
)
#: Operations that create an object, with the eventName of their OSS notification.
CREATE_EVENTS = {
    "PutObject": "ObjectCreated:PutObject",
    "CopyObject": "ObjectCreated:CopyObject",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
    "AppendObject": "ObjectCreated:AppendObject",
}
#: Operations that remove objects, with the eventName of their OSS notification (one per key).
REMOVE_EVENTS = {
    "DeleteObject": "ObjectRemoved:DeleteObject",
    "DeleteMultipleObjects": "ObjectRemoved:DeleteObjects",
}

#: A WSGI environ.
Environ = dict[str, Any]


class OssError(Exception):
    """An error answered in OSS's XML error format; ``extra`` adds elements such as StringToSign,
    ``headers`` response headers (x-oss-next-append-position...)."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: A GET's object bytes, streamed from the object's file instead of ``body`` (see ``storage``).
    stream: Iterable[bytes] | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


@dataclass
class OssRequest:
    """A request as OSS sees it: path-style bucket and raw (decoded) key, query pairs, lower-case headers."""

    method: str
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    remote_addr: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:24].upper())

    @classmethod
    def from_environ(cls, environ: Environ) -> OssRequest:
        # WSGI hands the percent-decoded path over as latin-1 code points; keys are UTF-8.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        bucket, _, key = path.lstrip("/").partition("/")
        headers = {
            name[5:].lower().replace("_", "-"): wsgi_to_text(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.lower().replace("_", "-")] = environ[name]
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return cls(environ["REQUEST_METHOD"].upper(), bucket, key, query, headers,
                   environ.get("REMOTE_ADDR") or "127.0.0.1")

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    @property
    def action(self) -> str:
        """The OSS API operation, as its docs name it (``PutObject``, ``ListObjectsV2``...): what the
        request counters count."""
        names = {k for k, _ in self.query}
        if not self.key:
            if self.method == "GET":
                return "ListObjectsV2" if self.param("list-type") == "2" else "ListObjects"
            if self.method == "POST" and "delete" in names:
                return "DeleteMultipleObjects"
            return f"{self.method} bucket"
        if "uploadId" in names or "uploads" in names:
            return f"{self.method} multipart"
        if self.method == "PUT":
            return "CopyObject" if "x-oss-copy-source" in self.headers else "PutObject"
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(self.method,
                                                                                      f"{self.method} object")

    @property
    def forbids_overwrite(self) -> bool:
        return self.headers.get("x-oss-forbid-overwrite", "").lower() == "true"

    @functools.cached_property
    def operation(self) -> str:
        """The OSS API name of this request, as far as the layer needs to tell them apart."""
        controls = {k for k, _ in self.query if k in CONTROL_SUBRESOURCES}
        if not self.bucket:
            return "ListBuckets" if self.method == "GET" else "Service"
        if not self.key:
            return self._bucket_operation(controls)
        return self._object_operation(controls)

    def _bucket_operation(self, controls: set[str]) -> str:
        m = self.method
        if m == "GET" and not controls:
            return "ListObjectsV2" if self.param("list-type") == "2" else "ListObjects"
        if m == "POST" and controls == {"delete"}:
            return "DeleteMultipleObjects"
        if m == "GET" and controls == {"uploads"}:
            return "ListMultipartUploads"
        if m == "GET" and controls == {"live"}:
            return "ListLiveChannel"
        if m == "PUT" and not controls:
            return "PutBucket"
        if m == "POST" and self.headers.get("content-type", "").startswith("multipart/form-data"):
            return "PostObject"
        return "Bucket"

    def _object_operation(self, controls: set[str]) -> str:
        m = self.method
        copying = "x-oss-copy-source" in self.headers
        if m == "PUT" and not controls:
            return "CopyObject" if copying else "PutObject"
        if m == "PUT" and controls == {"uploadId", "partNumber"}:
            return "UploadPartCopy" if copying else "UploadPart"
        if m == "HEAD" and controls <= {"objectMeta"}:
            return "GetObjectMeta" if controls else "HeadObject"
        return _OBJECT_OPERATIONS.get((m, frozenset(controls)), "Object")


#: Object operations told apart by method and sub-resources alone.
_OBJECT_OPERATIONS = {
    ("POST", frozenset({"uploads"})): "InitiateMultipartUpload",
    ("POST", frozenset({"uploadId"})): "CompleteMultipartUpload",
    ("POST", frozenset({"append", "position"})): "AppendObject",
    ("GET", frozenset({"uploadId"})): "ListParts",
    ("GET", frozenset()): "GetObject",
    ("DELETE", frozenset()): "DeleteObject",
    ("DELETE", frozenset({"uploadId"})): "AbortMultipartUpload",
}


def wsgi_to_text(value: str) -> str:
    """A header value as the client wrote it: WSGI hands bytes over as latin-1 code points, and
    clients send UTF-8 (oss2 signs, and OSS stores, user metadata such as ``x-oss-meta-*: 测试``)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def text_to_wsgi(value: str) -> str:
    """The inverse of :func:`wsgi_to_text`, for a value put back into a WSGI environ."""
    return value.encode("utf-8").decode("latin-1")


def iso_now() -> str:
    """Now in OSS's ISO 8601 form with milliseconds (``2024-05-01T12:00:00.000Z``)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
