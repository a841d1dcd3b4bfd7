"""OSS's ``x-oss-hash-crc64ecma``: the CRC-64/ECMA of an object, which the SDKs compare with their own.

The CRC is computed as the body streams into moto (:class:`CrcReader`) and kept on moto's object, so
GET and HEAD answer it without reading the object again; a completed multipart upload combines its
parts' CRCs, as OSS does. Objects created another way (a copy, the admin ``put_objects``) get theirs
computed once, on first demand, a chunk at a time. The polynomial and the combination are oss2's
own (``oss2.utils.Crc64``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

from moto.s3.models import FakeKey
from oss2.utils import Crc64

from localcloud.oss import storage

HEADER = "x-oss-hash-crc64ecma"
#: Where the CRC is kept on moto's FakeKey (an object, or a part of a multipart upload).
_ATTRIBUTE = "oss_hash_crc64ecma"


class CrcReader:
    """A request body stream that computes the CRC-64 of what has been read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._crc = Crc64()

    @property
    def crc(self) -> int:
        return int(self._crc.crc)

    def read(self, size: int = -1) -> bytes:
        return self._counted(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._counted(self._stream.readline(size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def _counted(self, data: bytes) -> bytes:
        self._crc.update(data)
        return data


def of_bytes(data: bytes) -> int:
    crc = Crc64()
    crc.update(data)
    return int(crc.crc)


def extended(crc: int, data: bytes) -> int:
    """The CRC of some data followed by ``data``, from the first one's CRC."""
    return int(Crc64().combine(crc, of_bytes(data), len(data)))


def remember(obj: FakeKey, crc: int) -> None:
    setattr(obj, _ATTRIBUTE, crc)


def of(obj: FakeKey) -> int:
    """The object's CRC: the one kept at write time, else computed now and kept."""
    crc = getattr(obj, _ATTRIBUTE, None)
    if crc is None:
        computed = Crc64()
        for chunk in storage.chunks(obj):
            computed.update(chunk)
        crc = int(computed.crc)
        remember(obj, crc)
    return int(crc)


def combined(parts: Iterable[FakeKey]) -> int:
    """The CRC of the parts' concatenation, from their CRCs and sizes (as oss2's calc_obj_crc_from_parts)."""
    combiner, crc = Crc64(), 0
    for part in parts:
        crc = combiner.combine(crc, of(part), part.size)
    return int(crc)
