"""The WSGI layer in front of moto's S3: OSS auth, OSS-only behaviour, one OSS request in, one answer out.

OSS-only behaviour that moto does not have: ``x-oss-forbid-overwrite`` (atomic, per key lock),
``x-oss-object-type``, upper-case ETags, ``x-oss-request-id`` on every response, ``x-oss-err`` on
HEAD errors (oss2 reads the error code from it), object-created and object-removed notifications,
and the fault switches of :mod:`localcloud.oss.faults`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import moto.s3.models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import S3ClientError
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import get_input_stream

from localcloud.counters import RequestCounts
from localcloud.keyring import Keyring
from localcloud.oss import append, crc64, multipart, names, translation, xml_bodies
from localcloud.oss.auth import OssAuthenticator
from localcloud.oss.faults import NO_FAULT, OssFaults, Plan
from localcloud.oss.notifications import ObjectChange
from localcloud.oss.wire import (
    CONTROL_SUBRESOURCES,
    CREATE_EVENTS,
    REMOVE_EVENTS,
    Environ,
    OssError,
    OssRequest,
    Response,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication

log = logging.getLogger(__name__)

#: Called once per created or removed object, after the write: (eventName, request, key, change).
Notify = Callable[[str, OssRequest, str, ObjectChange], None]

#: The sub-resources OSS shares with S3, which moto implements; other OSS ones answer 501.
_S3_SUBRESOURCES = frozenset({"acl", "tagging", "uploads", "uploadId", "partNumber", "delete", "objectMeta",
                              "cors", "lifecycle", "policy", "versioning", "versions", "location"})

#: Listings the layer answers itself from moto's state (moto's do not page as OSS does).
_MULTIPART_LISTS = {"ListMultipartUploads": multipart.list_uploads, "ListParts": multipart.list_parts}
#: OSS-only operations on sub-resources that moto does not have, which the layer does itself.
_ANSWERED_HERE = frozenset({"ListLiveChannel", "AppendObject"})
#: Operations whose x-oss-tagging header tags the object they create (an AppendObject's first
#: append only: later ones ignore it, see append.py).
_TAGGED_AT_CREATION = frozenset({"PutObject", "CopyObject", "InitiateMultipartUpload"})


class OssCompatApp:
    """WSGI middleware: verifies OSS auth, translates one OSS request into S3 for moto and back."""

    def __init__(self, *, inner: WSGIApplication, keyring: Keyring, region: str, account_id: str,
                 inner_host: Callable[[], str], notify: Notify, faults: OssFaults) -> None:
        self._inner = inner
        self._auth = OssAuthenticator(keyring, region=region)
        self._region = region
        self._account_id = account_id
        self._inner_host = inner_host
        self._notify = notify
        self._faults = faults
        self.requests = RequestCounts()
        # Object-creating and -removing requests take per-key locks (striped): "what is there?" and
        # the write are one atomic step, so x-oss-forbid-overwrite and notifications hold under
        # concurrency, as on OSS.
        self._key_locks = [threading.Lock() for _ in range(64)]
        self._forbid_overwrite_uploads: set[str] = set()

    # ------------------------------------------------------------------ WSGI entry point

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        req = OssRequest.from_environ(environ)
        self.requests.add(req.action)
        plan = NO_FAULT
        try:
            _reject_unsupported(req)
            self._auth.authenticate(req)
            plan = self._faults.plan(req)
            resp = self._perform(req, environ, plan)
        except OssError as err:
            resp = _error_response(err)
        except Exception:  # a bug here or in moto must still answer like OSS, not hang the client
            log.exception("LocalOss: %s /%s/%s failed", req.method, req.bucket, req.key)
            resp = _error_response(OssError(500, "InternalError", "LocalOss failed; see its log."))
        resp.set_header("x-oss-request-id", req.request_id)
        if resp.status >= 400:
            self._finish_error(req, resp)
        if plan.lose_answer:
            # The work is done; werkzeug closes a connection dropped this way without a byte sent.
            raise ConnectionAbortedError(f"LocalOss fault: answer to {req.method} /{req.bucket}/{req.key} lost")
        start_response(f"{resp.status} {HTTPStatus(resp.status).phrase}", resp.headers)
        return [resp.body] if resp.stream is None else resp.stream

    def _finish_error(self, req: OssRequest, resp: Response) -> None:
        """Stamp RequestId/HostId into the <Error>; a HEAD has no body, so OSS sends it base64 in x-oss-err."""
        body = xml_bodies.with_request_ids(resp.body, req.request_id, self._host_id(req))
        if req.method == "HEAD":
            resp.set_header("x-oss-err", base64.b64encode(body).decode("ascii"))
            body = b""
        resp.body = body
        resp.set_header("Content-Type", "application/xml")
        resp.set_header("Content-Length", str(len(body)))

    def _host_id(self, req: OssRequest) -> str:
        host = f"oss-{self._region}.aliyuncs.com"
        return f"{req.bucket}.{host}" if req.bucket else host

    # ------------------------------------------------------------------ dispatch

    def _perform(self, req: OssRequest, environ: Environ, plan: Plan) -> Response:
        if plan.delay_s:
            time.sleep(plan.delay_s)
        if plan.error is not None:
            raise plan.error
        return self._handle(req, environ)

    def _handle(self, req: OssRequest, environ: Environ) -> Response:
        op = req.operation
        _check_names(req)
        if op == "UploadPartCopy":
            _close_open_copy_range(req)
        if op == "PutBucket":
            names.check_bucket_name(req.bucket)
            # OSS's optional body (<CreateBucketConfiguration><StorageClass>) is not S3's
            # LocationConstraint; moto would reject it. Buckets are always Standard locally.
            return self._forward(req, environ, body=b"")
        if op == "InitiateMultipartUpload":
            return self._initiate_multipart(req, environ)
        if op in _MULTIPART_LISTS:
            return _xml_response(_MULTIPART_LISTS[op](req, _existing_bucket(req.bucket)))
        if op == "ListLiveChannel":
            _existing_bucket(req.bucket)
            return _xml_response(xml_bodies.empty_live_channel_list(req))
        if op == "UploadPart":
            return self._upload_part(req, environ)
        if op == "AbortMultipartUpload":
            with self._locked(req.bucket, [req.key]):  # not while a Complete joins the parts
                return self._forward(req, environ)
        if op in CREATE_EVENTS:
            return self._create_object(req, environ, op)
        if op in REMOVE_EVENTS:
            return self._remove_objects(req, environ, op)
        return self._forward(req, environ)

    def _create_object(self, req: OssRequest, environ: Environ, op: str) -> Response:
        """PutObject / CopyObject / CompleteMultipartUpload / AppendObject: forbid-overwrite, then CRC and notify."""
        completing = op == "CompleteMultipartUpload"
        body = (multipart.complete_body(req, _checked_body(req, environ), _existing_bucket(req.bucket))
                if completing else None)
        upload_id = req.param("uploadId") or ""
        forbid = req.forbids_overwrite or (completing and upload_id in self._forbid_overwrite_uploads)
        with self._locked(req.bucket, [req.key]):
            before = _stat(req.bucket, req.key)
            if forbid and before is not None:
                raise _already_exists()
            resp, crc = self._write(req, environ, op, body)
            obj = _current(req.bucket, req.key) if resp.status == 200 else None
            if obj is not None:
                if crc is not None:
                    crc64.remember(obj, crc)
                resp.set_header(crc64.HEADER, str(crc64.of(obj)))
                size, etag = obj.size, obj.etag.strip('"').upper()
                self._notify(CREATE_EVENTS[op], req, req.key, ObjectChange(etag, size, size - (before or (0, ""))[0]))
                if completing:
                    self._forbid_overwrite_uploads.discard(upload_id)
        # oss2 reads the ETag of a copy or a completed upload from the header; S3 puts it in the body.
        if resp.status == 200 and resp.header("ETag") is None:
            node = xml_bodies.parse(resp.body).find("ETag")
            resp.set_header("ETag", node.text if node is not None else None)
        return resp

    def _write(self, req: OssRequest, environ: Environ, op: str, body: bytes | None) -> tuple[Response, int | None]:
        """Store the object ``op`` creates: (the answer, its CRC when known without reading it back).
        A PutObject's streams through a CrcReader, a completed upload's combines its parts' CRCs, an
        append's extends the old one; a copy's is computed on first demand."""
        if op == "AppendObject":
            return append.append(req, environ, _current(req.bucket, req.key), self._forward, moto_backend())
        if op == "PutObject":
            environ["wsgi.input"] = reader = crc64.CrcReader(environ["wsgi.input"])
            return self._forward(req, environ), reader.crc
        if op == "CompleteMultipartUpload":
            # Taken first: moto disposes of the parts' data once it has completed the upload.
            crc = multipart.completed_crc(body or b"", multipart.upload_of(req, _existing_bucket(req.bucket)))
            return self._forward(req, environ, body=body), crc
        return self._forward(req, environ), None

    def _upload_part(self, req: OssRequest, environ: Environ) -> Response:
        """UploadPart: Content-MD5 checked (moto does not), the part's CRC kept and answered."""
        if "content-md5" in req.headers:
            body = _checked_body(req, environ)
            resp, crc = self._forward(req, environ, body=body), crc64.of_bytes(body)
        else:
            environ["wsgi.input"] = reader = crc64.CrcReader(environ["wsgi.input"])
            resp, crc = self._forward(req, environ), reader.crc
        part = multipart.uploaded_part(req, _existing_bucket(req.bucket)) if resp.status == 200 else None
        if part is not None:
            crc64.remember(part, crc)
            resp.set_header(crc64.HEADER, str(crc))
        return resp

    def _remove_objects(self, req: OssRequest, environ: Environ, op: str) -> Response:
        """DeleteObject / DeleteObjects: a removal record for each named key that is gone afterwards
        (a missing key too: OSS answers success for it)."""
        batch = op == "DeleteMultipleObjects"
        quiet, keys = _delete_request(_checked_body(req, environ)) if batch else (True, [req.key])
        with self._locked(req.bucket, keys):
            freed = {key: (_stat(req.bucket, key) or (0, ""))[0] for key in keys}
            resp = _delete_batch(req, keys, quiet) if batch else self._forward(req, environ)
            if resp.status in (200, 204):
                for key in keys:
                    if _stat(req.bucket, key) is None:
                        self._notify(REMOVE_EVENTS[op], req, key, ObjectChange.removal(freed[key]))
        return resp

    @contextlib.contextmanager
    def _locked(self, bucket: str, keys: Iterable[str]) -> Iterator[None]:
        """Hold the lock stripes of these keys, taken in stripe order so that two batches cannot deadlock."""
        stripes = sorted({hash((bucket, key)) % len(self._key_locks) for key in keys})
        with contextlib.ExitStack() as held:
            for stripe in stripes:
                held.enter_context(self._key_locks[stripe])
            yield

    def _initiate_multipart(self, req: OssRequest, environ: Environ) -> Response:
        """Reject early if forbid-overwrite and the key exists; remember it for the Complete."""
        forbid = req.forbids_overwrite
        if forbid and _stat(req.bucket, req.key) is not None:
            raise _already_exists()
        resp = self._forward(req, environ)
        if resp.status == 200:
            upload_id = xml_bodies.parse(resp.body).findtext("UploadId") or ""
            multipart.stamp_initiated(_existing_bucket(req.bucket), upload_id)
            if forbid:
                self._forbid_overwrite_uploads.add(upload_id)
        return resp

    # ------------------------------------------------------------------ moto round trip

    def _forward(self, req: OssRequest, environ: Environ, body: bytes | None = None) -> Response:
        """Send the request to moto as S3, and turn moto's answer into an OSS answer."""
        if body is None and req.method in ("GET", "HEAD"):
            # A GET's body is never read, as OSS ignores it: clients may declare a Content-Length
            # without sending one (oss2 signs it as an additional header with a signed GET URL), and
            # reading would wait for bytes that never come. werkzeug closes every connection after
            # its answer, so unread bytes cannot be taken for the next request.
            body = b""
        inner = translation.s3_environ(req, environ, body, host=self._inner_host())
        return self._to_oss_response(req, self._call_inner(inner, stream=req.operation == "GetObject"))

    def _call_inner(self, environ: Environ, stream: bool = False) -> Response:
        """moto's answer; with ``stream``, a successful one keeps its body as moto's iterable
        (an object's file, read as werkzeug sends it: see ``storage``)."""
        captured: list[tuple[int, list[tuple[str, str]]]] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: object = None) -> Callable[[bytes], object]:
            captured.append((int(status.split(" ", 1)[0]), list(headers)))
            return chunks.append

        result = self._inner(environ, start_response)
        if stream and captured and captured[-1][0] in (200, 206):
            return Response(*captured[-1], stream=result)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured[-1]
        return Response(status, headers, b"".join(chunks))

    def put_bucket(self, bucket: str) -> Response:
        """Create a bucket through moto's S3 API, bypassing OSS auth (for LocalOss.create_bucket)."""
        names.check_bucket_name(bucket)
        headers = [("Host", self._inner_host()), ("Authorization", translation.VERIFIED_AUTHORIZATION)]
        environ = EnvironBuilder(path="/" + quote(bucket, safe=""), method="PUT", headers=headers).get_environ()
        return self._to_oss_response(OssRequest("PUT", bucket, "", [], {}, "127.0.0.1"), self._call_inner(environ))

    # ------------------------------------------------------------------ S3 answer -> OSS answer

    def _to_oss_response(self, req: OssRequest, s3: Response) -> Response:
        resp = Response(s3.status, translation.oss_headers(s3.headers), s3.body, s3.stream)
        op = req.operation
        if op in ("GetObject", "HeadObject") and s3.status in (200, 206, 304):
            obj = _current(req.bucket, req.key)
            appendable = obj is not None and append.is_appendable(obj)
            resp.set_header("x-oss-object-type", "Appendable" if appendable else
                            xml_bodies.object_type(resp.header("ETag") or ""))
            if obj is not None:
                resp.set_header(crc64.HEADER, str(crc64.of(obj)))
            if resp.header("x-oss-storage-class") is None:
                resp.set_header("x-oss-storage-class", "Standard")
        if s3.status >= 300 and s3.status != 304:
            resp.body = _oss_error_body(req, s3)
            resp.set_header("Content-Type", "application/xml")
        elif op != "GetObject" and s3.body.lstrip().startswith(b"<"):
            resp.body = xml_bodies.oss_xml_body(req, s3.body, account_id=self._account_id, region=self._region)
        bodiless = req.method == "HEAD" or resp.stream is not None  # moto's Content-Length says the length
        length = s3.header("Content-Length") if bodiless else str(len(resp.body))
        resp.set_header("Content-Length", length)
        if op == "GetObject" and s3.status == 200:
            translation.compress_if_accepted(req, resp)
        return resp


def _reject_unsupported(req: OssRequest) -> None:
    """OSS-only APIs moto would misread (a PUT ?symlink would store an empty object): say so."""
    if req.operation == "PostObject":
        raise OssError(501, "NotImplemented", "LocalOss does not implement PostObject (HTML form "
                                              "upload); use PutObject or a signed PUT URL.")
    if req.param("x-oss-process") is not None:
        raise OssError(501, "NotImplemented", "LocalOss does not implement data processing (x-oss-process: "
                                              "image, video, document processing).")
    unsupported = sorted(k for k, _ in req.query if k in CONTROL_SUBRESOURCES - _S3_SUBRESOURCES)
    if unsupported and req.operation not in _ANSWERED_HERE:
        raise OssError(501, "NotImplemented", f"LocalOss does not implement the OSS sub-resource(s) {unsupported}.")


def _checked_body(req: OssRequest, environ: Environ) -> bytes:
    """The request body, refused if it does not match its Content-MD5."""
    raw = get_input_stream(environ).read()
    md5 = req.headers.get("content-md5")
    if md5 and base64.b64encode(hashlib.md5(raw).digest()).decode() != md5:
        raise OssError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    return raw


def _delete_request(body: bytes) -> tuple[bool, list[str]]:
    """(Quiet, the keys a DeleteObjects body names, each once, in order)."""
    root = xml_bodies.parse_request_body(body)
    return (root.findtext("Quiet") or "").strip().lower() == "true", list(
        dict.fromkeys(node.text or "" for node in root.iterfind("Object/Key")))


def _delete_batch(req: OssRequest, keys: list[str], quiet: bool) -> Response:
    """DeleteObjects, done here rather than by moto: its XML parser refuses the control characters
    that oss2 sends raw in keys (and OSS accepts)."""
    _existing_bucket(req.bucket)
    for key in keys:
        moto_backend().delete_object(req.bucket, key)
    url_encoded = req.param("encoding-type") == "url"
    return _xml_response(xml_bodies.delete_result([] if quiet else keys, url_encoded=url_encoded))


def _already_exists() -> OssError:
    return OssError(409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten.")


def _oss_error_body(req: OssRequest, s3: Response) -> bytes:
    """moto's S3 error as an OSS <Error>; moto's HEAD 404 has no body, so say what is missing."""
    code, message, extra = xml_bodies.s3_error_fields(s3.status, s3.body)
    if s3.status == 404 and not s3.body.strip():
        if not req.key or not _bucket_exists(req.bucket):
            return xml_bodies.error_xml("NoSuchBucket", "The specified bucket does not exist.", BucketName=req.bucket)
        return xml_bodies.error_xml("NoSuchKey", "The specified key does not exist.", Key=req.key)
    return xml_bodies.error_xml(code, message or code, **extra)


def _xml_response(body: bytes) -> Response:
    return Response(200, [("Content-Type", "application/xml")], body)


def _error_response(err: OssError) -> Response:
    body = xml_bodies.error_xml(err.code, err.message, **err.extra)
    return Response(err.status, [("Content-Type", "application/xml"), *err.headers.items()], body)


def _check_names(req: OssRequest) -> None:
    """The object name and the tags of an object being created, refused where OSS refuses them."""
    if req.key:
        names.check_object_name(req.key)
    if req.operation in _TAGGED_AT_CREATION and "x-oss-tagging" in req.headers:
        names.check_tagging(req.headers["x-oss-tagging"])


def _close_open_copy_range(req: OssRequest) -> None:
    """moto copies the whole source for an open-ended part-copy range (``bytes=N-``), silently: close
    the range at the source's last byte."""
    match = re.fullmatch(r"bytes=(\d+)-", req.headers.get("x-oss-copy-source-range", "").strip())
    if match is None:
        return
    source = unquote(req.headers.get("x-oss-copy-source", "")).split("?", 1)[0]
    source_bucket, _, source_key = source.lstrip("/").partition("/")
    obj = _current(source_bucket, source_key)
    if obj is not None and int(match[1]) < obj.size:
        req.headers["x-oss-copy-source-range"] = f"bytes={match[1]}-{obj.size - 1}"


def moto_backend() -> moto.s3.models.S3Backend:
    """The moto S3 backend our forwarded requests land in: moto picks the account from
    MOTO_ACCOUNT_ID, else (our marker Authorization is no IAM key) its default account."""
    return moto.s3.models.s3_backends[os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)]["aws"]


def _current(bucket: str, key: str) -> moto.s3.models.FakeKey | None:
    """The object's current version, or None. Read from moto's state directly: a HEAD through the
    WSGI app costs ~1 ms, and every object creation needs two of them."""
    try:
        return moto_backend().get_object(bucket, key)
    except S3ClientError:  # MissingBucket
        return None


def _stat(bucket: str, key: str) -> tuple[int, str] | None:
    """(size, upper-case ETag) of an object, or None."""
    obj = _current(bucket, key)
    return None if obj is None else (obj.size, obj.etag.strip('"').upper())


def _bucket_exists(bucket: str) -> bool:
    try:
        moto_backend().get_bucket(bucket)
    except S3ClientError:
        return False
    return True


def _existing_bucket(bucket: str) -> moto.s3.models.FakeBucket:
    try:
        return moto_backend().get_bucket(bucket)
    except S3ClientError:
        raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket) from None
