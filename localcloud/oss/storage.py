"""Objects on disk: every moto S3 key keeps its bytes in a file of its own, never whole in memory.

moto 5.2.5 keeps a key's value in a ``SpooledTemporaryFile`` and reads it whole whenever it needs
it: CompleteMultipartUpload joins the parts in a ``bytearray`` (and once more for its default
CRC64 checksum), GET reads the whole value and slices the range out of it, CopyObject and
UploadPartCopy copy the whole value. A 1.5 GB upload took the local cloud to 7 GB of memory and a
1 MiB range GET of it 0.95 s. :func:`install` changes that, with moto still serving the API:

* a key's value buffer is an :class:`ObjectFile`, a file in ``<root>/objects/`` opened only
  while moto reads or writes it (its own, deleted when moto disposes of the key); a new value is
  written to it, a joined multipart upload is adopted as it is. Values up to
  :data:`IN_MEMORY_MAX` stay in memory, unless the objects are kept in a data dir;
* CompleteMultipartUpload joins the part files into the object's file 1 MiB at a time, with
  moto's checks and moto's ETag (the MD5 of the part MD5s, ``-<parts>``); moto's S3 checksum is
  only computed when the upload asked for one (OSS clients never do);
* while moto answers a GET, copies an object or copies a part, a key's ``value`` is a
  :class:`FileView` of its file instead of bytes: moto takes its length and slices the range out
  of it as it does from bytes, a copy streams from view to file, and the layer
  (``compat.OssCompatApp``) hands a GET's view to werkzeug, which streams it. A range GET reads
  the range, not the object.

:class:`SavedObjects` keeps a record per object beside the files (``--data-dir``), so a restarted
local cloud serves the same objects.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeGuard

import moto.s3.models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart, MultipartChecksumBuilder, S3Backend
from moto.s3.responses import S3Response

#: How much of an object is in memory at once while it is joined, copied or served.
CHUNK_SIZE = 1024 * 1024
#: Values up to this size stay in memory, as moto keeps them (a file per object costs ~0.25 ms to
#: create, which made seeding 100,000 small objects five times slower), unless the objects are
#: kept in a data dir: then every value is a file.
IN_MEMORY_MAX = 1024 * 1024

_moto_value = FakeKey.value
_moto_dispose = FakeKey.dispose
_moto_get_object_response = S3Response.get_object
_moto_copy_object = S3Backend.copy_object
_moto_upload_part_copy = S3Backend.upload_part_copy
_moto_key_response = S3Response.key_response


@dataclass(frozen=True)
class StoredFile:
    """A file already in the object folder that a key takes over as its value (a joined upload)."""

    path: str
    size: int


class ObjectFiles:
    """The folder the objects' files live in, and how many object bytes were read from them."""

    def __init__(self, root: Path, *, small_in_memory: bool) -> None:
        self.root = root
        self.small_in_memory = small_in_memory
        self.folder = root / "objects"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._read_lock = threading.Lock()
        self._bytes_read = 0
        self._watched: dict[str, int] = {}  # bytes read from each watched file (see watching)
        self.keep_files = False  # set at exit: the files of a data dir outlive the process
        self.restored = False  # the saved objects are restored once per process (see LocalOss)
        # Files a saved record names: a replaced key's file outlives the key until its record names
        # the new file, so a kill in between restarts with the old object (see SavedObjects.record).
        self.recorded: set[str] = set()

    @property
    def bytes_read(self) -> int:
        """Object bytes read from the files so far (what a GET cost, for tests)."""
        return self._bytes_read

    def count_read(self, n: int, path: Any = None) -> None:
        with self._read_lock:
            self._bytes_read += n
            if path in self._watched:
                self._watched[path] += n

    @contextlib.contextmanager
    def watching(self, paths: Iterable[str]) -> Iterator[dict[str, int]]:
        """The bytes read from each of ``paths`` while the block runs, whatever else the process reads
        (other servers of the same process share this folder: the total counts their reads too)."""
        with self._read_lock:
            watched = self._watched = {path: 0 for path in paths}
        try:
            yield watched
        finally:
            with self._read_lock:
                self._watched = {}

    def new_path(self) -> str:
        return str(self.folder / uuid.uuid4().hex)

    def owns(self, path: Any) -> TypeGuard[str]:
        """Whether ``path`` (a buffer's name: a path, an int or None) is a file of this folder."""
        return isinstance(path, str) and Path(path).parent == self.folder

    def join(self, parts: Iterable[FakeKey]) -> StoredFile:
        """One new file holding the parts' bytes in order, copied a chunk at a time."""
        path = self.new_path()
        with open(path, "wb") as joined:
            for part in parts:
                with part.lock:  # a part in memory or in its file: read through its buffer
                    part._value_buffer.seek(0)
                    shutil.copyfileobj(part._value_buffer, joined, CHUNK_SIZE)
            return StoredFile(path, joined.tell())


def chunks(key: FakeKey) -> Iterator[bytes]:
    """The key's bytes a chunk at a time, read through its buffer under its lock (moto's ``value``
    would read them whole into memory)."""
    files = _installed()
    with key.lock:
        key._value_buffer.seek(0)
        for chunk in iter(lambda: key._value_buffer.read(CHUNK_SIZE), b""):
            files.count_read(len(chunk), getattr(key._value_buffer, "name", None))
            yield chunk


class ObjectFile:
    """A key's value buffer: the file ``name``, opened only for the time of each call (a bucket of
    100,000 objects must not hold 100,000 descriptors). moto calls seek, read, write, truncate
    and close on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._position = 0

    def seek(self, position: int) -> int:
        self._position = position
        return position

    def read(self, size: int = -1) -> bytes:
        with open(self.name, "rb") as file:
            file.seek(self._position)
            data = file.read(size)
        self._position += len(data)
        return data

    def write(self, data: bytes) -> int:
        with open(self.name, "r+b") as file:
            file.seek(self._position)
            file.write(data)
        self._position += len(data)
        return len(data)

    def truncate(self, size: int | None = None) -> None:
        os.truncate(self.name, self._position if size is None else size)

    def close(self) -> None:
        """Nothing is open between calls; the file itself goes with the key (see ``_dispose``)."""


class FileView:
    """Bytes ``start`` to ``start + length`` of an object's file, standing in for the bytes moto
    would read: ``len``, truth and slices behave as on bytes; iterating reads it a chunk at a time."""

    def __init__(self, file: IO[bytes], start: int, length: int, files: ObjectFiles) -> None:
        self._file, self._start, self._length, self._files = file, start, length, files

    @classmethod
    def of(cls, key: FakeKey, files: ObjectFiles) -> FileView:
        # Its own descriptor: the view stays readable if the key is overwritten while it streams.
        return cls(open(key._value_buffer.name, "rb", buffering=0), 0, key.contentsize, files)  # noqa: SIM115

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, item: slice) -> FileView:
        start, stop, step = item.indices(self._length)
        if step != 1:
            raise ValueError("FileView slices are contiguous")
        return FileView(self._file, self._start + start, max(0, stop - start), self._files)

    def __iter__(self) -> Iterator[bytes]:
        offset, end = self._start, self._start + self._length
        while offset < end:
            chunk = os.pread(self._file.fileno(), min(CHUNK_SIZE, end - offset), offset)
            if not chunk:
                raise OSError(f"{self._file.name} ended at {offset} bytes, before {end}")
            self._files.count_read(len(chunk), self._file.name)
            offset += len(chunk)
            yield chunk

    def write_to(self, out: IO[bytes]) -> int:
        for chunk in self:
            out.write(chunk)
        return self._length


_files: ObjectFiles | None = None
_views = threading.local()
_install_lock = threading.Lock()


def install(data_dir: Path | None = None) -> ObjectFiles:
    """From now on, moto's keys live in files: under ``data_dir`` (kept at exit), else in a
    temporary folder removed at exit. moto's backend is one per process, so is the folder:
    installing again returns it, and naming another data dir is an error."""
    global _files
    with _install_lock:
        if _files is None:
            _files = ObjectFiles(data_dir or Path(tempfile.mkdtemp(prefix="localoss-")),
                                 small_in_memory=data_dir is None)
            atexit.register(_at_exit, _files, data_dir is None)
            _patch_moto()
        elif data_dir is not None and data_dir.resolve() != _files.root.resolve():
            raise ValueError(f"this process keeps its objects in {_files.root}; one folder per process "
                             "(moto's S3 backend is process-global)")
        return _files


def _at_exit(files: ObjectFiles, temporary: bool) -> None:
    files.keep_files = True  # keys disposed of from now on are being torn down, not deleted
    if temporary:
        shutil.rmtree(files.root, ignore_errors=True)


def _installed() -> ObjectFiles:
    if _files is None:
        raise RuntimeError("localcloud.oss.storage.install() has not been called")
    return _files


def _patch_moto() -> None:
    FakeKey.value = property(_get_value, _set_value)  # type: ignore[method-assign,assignment]
    FakeKey.dispose = _dispose  # type: ignore[method-assign,assignment]
    FakeMultipart.complete = _complete  # type: ignore[method-assign,assignment]
    S3Response.get_object = _with_file_views(_moto_get_object_response)  # type: ignore[method-assign]
    S3Backend.copy_object = _with_file_views(_moto_copy_object)  # type: ignore[method-assign]
    S3Backend.upload_part_copy = _with_file_views(_moto_upload_part_copy)  # type: ignore[method-assign]
    S3Response.key_response = _forgetting_request_body  # type: ignore[method-assign,assignment]


def _forgetting_request_body(response: S3Response, request: Any, *args: Any) -> Any:
    """moto's key_response, then the request forgets the body werkzeug cached on it: the request
    sits in a reference cycle, so each uploaded part's bytes would stay in memory until the next
    full garbage collection (a 300 MB upload held 300 MB)."""
    try:
        return _moto_key_response(response, request, *args)
    finally:
        vars(request).pop("data", None)  # werkzeug's cached_property
        request._cached_data = b""


def _with_file_views(method: Any) -> Any:
    """``method`` with key values read as FileViews for the time of the call, on this thread."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _views.depth = getattr(_views, "depth", 0) + 1
        try:
            return method(*args, **kwargs)
        finally:
            _views.depth -= 1
    return wrapped


def _get_value(key: FakeKey) -> bytes | FileView:
    files = _installed()
    if getattr(_views, "depth", 0) and files.owns(getattr(key._value_buffer, "name", None)):
        return FileView.of(key, files)
    value: bytes = _moto_value.fget(key)  # type: ignore[attr-defined]
    files.count_read(len(value), getattr(key._value_buffer, "name", None))
    return value


def _set_value(key: FakeKey, value: bytes | str | FileView | StoredFile) -> None:
    """moto's value setter: a small value stays in memory (unless the objects are kept), a bigger
    one goes to the key's own file; a joined upload's file is adopted as it is."""
    files = _installed()
    if isinstance(value, StoredFile):
        _drop_buffer(key, files)
        key._value_buffer = ObjectFile(value.path)  # type: ignore[assignment]
        key.contentsize = value.size
        return
    data = value.encode("utf-8") if isinstance(value, str) else value
    if files.small_in_memory and len(data) <= IN_MEMORY_MAX:
        _drop_buffer(key, files)
        key._value_buffer = io.BytesIO(data if isinstance(data, bytes) else b"".join(data))  # type: ignore[assignment]
        key.contentsize = len(data)
        return
    if not files.owns(getattr(key._value_buffer, "name", None)):
        _drop_buffer(key, files)
        key._value_buffer = ObjectFile(files.new_path())  # type: ignore[assignment]
    with open(key._value_buffer.name, "wb") as out:
        key.contentsize = data.write_to(out) if isinstance(data, FileView) else out.write(data)


def _drop_buffer(key: FakeKey, files: ObjectFiles) -> None:
    """Close the key's current buffer (moto's spooled one, or a file being replaced) for good."""
    buffer = key._value_buffer
    path = getattr(buffer, "name", None)
    buffer.close()
    if files.owns(path):
        Path(path).unlink(missing_ok=True)


def _dispose(key: FakeKey, garbage: bool = False) -> None:
    """moto's dispose, and the key's file is deleted (unless the process is exiting)."""
    path = getattr(key._value_buffer, "name", None)
    _moto_dispose(key, garbage)
    files = _files
    if files is not None and not files.keep_files and files.owns(path) and Path(path).name not in files.recorded:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _complete(upload: FakeMultipart, body: Iterator[tuple[int, str]]) -> tuple[StoredFile, str, Any]:
    """moto's FakeMultipart.complete, with the parts joined file to file instead of in memory."""
    parts = _listed_parts(upload, body)
    digests = b"".join(bytes.fromhex(part.etag.strip('"')) for part in parts)
    etag = f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"
    joined = _installed().join(parts)
    return joined, etag, _checksum(upload, parts)


def _listed_parts(upload: FakeMultipart, body: Iterator[tuple[int, str]]) -> list[FakeKey]:
    """The parts the CompleteMultipartUpload body lists, checked as moto checks them."""
    parts: list[FakeKey] = []
    for number, etag in body:
        part = upload.parts.get(number)
        if part is None or part.etag.strip('"') != etag.strip('"'):
            raise InvalidPart()
        if parts and parts[-1].contentsize < moto.s3.models.S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        parts.append(part)
    if not parts:
        raise MalformedXML
    return parts


def _checksum(upload: FakeMultipart, parts: list[FakeKey]) -> Any:
    """moto's S3 checksum of the upload, only when the upload asked for one (it reads every part)."""
    algorithm = upload.metadata.get("x-amz-checksum-algorithm")
    if not algorithm:
        return None
    builder = MultipartChecksumBuilder(algorithm, upload.metadata.get("x-amz-checksum-type"))
    for part in parts:
        builder.addPart(_moto_value.fget(part))  # type: ignore[attr-defined]
    return builder.build()


class SavedObjects:
    """One JSON record per object in ``<root>/records/<bucket>/``, written (temp file + rename)
    before the request that created it is answered and deleted with the object, so a restarted
    local cloud finds every object it acknowledged: its file, ETag, size, time and metadata.
    A bucket is kept while it holds objects. Versions, ACLs, tags and multipart uploads in
    progress are not kept."""

    def __init__(self, files: ObjectFiles) -> None:
        self._files = files
        self._records = files.root / "records"

    def _record_path(self, bucket: str, key: str) -> Path:
        return self._records / bucket / (hashlib.sha256(key.encode("utf-8")).hexdigest() + ".json")

    def record(self, backend: S3Backend, bucket: str, key: str) -> None:
        """Write (or, when the object is gone, delete) the record of ``bucket/key``; then delete the
        file the previous record named, which the replaced or deleted key left for it."""
        path = self._record_path(bucket, key)
        previous = json.loads(path.read_text("utf-8"))["file"] if path.is_file() else None
        obj = backend.get_object(bucket, key) if bucket in backend.buckets else None
        current = None if obj is None else Path(obj._value_buffer.name).name
        if obj is None:
            path.unlink(missing_ok=True)
        else:
            self._write(path, {"key": key, "file": current, "size": obj.size, "etag": obj.etag.strip('"'),
                               "last_modified": obj.last_modified.isoformat(),
                               "storage_class": obj.storage_class, "metadata": dict(obj.metadata)})
        if previous is not None and previous != current:
            self._files.recorded.discard(previous)
            (self._files.folder / previous).unlink(missing_ok=True)

    def _write(self, path: Path, record: dict[str, Any]) -> None:
        self._files.recorded.add(record["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temp, path)

    def restore(self, backend: S3Backend, create_bucket: Any) -> int:
        """Put every recorded object back into moto (buckets it already has are left as they are),
        and delete the files no record names (left by a kill between a write and its record).
        Call it once, before the first request; the number of objects restored."""
        restored = 0
        for folder in sorted(self._records.glob("*")) if self._records.is_dir() else []:
            for unfinished in folder.glob("*.tmp"):  # a kill between a record's write and its rename
                unfinished.unlink()
            records = [json.loads(path.read_text("utf-8")) for path in folder.glob("*.json")]
            if not records:  # a bucket is kept while it holds objects
                folder.rmdir()
                continue
            if folder.name not in backend.buckets:
                create_bucket(folder.name)
            for record in records:
                self._files.recorded.add(record["file"])
                restored += self._restore_one(backend, folder.name, record)
        for stray in self._files.folder.iterdir():
            if stray.name not in self._files.recorded:
                stray.unlink(missing_ok=True)
        return restored

    def _restore_one(self, backend: S3Backend, bucket: str, record: dict[str, Any]) -> int:
        data = self._files.folder / record["file"]
        if not data.is_file():
            return 0
        obj = backend.put_object(bucket, record["key"], StoredFile(str(data), record["size"]),  # type: ignore[arg-type]
                                 etag=record["etag"], storage=record["storage_class"], disable_notification=True)
        obj.set_metadata(record["metadata"])
        obj.last_modified = datetime.fromisoformat(record["last_modified"])  # naive UTC, as moto's
        return 1
