"""moto's S3 XML answers rewritten as OSS answers them, and OSS's <Error> body.

moto answers in the S3 namespace, which oss2's ``find('IsTruncated')`` does not see: the namespace
is stripped, and what oss2 requires and S3 lacks is added (``Contents/Type``, the bucket
``Location``/endpoints of ListBuckets). ``encoding-type=url`` is done here, for the elements OSS
encodes, instead of relying on moto's partial support.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote

from localcloud.oss.wire import OssError, OssRequest

#: Elements that OSS URL-encodes when the request says ``encoding-type=url``.
URL_ENCODED_ELEMENTS = (
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
ERROR_CODE_BY_STATUS = {
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
#: Characters XML 1.0 does not allow (in text or as references), and the escape ``parse`` uses for them.
_ESCAPE, _ESCAPE_BASE = "\ue000", 0xE100
_FORBIDDEN_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ue000]")
_ESCAPED = re.compile("\ue000(.)", re.DOTALL)
_CHARACTER_REFERENCE = re.compile(r"&#(?:([0-9]+)|x([0-9a-fA-F]+));")
_STORAGE_CLASSES = {"STANDARD": "Standard", "STANDARD_IA": "IA", "GLACIER": "Archive", "DEEP_ARCHIVE": "ColdArchive"}


def oss_storage_class(s3_class: str) -> str:
    return _STORAGE_CLASSES.get(s3_class, s3_class)


def object_type(etag: str) -> str:
    """OSS's x-oss-object-type / Contents/Type: a multipart ETag has a ``-<parts>`` suffix."""
    return "Multipart" if "-" in etag else "Normal"


def parse(raw: bytes) -> ElementTree.Element:
    """Parse XML whose text may hold characters XML 1.0 forbids (a key with a control character:
    oss2 sends those raw in a DeleteObjects body, alibabacloud-oss-v2 as ``&#01;``, moto answers
    them raw in a listing), as OSS does.

    Each forbidden character, raw or referenced, and the escape character itself become the escape
    character and a shifted code point before parsing, restored after: the round trip holds for any text.
    """
    text = _FORBIDDEN_IN_XML.sub(lambda m: _escaped(ord(m.group())), raw.decode("utf-8"))
    escaped = _CHARACTER_REFERENCE.sub(_escaped_reference, text)
    root = ElementTree.fromstring(escaped.encode("utf-8"))
    for node in root.iter():
        node.text = _unescape(node.text)
        node.tail = _unescape(node.tail)
    return root


def parse_request_body(raw: bytes) -> ElementTree.Element:
    """A request's XML body, or OSS's 400 MalformedXML."""
    try:
        return parse(raw)
    except (ElementTree.ParseError, UnicodeDecodeError):
        raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None


def _escaped(code: int) -> str:
    return _ESCAPE + chr(_ESCAPE_BASE + code)


def _escaped_reference(match: re.Match[str]) -> str:
    code = int(match[1]) if match[1] else int(match[2], 16)
    return _escaped(code) if code <= 0x10FFFF and _FORBIDDEN_IN_XML.fullmatch(chr(code)) else match[0]


def _unescape(text: str | None) -> str | None:
    if text is None or _ESCAPE not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(ord(m.group(1)) - _ESCAPE_BASE), text)


def oss_xml_body(req: OssRequest, body: bytes, *, account_id: str, region: str) -> bytes:
    """Strip the S3 namespace and add the fields oss2 needs that S3 does not send."""
    root = _strip_namespaces(parse(body))
    _use_oss_values(root, account_id)
    if req.operation == "ListObjects":
        _v2_listing_as_v1(root, req.param("marker") or "")
    if root.tag == "ListAllMyBucketsResult":
        _add_bucket_locations(root, region, req.headers.get("host", ""))
    if req.param("encoding-type") == "url":
        _url_encode(root)
    return xml_bytes(root)


def _use_oss_values(root: ElementTree.Element, account_id: str) -> None:
    """Upper-case ETags, OSS storage-class names, the account as owner, Contents/Type."""
    for node in root.iter("ETag"):
        node.text = (node.text or "").upper()
    for node in root.iter("StorageClass"):
        node.text = oss_storage_class(node.text or "")
    for owner in root.iter("Owner"):
        for tag in ("ID", "DisplayName"):
            owner_field = owner.find(tag)
            if owner_field is not None:
                owner_field.text = account_id
    for contents in root.iter("Contents"):
        if contents.find("Type") is None:
            _insert_after(contents, "ETag", "Type", object_type(contents.findtext("ETag") or ""))


def _url_encode(root: ElementTree.Element) -> None:
    for path in URL_ENCODED_ELEMENTS:
        for node in root.findall(path):
            node.text = quote(node.text or "", safe="")
    if root.find("EncodingType") is None:
        ElementTree.SubElement(root, "EncodingType").text = "url"


def _add_bucket_locations(root: ElementTree.Element, region: str, endpoint: str) -> None:
    """Each bucket's region and endpoints; both endpoints are the local one (the Host asked), so a
    client that follows them (oss2's own test clean-up does) stays on LocalOss."""
    location = f"oss-{region}"
    for bucket in root.iter("Bucket"):
        for tag, text in (("Location", location), ("ExtranetEndpoint", endpoint), ("IntranetEndpoint", endpoint),
                          ("Region", region), ("StorageClass", "Standard")):
            if bucket.find(tag) is None:
                ElementTree.SubElement(bucket, tag).text = text


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


def delete_result(deleted: list[str], *, url_encoded: bool) -> bytes:
    """DeleteObjects' answer: the deleted keys (none in quiet mode)."""
    root = ElementTree.Element("DeleteResult")
    if url_encoded:
        ElementTree.SubElement(root, "EncodingType").text = "url"
    for key in deleted:
        node = ElementTree.SubElement(root, "Deleted")
        ElementTree.SubElement(node, "Key").text = quote(key, safe="") if url_encoded else key
    return xml_bytes(root)


def empty_live_channel_list(req: OssRequest) -> bytes:
    """ListLiveChannel: LocalOss has no RTMP live channels, so a bucket's list is always empty (SDK
    clean-ups list them before deleting a bucket)."""
    root = ElementTree.Element("ListLiveChannelResult")
    for tag in ("Prefix", "Marker"):
        ElementTree.SubElement(root, tag).text = req.param(tag.lower()) or ""
    ElementTree.SubElement(root, "MaxKeys").text = req.param("max-keys") or "100"
    ElementTree.SubElement(root, "IsTruncated").text = "false"
    ElementTree.SubElement(root, "NextMarker").text = ""
    return xml_bytes(root)


def s3_error_fields(status: int, body: bytes) -> tuple[str, str, dict[str, str]]:
    """(Code, Message, other elements) of moto's S3 error, which is XML, plain text or empty."""
    code, message = ERROR_CODE_BY_STATUS.get(status, "InternalError"), ""
    extra: dict[str, str] = {}
    text = body.decode("utf-8", "replace").strip()
    if not text.startswith("<"):
        return code, text, extra
    try:
        root = _strip_namespaces(parse(body))
    except ElementTree.ParseError:
        return code, text, extra
    for child in root:
        if child.tag == "Code":
            code = child.text or code
        elif child.tag == "Message":
            message = child.text or ""
        elif child.tag not in ("RequestID", "RequestId", "HostId") and not len(child):
            extra[child.tag] = child.text or ""
    return code, message, extra


def error_xml(code: str, message: str, **extra: str) -> bytes:
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = code
    ElementTree.SubElement(root, "Message").text = message
    for tag, text in extra.items():
        ElementTree.SubElement(root, tag).text = text
    return xml_bytes(root)


def with_request_ids(error_body: bytes, request_id: str, host_id: str) -> bytes:
    """The <Error> with RequestId and HostId after its Code and Message, where OSS puts them."""
    root = parse(error_body)
    for index, (tag, text) in enumerate((("RequestId", request_id), ("HostId", host_id)), 2):
        node = ElementTree.Element(tag)
        node.text = text
        root.insert(index, node)
    return xml_bytes(root)


def xml_bytes(root: ElementTree.Element) -> bytes:
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
