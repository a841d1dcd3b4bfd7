"""A local Alibaba Cloud OSS: moto's S3 server behind a small OSS-compatibility WSGI layer.

The unmodified ``oss2`` SDK talks to it exactly as it talks to OSS (path-style URLs, which oss2 picks
by itself for an IP or ``localhost`` endpoint). Storage, listing, paging, multipart and ranges are
moto's S3 implementation; this module only bridges what OSS does differently on the wire:

* **Authentication.** OSS signs with ``Authorization: OSS <AccessKeyId>:<base64 hmac-sha1>`` or with
  ``OSSAccessKeyId``/``Expires``/``Signature`` in the query string, over a canonical string that is
  not S3's. The layer verifies it (string to sign as in ``oss2/auth.py``), then replaces it with a
  marker moto accepts as "signed" (moto applies S3 anonymous-access ACLs to unsigned requests).
  STS requests (``x-oss-security-token``) are accepted for the configured key.
* **Headers.** OSS uses ``x-oss-*`` where S3 uses ``x-amz-*`` (``x-oss-meta-*``, ``x-oss-copy-source``,
  ``x-oss-metadata-directive``...). Requests are renamed on the way in, responses on the way out.
* **OSS-only behaviour** that moto does not have: ``x-oss-forbid-overwrite`` (atomic, per key lock),
  ``x-oss-object-type``, upper-case ETags, ``x-oss-request-id`` on every response, ``x-oss-err`` on
  HEAD errors (oss2 reads the error code from it), the 100 KB minimum part size (S3: 5 MB), and
  object-created notifications.
* **XML.** moto answers in the S3 namespace, which oss2's ``find('IsTruncated')`` does not see. The
  layer strips the namespace and adds what oss2 requires and S3 lacks (``Contents/Type``, the bucket
  ``Location``/endpoints of ListBuckets). ``encoding-type=url`` is done here, for the elements OSS
  encodes, instead of relying on moto's partial support. ListObjects (v1) is served from moto's v2,
  because moto's v1 repeats every common prefix on every page.

State lives in moto's process-global S3 backend: two ``LocalOss`` in one process share buckets, and
anything that resets moto (``mock_aws``) empties them. Path-style URLs only. Signature V2/V4,
PostObject, AppendObject and other OSS-only sub-resources (symlink...) answer 501 NotImplemented.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import io
import logging
import os
import queue
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import parse_qsl, quote

import moto.s3.models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import S3ClientError
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from oss2.auth import ProviderAuth
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import get_input_stream

__all__ = ["LocalOss"]

log = logging.getLogger(__name__)

Listener = Callable[[dict], None]

#: Query parameters that are part of the signed resource: the same set oss2 signs, so both agree.
_SIGNED_SUBRESOURCES = ProviderAuth._subresource_key_set
#: Signed sub-resources that select another API than the plain object/bucket one (a signed URL's
#: security-token, a versionId or response-* overrides do not).
_CONTROL_SUBRESOURCES = frozenset(
    k for k in _SIGNED_SUBRESOURCES
    if not k.startswith(("response-", "x-oss-")) and k not in ("security-token", "versionId", "continuation-token")
)
_OSS_MIN_PART_SIZE = 100 * 1024
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
#: The sub-resources OSS shares with S3, which moto implements; other OSS ones answer 501.
_S3_SUBRESOURCES = frozenset({"acl", "tagging", "uploads", "uploadId", "partNumber", "delete", "objectMeta",
                              "cors", "lifecycle", "policy", "versioning", "versions", "location"})
#: OSS rejects a header-signed request whose Date is further than this from the server clock.
_MAX_CLOCK_SKEW_SECONDS = 15 * 60
#: What moto sees instead of the OSS Authorization: moto treats a request without one as anonymous
#: and applies S3 object ACLs to it, but the layer has already authenticated the request.
_VERIFIED_AUTHORIZATION = "AWS LOCALOSS:verified-by-localcloud-oss"
#: Paging parameters oss2 sends empty on a first page, meaning "absent".
_EMPTY_MEANS_ABSENT = frozenset({"prefix", "delimiter", "marker", "continuation-token", "start-after",
                                 "part-number-marker", "key-marker", "upload-id-marker"})
#: Query parameters of a query-string-signed URL (signature V1), removed before moto sees them.
_QUERY_AUTH_PARAMS = ("OSSAccessKeyId", "Expires", "Signature", "security-token")
#: x-oss-* request headers the layer consumes itself instead of renaming them for moto.
_CONSUMED_HEADERS = ("x-oss-security-token", "x-oss-forbid-overwrite", "x-oss-date")
#: x-oss-* headers whose S3 name is not just the prefix swapped.
_SPECIAL_HEADER_NAMES = {"x-oss-object-acl": "x-amz-acl"}
#: Request headers carrying an ETag: OSS ETags are upper case, moto's are lower case.
_ETAG_REQUEST_HEADERS = (
    "if-match",
    "if-none-match",
    "x-oss-copy-source-if-match",
    "x-oss-copy-source-if-none-match",
)
#: Elements that OSS URL-encodes when the request says ``encoding-type=url``.
_URL_ENCODED_ELEMENTS = (
    "Prefix",
    "Marker",
    "NextMarker",
    "Delimiter",
    "StartAfter",
    "ContinuationToken",
    "NextContinuationToken",
    "Contents/Key",
    "CommonPrefixes/Prefix",
    "Deleted/Key",
)
#: Operations that create an object, with the eventName of their OSS notification.
_CREATE_EVENTS = {
    "PutObject": "ObjectCreated:PutObject",
    "CopyObject": "ObjectCreated:CopyObject",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
_ERROR_CODE_BY_STATUS = {
    400: "InvalidArgument",
    403: "AccessDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    411: "MissingContentLength",
    412: "PreconditionFailed",
    416: "InvalidRange",
    501: "NotImplemented",
}


class OssError(Exception):
    """An error answered in OSS's XML error format; ``extra`` adds elements such as StringToSign."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


@dataclass
class _OssRequest:
    """A request as OSS sees it: path-style bucket and raw (decoded) key, query pairs, lower-case headers."""

    method: str
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    remote_addr: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:24].upper())

    @classmethod
    def from_environ(cls, environ: dict) -> _OssRequest:
        # WSGI hands the percent-decoded path over as latin-1 code points; keys are UTF-8.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        bucket, _, key = path.lstrip("/").partition("/")
        headers = {
            name[5:].lower().replace("_", "-"): value
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

    @functools.cached_property
    def operation(self) -> str:
        """The OSS API name of this request, as far as the layer needs to tell them apart."""
        m, controls = self.method, {k for k, _ in self.query if k in _CONTROL_SUBRESOURCES}
        if not self.bucket:
            return "ListBuckets" if m == "GET" else "Service"
        if not self.key:
            if m == "GET" and not controls:
                return "ListObjectsV2" if self.param("list-type") == "2" else "ListObjects"
            if m == "POST" and controls == {"delete"}:
                return "DeleteMultipleObjects"
            if m == "PUT" and not controls:
                return "PutBucket"
            if m == "POST" and self.headers.get("content-type", "").startswith("multipart/form-data"):
                return "PostObject"
            return "Bucket"
        if m == "PUT" and not controls:
            return "CopyObject" if "x-oss-copy-source" in self.headers else "PutObject"
        if m == "POST" and controls == {"uploads"}:
            return "InitiateMultipartUpload"
        if m == "POST" and controls == {"uploadId"}:
            return "CompleteMultipartUpload"
        if m == "GET" and not controls:
            return "GetObject"
        if m == "HEAD" and controls <= {"objectMeta"}:
            return "GetObjectMeta" if controls else "HeadObject"
        return "Object"

    @property
    def canonical_resource(self) -> str:
        """``/bucket/key?signed-subresources`` exactly as oss2 builds it (raw key, sorted, unencoded)."""
        resource = f"/{self.bucket}/{self.key}" if self.bucket else "/"
        subresources = sorted((k, v) for k, v in self.query if k in _SIGNED_SUBRESOURCES)
        if subresources:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
        return resource

    def string_to_sign(self, date: str) -> str:
        """The OSS signature V1 string to sign (see ``oss2.auth.ProviderAuth``)."""
        oss_headers = "".join(
            f"{k}:{v}\n" for k, v in sorted(self.headers.items()) if k.startswith("x-oss-")
        )
        return "\n".join([
            self.method,
            self.headers.get("content-md5", ""),
            self.headers.get("content-type", ""),
            date,
            oss_headers + self.canonical_resource,
        ])


class _OssCompatApp:
    """WSGI middleware: verifies OSS auth, translates one OSS request into S3 for moto and back."""

    def __init__(self, *, inner: Callable, access_key_id: str, access_key_secret: str,
                 region: str, account_id: str, inner_host: Callable[[], str],
                 notify: Callable[[str, _OssRequest, dict], None]) -> None:
        self._inner = inner
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret.encode("utf-8")
        self._region = region
        self._account_id = account_id
        self._inner_host = inner_host
        self._notify = notify
        # Object-creating writes take a per-key lock (striped): "does it exist?" and the write are
        # one atomic step, so x-oss-forbid-overwrite holds under concurrency, as on OSS.
        self._key_locks = [threading.Lock() for _ in range(64)]
        self._forbid_overwrite_uploads: set[str] = set()

    # ------------------------------------------------------------------ WSGI entry point

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = _OssRequest.from_environ(environ)
        try:
            self._reject_unsupported(req)
            self._authenticate(req)
            resp = self._handle(req, environ)
        except OssError as err:
            resp = self._error_response(req, err)
        except Exception:  # a bug here or in moto must still answer like OSS, not hang the client
            log.exception("LocalOss: %s /%s/%s failed", req.method, req.bucket, req.key)
            resp = self._error_response(req, OssError(500, "InternalError", "LocalOss failed; see its log."))
        resp.set_header("x-oss-request-id", req.request_id)
        if resp.status >= 400:
            self._finish_error(req, resp)
        start_response(f"{resp.status} {HTTPStatus(resp.status).phrase}", resp.headers)
        return [resp.body]

    def _finish_error(self, req: _OssRequest, resp: _Response) -> None:
        """Stamp RequestId/HostId into the <Error>; a HEAD has no body, so OSS sends it base64 in x-oss-err."""
        root = ElementTree.fromstring(resp.body)
        for index, (tag, text) in enumerate((("RequestId", req.request_id), ("HostId", self._host_id(req))), 2):
            node = ElementTree.Element(tag)
            node.text = text
            root.insert(index, node)
        body = _xml_bytes(root)
        if req.method == "HEAD":
            resp.set_header("x-oss-err", base64.b64encode(body).decode("ascii"))
            body = b""
        resp.body = body
        resp.set_header("Content-Type", "application/xml")
        resp.set_header("Content-Length", str(len(body)))

    def _host_id(self, req: _OssRequest) -> str:
        host = f"oss-{self._region}.aliyuncs.com"
        return f"{req.bucket}.{host}" if req.bucket else host

    @staticmethod
    def _reject_unsupported(req: _OssRequest) -> None:
        """OSS-only APIs moto would misread (a PUT ?symlink would store an empty object): say so."""
        if req.operation == "PostObject":
            raise OssError(501, "NotImplemented", "LocalOss does not implement PostObject (HTML form "
                                                  "upload); use PutObject or a signed PUT URL.")
        unsupported = sorted(k for k, _ in req.query if k in _CONTROL_SUBRESOURCES - _S3_SUBRESOURCES)
        if unsupported:
            raise OssError(501, "NotImplemented",
                           f"LocalOss does not implement the OSS sub-resource(s) {unsupported}.")

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, req: _OssRequest) -> None:
        """Verify an OSS V1 signature (header or query string); raise the OssError OSS would answer."""
        authorization = req.headers.get("authorization", "")
        if req.param("Signature") is not None and req.param("OSSAccessKeyId") is not None:
            access_key_id, signature = req.param("OSSAccessKeyId"), req.param("Signature")
            expires = req.param("Expires") or ""
            self._check_access_key(access_key_id)
            if not expires.isdigit():
                raise OssError(403, "AccessDenied", "Invalid Expires in the signed URL.")
            if int(expires) < time.time():
                raise OssError(403, "AccessDenied", "Request has expired.", Expires=expires,
                               ServerTime=_iso_now())
            date = expires
        elif authorization.startswith("OSS "):
            access_key_id, _, signature = authorization[4:].strip().rpartition(":")
            self._check_access_key(access_key_id)
            date = req.headers.get("x-oss-date") or req.headers.get("date", "")
            self._check_clock_skew(date)
        elif authorization:
            raise OssError(501, "NotImplemented",
                           "LocalOss verifies only OSS signature V1 ('Authorization: OSS <AccessKeyId>:"
                           "<Signature>'); use oss2.Auth or oss2.StsAuth with the default auth_version.")
        else:
            raise OssError(403, "AccessDenied",
                           "Anonymous access is forbidden: LocalOss buckets are private; sign the request.")
        string_to_sign = req.string_to_sign(date)
        expected = base64.b64encode(
            hmac.new(self._access_key_secret, string_to_sign.encode("utf-8"), hashlib.sha1).digest()
        ).decode("ascii")
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise OssError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you "
                           "provided. Check your key and signing method.",
                           StringToSign=string_to_sign, SignatureProvided=signature,
                           OSSAccessKeyId=access_key_id)

    def _check_access_key(self, access_key_id: str) -> None:
        if access_key_id != self._access_key_id:
            raise OssError(403, "InvalidAccessKeyId",
                           "The OSS Access Key Id you provided does not exist in our records.",
                           OSSAccessKeyId=access_key_id)

    @staticmethod
    def _check_clock_skew(date: str) -> None:
        try:
            skew = abs(time.time() - parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            raise OssError(403, "AccessDenied", f"Invalid or missing Date header: {date!r}.") from None
        if skew > _MAX_CLOCK_SKEW_SECONDS:
            raise OssError(403, "RequestTimeTooSkewed",
                           "The difference between the request time and the current time is too large.",
                           RequestTime=date, ServerTime=_iso_now())

    # ------------------------------------------------------------------ dispatch

    def _handle(self, req: _OssRequest, environ: dict) -> _Response:
        op = req.operation
        if op == "PutBucket":
            _check_bucket_name(req.bucket)
            # OSS's optional body (<CreateBucketConfiguration><StorageClass>) is not S3's
            # LocationConstraint; moto would reject it. Buckets are always Standard locally.
            return self._forward(req, environ, body=b"")
        if op == "InitiateMultipartUpload":
            return self._initiate_multipart(req, environ)
        if op in _CREATE_EVENTS:
            return self._create_object(req, environ, op)
        return self._forward(req, environ)

    def _create_object(self, req: _OssRequest, environ: dict, op: str) -> _Response:
        """PutObject / CopyObject / CompleteMultipartUpload: forbid-overwrite, then notify."""
        body = None
        if op == "CompleteMultipartUpload":
            body = self._complete_body(req, environ)
        forbid = req.headers.get("x-oss-forbid-overwrite", "").lower() == "true"
        if op == "CompleteMultipartUpload" and req.param("uploadId") in self._forbid_overwrite_uploads:
            forbid = True
        with self._key_locks[hash((req.bucket, req.key)) % len(self._key_locks)]:
            before = _stat(req.bucket, req.key)
            if forbid and before is not None:
                raise OssError(409, "FileAlreadyExists",
                               "The object you specified already exists and can not be overwritten.")
            resp = self._forward(req, environ, body=body)
            after = _stat(req.bucket, req.key) if resp.status == 200 else None
            if after is not None:
                size, etag = after
                self._notify(_CREATE_EVENTS[op], req, {"eTag": etag, "size": size,
                                                       "deltaSize": size - (before or (0, ""))[0]})
                if op == "CompleteMultipartUpload":
                    self._forbid_overwrite_uploads.discard(req.param("uploadId") or "")
        # oss2 reads the ETag of a copy or a completed upload from the header; S3 puts it in the body.
        if resp.status == 200 and resp.header("ETag") is None:
            node = ElementTree.fromstring(resp.body).find("ETag")
            resp.set_header("ETag", node.text if node is not None else None)
        return resp

    def _initiate_multipart(self, req: _OssRequest, environ: dict) -> _Response:
        """Reject early if forbid-overwrite and the key exists; remember it for the Complete."""
        forbid = req.headers.get("x-oss-forbid-overwrite", "").lower() == "true"
        if forbid and _stat(req.bucket, req.key) is not None:
            raise OssError(409, "FileAlreadyExists",
                           "The object you specified already exists and can not be overwritten.")
        resp = self._forward(req, environ)
        if forbid and resp.status == 200:
            upload_id = ElementTree.fromstring(resp.body).findtext("UploadId")
            self._forbid_overwrite_uploads.add(upload_id or "")
        return resp

    def _complete_body(self, req: _OssRequest, environ: dict) -> bytes:
        """oss2 echoes the upper-case part ETags we returned; moto matches them lower case."""
        raw = get_input_stream(environ).read()
        md5 = req.headers.get("content-md5")
        if md5 and base64.b64encode(hashlib.md5(raw).digest()).decode() != md5:
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        if not raw:
            return raw
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError:
            raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        for node in root.iter("ETag"):
            node.text = (node.text or "").lower()
        return ElementTree.tostring(root, encoding="utf-8")

    def _not_found_error(self, req: _OssRequest) -> bytes:
        """moto's HEAD 404 has no body; tell a missing bucket from a missing key, as OSS does."""
        if not req.key or not _bucket_exists(req.bucket):
            return _error_xml("NoSuchBucket", "The specified bucket does not exist.", BucketName=req.bucket)
        return _error_xml("NoSuchKey", "The specified key does not exist.", Key=req.key)

    # ------------------------------------------------------------------ moto round trip

    def _forward(self, req: _OssRequest, environ: dict, body: bytes | None = None) -> _Response:
        """Send the request to moto as S3, and turn moto's answer into an OSS answer."""
        inner = self._s3_environ(req, environ, body)
        resp = self._call_inner(inner)
        return self._to_oss_response(req, resp)

    def _s3_environ(self, req: _OssRequest, environ: dict, body: bytes | None) -> dict:
        inner = {k: v for k, v in environ.items()
                 if not (k.startswith("HTTP_X_OSS_") or k in ("HTTP_AUTHORIZATION", "HTTP_CONTENT_MD5"))}
        inner["HTTP_HOST"] = self._inner_host()
        inner["HTTP_AUTHORIZATION"] = _VERIFIED_AUTHORIZATION
        for name, value in req.headers.items():
            if not name.startswith("x-oss-") or name in _CONSUMED_HEADERS:
                continue
            s3_name = _SPECIAL_HEADER_NAMES.get(name, "x-amz-" + name[len("x-oss-"):])
            inner["HTTP_" + s3_name.upper().replace("-", "_")] = value
        if "content-md5" in req.headers and body is None:
            inner["HTTP_CONTENT_MD5"] = req.headers["content-md5"]
        for name in _ETAG_REQUEST_HEADERS:
            if name in req.headers:
                s3_name = _SPECIAL_HEADER_NAMES.get(name, name.replace("x-oss-", "x-amz-"))
                inner["HTTP_" + s3_name.upper().replace("-", "_")] = req.headers[name].lower()
        inner["QUERY_STRING"] = "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self._s3_query(req)
        )
        if body is not None:
            inner["wsgi.input"] = io.BytesIO(body)
            inner["CONTENT_LENGTH"] = str(len(body))
            inner.pop("HTTP_TRANSFER_ENCODING", None)
            inner.pop("wsgi.input_terminated", None)
        return inner

    @staticmethod
    def _s3_query(req: _OssRequest) -> list[tuple[str, str]]:
        """The query for moto: no auth parameters, no empty paging parameters, encoding done by us."""
        query = []
        for k, v in req.query:
            if k in _QUERY_AUTH_PARAMS or k == "encoding-type":
                continue
            # oss2 always sends prefix/marker/continuation-token/part-number-marker, empty on the
            # first page; OSS reads empty as absent, moto rejects an empty token or part marker.
            if v == "" and k in _EMPTY_MEANS_ABSENT:
                continue
            # moto reads fetch-owner=false as true; OSS omits Owner unless it is "true".
            if k == "fetch-owner" and v.lower() != "true":
                continue
            query.append((k, v))
        if req.operation == "ListObjects":
            # moto's v1 listing pages the keys but repeats every common prefix on every page; its
            # v2 pages both together. Serve v1 from v2 (marker == start-after); see _v2_listing_as_v1.
            query = [("start-after" if k == "marker" else k, v) for k, v in query]
            query += [("list-type", "2"), ("fetch-owner", "true")]
        return query

    def _call_inner(self, environ: dict) -> _Response:
        captured: dict = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info=None):
            captured["status"], captured["headers"] = int(status.split(" ", 1)[0]), list(headers)
            return chunks.append

        result = self._inner(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return _Response(captured["status"], captured["headers"], b"".join(chunks))

    def put_bucket(self, bucket: str) -> _Response:
        """Create a bucket through moto's S3 API, bypassing OSS auth (for LocalOss.create_bucket)."""
        _check_bucket_name(bucket)
        headers = {"Host": self._inner_host(), "Authorization": _VERIFIED_AUTHORIZATION}
        environ = EnvironBuilder(path="/" + quote(bucket, safe=""), method="PUT", headers=headers).get_environ()
        return self._to_oss_response(_OssRequest("PUT", bucket, "", [], {}, "127.0.0.1"), self._call_inner(environ))

    # ------------------------------------------------------------------ S3 answer -> OSS answer

    def _to_oss_response(self, req: _OssRequest, s3: _Response) -> _Response:
        headers: list[tuple[str, str]] = []
        for name, value in s3.headers:
            lower = name.lower()
            if lower in ("x-amz-request-id", "x-amz-id-2", "x-amzn-requestid", "server", "content-length"):
                continue
            if lower.startswith("x-amz-"):
                name, lower = "x-oss-" + lower[len("x-amz-"):], "x-oss-" + lower[len("x-amz-"):]
            if lower == "etag":
                value = value.upper()
            if lower == "x-oss-storage-class":
                value = _oss_storage_class(value)
            headers.append((name, value))
        resp = _Response(s3.status, headers, s3.body)
        op = req.operation
        if op in ("GetObject", "HeadObject") and s3.status in (200, 206, 304):
            etag = resp.header("ETag") or ""
            resp.set_header("x-oss-object-type", "Multipart" if "-" in etag else "Normal")
            if resp.header("x-oss-storage-class") is None:
                resp.set_header("x-oss-storage-class", "Standard")
        if s3.status >= 300 and s3.status != 304:
            resp.body = self._oss_error_body(req, s3)
            resp.set_header("Content-Type", "application/xml")
        elif op != "GetObject" and s3.body.lstrip().startswith(b"<"):
            resp.body = self._oss_xml_body(req, s3.body)
        if req.method == "HEAD":
            resp.set_header("Content-Length", s3.header("Content-Length"))
        else:
            resp.set_header("Content-Length", str(len(resp.body)))
        return resp

    def _oss_xml_body(self, req: _OssRequest, body: bytes) -> bytes:
        """Strip the S3 namespace and add the fields oss2 needs that S3 does not send."""
        root = _strip_namespaces(ElementTree.fromstring(body))
        for node in root.iter("ETag"):
            node.text = (node.text or "").upper()
        for node in root.iter("StorageClass"):
            node.text = _oss_storage_class(node.text or "")
        for owner in root.iter("Owner"):
            for tag in ("ID", "DisplayName"):
                if owner.find(tag) is not None:
                    owner.find(tag).text = self._account_id
        for contents in root.iter("Contents"):
            if contents.find("Type") is None:
                etag = contents.findtext("ETag") or ""
                _insert_after(contents, "ETag", "Type", "Multipart" if "-" in etag else "Normal")
        if req.operation == "ListObjects":
            _v2_listing_as_v1(root, req.param("marker") or "")
        if root.tag == "ListAllMyBucketsResult":
            self._add_bucket_locations(root)
        if req.param("encoding-type") == "url":
            for path in _URL_ENCODED_ELEMENTS:
                for node in root.findall(path):
                    node.text = quote(node.text or "", safe="")
            if root.find("EncodingType") is None:
                ElementTree.SubElement(root, "EncodingType").text = "url"
        return _xml_bytes(root)

    def _add_bucket_locations(self, root: ElementTree.Element) -> None:
        location = f"oss-{self._region}"
        for bucket in root.iter("Bucket"):
            for tag, text in (("Location", location), ("ExtranetEndpoint", f"{location}.aliyuncs.com"),
                              ("IntranetEndpoint", f"{location}-internal.aliyuncs.com"),
                              ("Region", self._region), ("StorageClass", "Standard")):
                if bucket.find(tag) is None:
                    ElementTree.SubElement(bucket, tag).text = text

    def _oss_error_body(self, req: _OssRequest, s3: _Response) -> bytes:
        """moto's S3 error (XML, plain text or empty) as an OSS <Error> with our RequestId."""
        code, message, extra = _ERROR_CODE_BY_STATUS.get(s3.status, "InternalError"), "", {}
        text = s3.body.decode("utf-8", "replace").strip()
        if text.startswith("<"):
            try:
                root = _strip_namespaces(ElementTree.fromstring(s3.body))
                for child in root:
                    if child.tag == "Code":
                        code = child.text or code
                    elif child.tag == "Message":
                        message = child.text or ""
                    elif child.tag not in ("RequestID", "RequestId", "HostId") and not len(child):
                        extra[child.tag] = child.text or ""
            except ElementTree.ParseError:
                message = text
        else:
            message = text
        if s3.status == 404 and not text:
            return self._not_found_error(req)
        return _error_xml(code, message or code, **extra)

    def _error_response(self, req: _OssRequest, err: OssError) -> _Response:
        body = _error_xml(err.code, err.message, **err.extra)
        return _Response(err.status, [("Content-Type", "application/xml")], body)


def _check_bucket_name(name: str) -> None:
    """OSS bucket names: 3-63 lower-case letters, digits and hyphens, not starting/ending with '-'."""
    if not _BUCKET_NAME.fullmatch(name):
        raise OssError(400, "InvalidBucketName", f"The specified bucket {name!r} is not valid: use 3-63 "
                       "lower-case letters, digits and hyphens, starting and ending with a letter or digit.")


def _moto_backend() -> moto.s3.models.S3Backend:
    """The moto S3 backend our forwarded requests land in: moto picks the account from
    MOTO_ACCOUNT_ID, else (our marker Authorization is no IAM key) its default account."""
    return moto.s3.models.s3_backends[os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)]["aws"]


def _stat(bucket: str, key: str) -> tuple[int, str] | None:
    """(size, upper-case ETag) of an object, or None. Read from moto's state directly: a HEAD
    through the WSGI app costs ~1 ms, and every object creation needs two of them."""
    try:
        obj = _moto_backend().get_object(bucket, key)
    except S3ClientError:  # MissingBucket
        return None
    return None if obj is None else (obj.size, obj.etag.strip('"').upper())


def _bucket_exists(bucket: str) -> bool:
    try:
        _moto_backend().get_bucket(bucket)
    except S3ClientError:
        return False
    return True


def _error_xml(code: str, message: str, **extra: str) -> bytes:
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = code
    ElementTree.SubElement(root, "Message").text = message
    for tag, text in extra.items():
        ElementTree.SubElement(root, tag).text = text
    return _xml_bytes(root)


def _xml_bytes(root: ElementTree.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def _strip_namespaces(root: ElementTree.Element) -> ElementTree.Element:
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root


def _insert_after(parent: ElementTree.Element, after_tag: str, tag: str, text: str) -> None:
    node = ElementTree.Element(tag)
    node.text = text
    children = list(parent)
    index = next((i + 1 for i, child in enumerate(children) if child.tag == after_tag), len(children))
    parent.insert(index, node)


def _v2_listing_as_v1(root: ElementTree.Element, marker: str) -> None:
    """Reshape a ListObjectsV2 answer into ListObjects (v1): Marker in, NextMarker out.

    NextMarker is the last key or common prefix of the page (S3 sends it only with a delimiter;
    OSS, and oss2's parser, always need it on a truncated page).
    """
    for tag in ("KeyCount", "StartAfter", "ContinuationToken", "NextContinuationToken"):
        for node in root.findall(tag):
            root.remove(node)
    _insert_after(root, "Prefix", "Marker", marker)
    if root.findtext("IsTruncated") == "true":
        names = [n.text or "" for n in root.findall("Contents/Key") + root.findall("CommonPrefixes/Prefix")]
        _insert_after(root, "IsTruncated", "NextMarker", max(names))


def _oss_storage_class(s3_class: str) -> str:
    return {"STANDARD": "Standard", "STANDARD_IA": "IA", "GLACIER": "Archive",
            "DEEP_ARCHIVE": "ColdArchive"}.get(s3_class, s3_class)


def _iso_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class _QuietRequestHandler(MotoRequestHandler):
    """Werkzeug's handler logs every request line to stderr, signed-URL signatures included;
    log method and path only, at DEBUG."""

    server_version = "AliyunOSS"
    sys_version = ""
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

    def version_string(self) -> str:
        return "AliyunOSS"

    def log_request(self, code="-", size="-") -> None:
        log.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args) -> None:
        if type == "error":
            log.warning(message, *args)


class LocalOss:
    """A local OSS endpoint for the unmodified oss2 SDK, with OSS-trigger style notifications.

    ``start()`` serves on ``host:port`` (0 = a free port) in background threads; ``endpoint`` is then
    the URL to give ``oss2.Bucket``. Listeners from ``subscribe`` get one native FC OSS-trigger event
    record per created object, from a dispatcher thread, after the object is readable.
    """

    def __init__(self, *, access_key_id: str, access_key_secret: str, host: str = "127.0.0.1",
                 port: int = 0, region: str = "cn-hangzhou", account_id: str = "1000000000000001") -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("LocalOss needs a non-empty access_key_id and access_key_secret")
        self.access_key_id = access_key_id
        self.region = region
        self.account_id = account_id
        self.endpoint = ""
        self._host, self._port = host, port
        self._listeners: list[tuple[Listener, str]] = []
        self._listeners_lock = threading.Lock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        # OSS's minimum multipart part size (all parts but the last) is 100 KB; S3's is 5 MB. moto
        # reads it from this module-level setting at CompleteMultipartUpload time.
        moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = _OSS_MIN_PART_SIZE
        self._app = _OssCompatApp(
            inner=create_backend_app("s3"), access_key_id=access_key_id,
            access_key_secret=access_key_secret, region=region, account_id=account_id,
            inner_host=self._inner_host, notify=self._enqueue_event,
        )

    def __repr__(self) -> str:  # never show the secret
        return f"LocalOss(endpoint={self.endpoint!r}, region={self.region!r}, access_key_id={self.access_key_id!r})"

    def __enter__(self) -> LocalOss:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> LocalOss:
        """Bind and serve in a daemon thread; also start the notification dispatcher."""
        if self._server is not None:
            return self
        self._server = make_server(self._host, self._port, self._app, threaded=True,
                                   request_handler=_QuietRequestHandler)
        self._port = self._server.server_port
        self.endpoint = f"http://{self._host}:{self._port}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="localoss-http", daemon=True),
            threading.Thread(target=self._dispatch_events, name="localoss-events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("LocalOss serving on %s", self.endpoint)
        return self

    def stop(self) -> None:
        """Stop serving, deliver the notifications already queued, and join the threads. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._events.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def create_bucket(self, name: str) -> None:
        """Create a bucket (idempotent); works before ``start()`` too."""
        try:
            resp = self._app.put_bucket(name)
        except OssError as err:
            raise ValueError(f"LocalOss: cannot create bucket: {err.code}: {err.message}") from None
        if resp.status != 200:
            error = ElementTree.fromstring(resp.body)
            raise ValueError(f"LocalOss: cannot create bucket {name!r}: {resp.status} "
                             f"{error.findtext('Code')}: {error.findtext('Message')}")

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every object created from now on (FC OSS-trigger record)."""
        rule_id = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        with self._listeners_lock:
            self._listeners.append((listener, rule_id))

    # ------------------------------------------------------------------ internals

    def _inner_host(self) -> str:
        # moto decides path-style vs virtual-hosted from Host; an IP host means path-style.
        return f"127.0.0.1:{self._port}"

    def _enqueue_event(self, event_name: str, req: _OssRequest, obj: dict) -> None:
        record = {
            "eventName": event_name,
            "eventSource": "acs:oss",
            "eventTime": _iso_now(),
            "eventVersion": "1.0",
            "oss": {
                "bucket": {
                    "arn": f"acs:oss:{self.region}:{self.account_id}:{req.bucket}",
                    "name": req.bucket,
                    "ownerIdentity": self.account_id,
                },
                "object": {"deltaSize": obj["deltaSize"], "eTag": obj["eTag"], "key": req.key,
                           "size": obj["size"]},
                "ossSchemaVersion": "1.0",
                "ruleId": "",
            },
            "region": self.region,
            "requestParameters": {"sourceIPAddress": req.remote_addr},
            "responseElements": {"requestId": req.request_id},
            "userIdentity": {"principalId": self.account_id},
        }
        self._events.put(record)

    def _dispatch_events(self) -> None:
        while (record := self._events.get()) is not None:
            with self._listeners_lock:
                listeners = list(self._listeners)
            for listener, rule_id in listeners:
                delivered = copy.deepcopy(record)
                delivered["oss"]["ruleId"] = rule_id
                try:
                    listener(delivered)
                except Exception:
                    log.exception("LocalOss: listener %r failed on %s %s/%s", listener,
                                  record["eventName"], record["oss"]["bucket"]["name"],
                                  record["oss"]["object"]["key"])
