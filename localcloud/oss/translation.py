"""OSS on the wire to S3 for moto, and moto's S3 headers back to OSS's.

OSS uses ``x-oss-*`` where S3 uses ``x-amz-*`` (``x-oss-meta-*``, ``x-oss-copy-source``,
``x-oss-metadata-directive``...): requests are renamed on the way in, responses on the way out.
ListObjects (v1) is asked of moto as v2, because moto's v1 repeats every common prefix on every page.
"""

from __future__ import annotations

import gzip
import io
from urllib.parse import quote

from localcloud.oss.auth import AUTH_HEADERS, QUERY_AUTH_PARAMS
from localcloud.oss.wire import Environ, OssRequest, Response, text_to_wsgi
from localcloud.oss.xml_bodies import oss_storage_class

#: What moto sees instead of the OSS Authorization: moto treats a request without one as anonymous
#: and applies S3 object ACLs to it, but the layer has already authenticated the request.
VERIFIED_AUTHORIZATION = "AWS LOCALOSS:verified-by-localcloud-oss"
#: Paging parameters oss2 sends empty on a first page, meaning "absent".
_EMPTY_MEANS_ABSENT = frozenset({"prefix", "delimiter", "marker", "continuation-token", "start-after",
                                 "part-number-marker", "key-marker", "upload-id-marker"})
#: x-oss-* request headers the layer consumes itself instead of renaming them for moto.
_CONSUMED_HEADERS = AUTH_HEADERS | {"x-oss-forbid-overwrite"}
#: x-oss-* headers whose S3 name is not just the prefix swapped.
_SPECIAL_HEADER_NAMES = {"x-oss-object-acl": "x-amz-acl"}
#: Request headers carrying an ETag: OSS ETags are upper case, moto's are lower case.
_ETAG_REQUEST_HEADERS = (
    "if-match",
    "if-none-match",
    "x-oss-copy-source-if-match",
    "x-oss-copy-source-if-none-match",
)
#: Object types OSS gzips on a GET that accepts it (text, JSON, XML, JavaScript), from this size on.
_COMPRESSIBLE_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
                       "application/x-javascript")
MIN_COMPRESSED_SIZE = 1024
#: What an upload without a Content-Type is stored as (SDKs pick one by extension; a bare PUT has none).
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: moto's response headers that OSS does not send (Content-Length is set once the body is final).
_DROPPED_RESPONSE_HEADERS = frozenset({"x-amz-request-id", "x-amz-id-2", "x-amzn-requestid", "server",
                                       "content-length"})


def s3_environ(req: OssRequest, environ: Environ, body: bytes | None, *, host: str) -> Environ:
    """The WSGI environ of ``req`` as an S3 request to moto; ``body`` replaces the request's."""
    inner = {k: v for k, v in environ.items()
             if not (k.startswith("HTTP_X_OSS_") or k in ("HTTP_AUTHORIZATION", "HTTP_CONTENT_MD5"))}
    inner["HTTP_HOST"] = host
    inner["HTTP_AUTHORIZATION"] = VERIFIED_AUTHORIZATION
    for name, value in req.headers.items():
        if name.startswith("x-oss-") and name not in _CONSUMED_HEADERS:
            inner[_environ_name(_s3_header_name(name))] = text_to_wsgi(value)
    if "content-md5" in req.headers and body is None:
        inner["HTTP_CONTENT_MD5"] = req.headers["content-md5"]
    for name in _ETAG_REQUEST_HEADERS:
        if name in req.headers:
            inner[_environ_name(_s3_header_name(name))] = req.headers[name].lower()
    if req.operation in ("PutObject", "InitiateMultipartUpload") and not environ.get("CONTENT_TYPE"):
        inner["CONTENT_TYPE"] = DEFAULT_CONTENT_TYPE  # moto's default is S3's binary/octet-stream
    inner["QUERY_STRING"] = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in s3_query(req))
    if body is not None:
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner.pop("HTTP_TRANSFER_ENCODING", None)
        inner.pop("wsgi.input_terminated", None)
    return inner


def compress_if_accepted(req: OssRequest, resp: Response) -> None:
    """OSS's HTTP compression: a whole text-like object of 1 KB or more, asked with ``Accept-Encoding:
    gzip``, comes gzipped and chunked (no Content-Length; werkzeug then sends it chunked)."""
    content_type = (resp.header("Content-Type") or "").lower()
    size = len(resp.body) if resp.stream is None else int(resp.header("Content-Length") or 0)
    if ("gzip" not in req.headers.get("accept-encoding", "") or "range" in req.headers
            or resp.header("Content-Encoding") or not content_type.startswith(_COMPRESSIBLE_TYPES)
            or size < MIN_COMPRESSED_SIZE):
        return
    if resp.stream is not None:  # a streamed GET (see storage): compressed whole, as OSS does it
        resp.body, resp.stream = b"".join(resp.stream), None
    resp.body = gzip.compress(resp.body)
    resp.set_header("Content-Encoding", "gzip")
    resp.set_header("Content-Length", None)


def _s3_header_name(oss_name: str) -> str:
    return _SPECIAL_HEADER_NAMES.get(oss_name, oss_name.replace("x-oss-", "x-amz-", 1))


def _environ_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def s3_query(req: OssRequest) -> list[tuple[str, str]]:
    """The query for moto: no auth parameters, no empty paging parameters, encoding done by us."""
    query = [(k, v) for k, v in req.query if _forwarded(k, v)]
    if req.operation == "ListObjects":
        # moto's v1 listing pages the keys but repeats every common prefix on every page; its
        # v2 pages both together. Serve v1 from v2 (marker == start-after); see _v2_listing_as_v1.
        query = [("start-after" if k == "marker" else k, v) for k, v in query]
        query += [("list-type", "2"), ("fetch-owner", "true")]
    return query


def _forwarded(name: str, value: str) -> bool:
    if name in QUERY_AUTH_PARAMS or name == "encoding-type":
        return False
    # oss2 always sends prefix/marker/continuation-token/part-number-marker, empty on the
    # first page; OSS reads empty as absent, moto rejects an empty token or part marker.
    if value == "" and name in _EMPTY_MEANS_ABSENT:
        return False
    # moto reads fetch-owner=false as true; OSS omits Owner unless it is "true".
    return not (name == "fetch-owner" and value.lower() != "true")


def oss_headers(s3_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """moto's response headers with OSS names and values (x-oss-*, upper-case ETag, storage class)."""
    headers: list[tuple[str, str]] = []
    for name, value in s3_headers:
        lower = name.lower()
        if lower in _DROPPED_RESPONSE_HEADERS:
            continue
        if lower.startswith("x-amz-"):
            name = lower = "x-oss-" + lower[len("x-amz-"):]
        if lower == "etag":
            value = value.upper()
        if lower == "x-oss-storage-class":
            value = oss_storage_class(value)
        headers.append((name, value))
    return headers
