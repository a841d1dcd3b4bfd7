"""Multipart uploads where moto differs from OSS: the two listings, the Complete body, the CRC.

moto's ListMultipartUploads ignores the markers, ``max-uploads`` and the delimiter and sends no
``NextKeyMarker`` (oss2's parser requires it); its ListParts pages by list index rather than part
number: both are answered here from moto's state, in OSS's shapes. CompleteMultipartUpload may name
no parts (``x-oss-complete-all: yes``: all of them), and its object's CRC combines its parts'.
OSS: https://help.aliyun.com/zh/oss/developer-reference/listmultipartuploads,
https://help.aliyun.com/zh/oss/developer-reference/listparts and
https://help.aliyun.com/zh/oss/developer-reference/completemultipartupload
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from urllib.parse import quote

from moto.s3.models import FakeBucket, FakeKey, FakeMultipart

from localcloud.oss import crc64
from localcloud.oss.wire import OssError, OssRequest
from localcloud.oss.xml_bodies import parse_request_body, xml_bytes

#: OSS's default and largest page of uploads or parts.
MAX_PAGE = 1000
#: Where an upload's creation time is kept on moto's FakeMultipart (moto keeps none).
_INITIATED = "oss_initiated"


def stamp_initiated(bucket: FakeBucket, upload_id: str) -> None:
    """Remember when an upload was initiated, for ListMultipartUploads' ``Initiated``."""
    upload = bucket.multiparts.get(upload_id)
    if upload is not None:
        setattr(upload, _INITIATED, _now())


def upload_of(req: OssRequest, bucket: FakeBucket) -> FakeMultipart | None:
    """The upload a request's ``uploadId`` names, if it is in progress."""
    return bucket.multiparts.get(req.param("uploadId") or "")


def uploaded_part(req: OssRequest, bucket: FakeBucket) -> FakeKey | None:
    """The part an UploadPart request has stored."""
    upload, number = upload_of(req, bucket), req.param("partNumber") or ""
    return upload.parts.get(int(number)) if upload is not None and number.isdigit() else None


def complete_body(req: OssRequest, raw: bytes, bucket: FakeBucket) -> bytes:
    """The CompleteMultipartUpload body for moto: with ``x-oss-complete-all: yes`` and no body, every
    part uploaded, in order; oss2 echoes the upper-case part ETags we returned, moto wants lower case."""
    upload = upload_of(req, bucket)
    if not raw and req.headers.get("x-oss-complete-all", "").lower() == "yes" and upload is not None:
        root = ElementTree.Element("CompleteMultipartUpload")
        for number, part in sorted(upload.parts.items()):
            node = ElementTree.SubElement(root, "Part")
            _add(node, "PartNumber", str(number))
            _add(node, "ETag", part.etag)
    elif raw:
        root = parse_request_body(raw)
    else:
        return raw
    for node in root.iter("ETag"):
        node.text = (node.text or "").lower()
    return ElementTree.tostring(root, encoding="utf-8")


def completed_crc(body: bytes, upload: FakeMultipart | None) -> int:
    """The CRC of the object a Complete body makes: its parts' CRCs combined, in the order it names
    them. Taken before moto completes, as moto then disposes of the parts' data."""
    numbers = [int(n.text or "0") for n in parse_request_body(body).iter("PartNumber")] if body else []
    return crc64.combined(upload.parts[n] for n in numbers if upload is not None and n in upload.parts)


def list_uploads(req: OssRequest, bucket: FakeBucket) -> bytes:
    """The ListMultipartUploadsResult page the request asks for (markers, prefix, delimiter, max-uploads)."""
    prefix, delimiter = req.param("prefix") or "", req.param("delimiter") or ""
    key_marker, upload_id_marker = req.param("key-marker") or "", req.param("upload-id-marker") or ""
    limit = _page_size(req, "max-uploads")
    uploads = sorted((u for u in bucket.multiparts.values() if u.key_name.startswith(prefix)),
                     key=lambda u: (u.key_name, u.id))
    page, truncated = _page_after(_grouped(uploads, prefix, delimiter), key_marker, upload_id_marker, limit)
    encode = _encoder(req)
    root = ElementTree.Element("ListMultipartUploadsResult")
    next_key, next_upload_id = _position(page[-1]) if truncated else ("", "")
    _add(root, "Bucket", bucket.name)
    _add(root, "KeyMarker", encode(key_marker))
    _add(root, "UploadIdMarker", upload_id_marker)
    _add(root, "NextKeyMarker", encode(next_key))
    _add(root, "NextUploadIdMarker", next_upload_id)
    _add(root, "Delimiter", encode(delimiter))
    _add(root, "Prefix", encode(prefix))
    _add(root, "MaxUploads", str(limit))
    _add(root, "IsTruncated", "true" if truncated else "false")
    if req.param("encoding-type") == "url":
        _add(root, "EncodingType", "url")
    for entry in page:
        if isinstance(entry, str):
            _add(ElementTree.SubElement(root, "CommonPrefixes"), "Prefix", encode(entry))
            continue
        node = ElementTree.SubElement(root, "Upload")
        _add(node, "Key", encode(entry.key_name))
        _add(node, "UploadId", entry.id)
        _add(node, "StorageClass", "Standard")
        _add(node, "Initiated", getattr(entry, _INITIATED, None) or _now())
    return xml_bytes(root)


def list_parts(req: OssRequest, bucket: FakeBucket) -> bytes:
    """The ListPartsResult page after ``part-number-marker`` (a part number, not a position)."""
    upload_id = req.param("uploadId") or ""
    upload = bucket.multiparts.get(upload_id)
    if upload is None or upload.key_name != req.key:
        raise OssError(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be "
                       "invalid, or the upload may have been aborted or completed.", UploadId=upload_id)
    marker_text = req.param("part-number-marker") or "0"
    if not marker_text.isdigit():
        raise OssError(400, "InvalidArgument", "part-number-marker must be a part number.")
    marker, limit = int(marker_text), _page_size(req, "max-parts")
    after = sorted(number for number in upload.parts if number > marker)
    page, truncated = after[:limit], len(after) > limit
    encode = _encoder(req)
    root = ElementTree.Element("ListPartsResult")
    _add(root, "Bucket", bucket.name)
    _add(root, "Key", encode(req.key))
    _add(root, "UploadId", upload_id)
    _add(root, "StorageClass", "Standard")
    _add(root, "PartNumberMarker", str(marker))
    _add(root, "NextPartNumberMarker", str(page[-1]) if page else "")
    _add(root, "MaxParts", str(limit))
    _add(root, "IsTruncated", "true" if truncated else "false")
    if req.param("encoding-type") == "url":
        _add(root, "EncodingType", "url")
    for number in page:
        part = upload.parts[number]
        node = ElementTree.SubElement(root, "Part")
        _add(node, "PartNumber", str(number))
        _add(node, "LastModified", part.last_modified_ISO8601)
        _add(node, "ETag", part.etag.upper())
        _add(node, "Size", str(part.size))
    return xml_bytes(root)


def _now() -> str:
    """Now as OSS lists times: whole seconds and ``.000Z`` (what oss2's ``iso8601_to_unixtime`` parses)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _position(entry: FakeMultipart | str) -> tuple[str, str]:
    """(key, upload id) of an upload, (prefix, "") of a common prefix: what the markers compare with."""
    return (entry, "") if isinstance(entry, str) else (entry.key_name, entry.id)


def _page_after(entries: Iterator[FakeMultipart | str], key_marker: str, upload_id_marker: str,
                limit: int) -> tuple[list[FakeMultipart | str], bool]:
    """At most ``limit`` entries after the markers, and whether more follow. Without an upload-id
    marker every upload of the key marker is skipped; with one, only those up to it."""
    after = (key_marker, upload_id_marker or chr(0x10FFFF))  # chr(0x10FFFF): beyond any upload id
    page: list[FakeMultipart | str] = []
    for entry in entries:
        if _position(entry) <= after:
            continue
        if len(page) == limit:
            return page, True
        page.append(entry)
    return page, False


def _grouped(uploads: list[FakeMultipart], prefix: str, delimiter: str) -> Iterator[FakeMultipart | str]:
    """Uploads in key order, those under a common prefix rolled up into it (once)."""
    last_folder = None
    for upload in uploads:
        cut = upload.key_name.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            yield upload
            continue
        folder = upload.key_name[:cut + len(delimiter)]
        if folder != last_folder:
            last_folder = folder
            yield folder


def _page_size(req: OssRequest, name: str) -> int:
    text = req.param(name) or str(MAX_PAGE)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise OssError(400, "InvalidArgument", f"{name} must be between 1 and {MAX_PAGE}.", ArgumentName=name)
    return int(text)


def _encoder(req: OssRequest) -> Callable[[str], str]:
    """What names go through: URL-encoded when the request says ``encoding-type=url``, as OSS does."""
    if req.param("encoding-type") == "url":
        return lambda text: quote(text, safe="")
    return str


def _add(parent: ElementTree.Element, tag: str, text: str) -> None:
    ElementTree.SubElement(parent, tag).text = text
