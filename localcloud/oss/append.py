"""AppendObject (``POST /key?append&position=N``), which S3 and so moto do not have.

The first append (position 0, no object yet) is stored by moto as a PUT of its body, with the
request's headers (type, metadata, tagging); each later one replaces the object's data with the old
data and the new appended, keeping the object's metadata, as OSS does. The object is marked
Appendable; a Normal or Multipart object refuses appends (409 ObjectNotAppendable), and a position
other than the current length is 409 PositionNotEqualToLength with the position to use.
OSS: https://help.aliyun.com/zh/oss/developer-reference/appendobject
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from moto.s3.models import FakeKey, S3Backend
from werkzeug.wsgi import get_input_stream

from localcloud.oss import crc64, names
from localcloud.oss.wire import Environ, OssError, OssRequest, Response

NEXT_POSITION_HEADER = "x-oss-next-append-position"
#: Where an object's "Appendable" mark is kept on moto's FakeKey.
_APPENDABLE = "oss_appendable"

Forward = Callable[[OssRequest, Environ, bytes], Response]


def is_appendable(obj: FakeKey) -> bool:
    return bool(getattr(obj, _APPENDABLE, False))


def append(req: OssRequest, environ: Environ, existing: FakeKey | None, forward: Forward,
           backend: S3Backend) -> tuple[Response, int]:
    """Append the request's body to ``existing`` (or create it); (the answer, the object's new CRC)."""
    position = req.param("position") or ""
    if not position.isdigit():
        raise OssError(400, "InvalidArgument", "position must be a non-negative integer.", ArgumentName="position")
    if existing is not None and not is_appendable(existing):
        raise OssError(409, "ObjectNotAppendable", "The object is not appendable.")
    length = existing.size if existing is not None else 0
    if int(position) != length:
        raise OssError(409, "PositionNotEqualToLength", "Position is not equal to file length.",
                       headers={NEXT_POSITION_HEADER: str(length)})
    data = get_input_stream(environ).read()
    if existing is None:
        if "x-oss-tagging" in req.headers:
            names.check_tagging(req.headers["x-oss-tagging"])
        resp = forward(dataclasses.replace(req, method="PUT", query=[]), {**environ, "REQUEST_METHOD": "PUT"}, data)
        crc = crc64.of_bytes(data)
    else:
        obj = backend.put_object(req.bucket, req.key, existing.value + data, disable_notification=True)
        obj.set_metadata(dict(existing.metadata))
        resp = Response(200, [("ETag", obj.etag.upper())])
        crc = crc64.extended(crc64.of(existing), data)
    if resp.status == 200:
        appended = backend.get_object(req.bucket, req.key)
        if appended is not None:
            setattr(appended, _APPENDABLE, True)
            resp.set_header(NEXT_POSITION_HEADER, str(appended.size))
    return resp, int(crc)
