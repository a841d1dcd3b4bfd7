"""The index.json document: the durable record of a video's snapshots (``snapshot-index/2``).

One index per source object lists every profile's result of its current version under
``profiles.<name>`` (``job``, ``snapshots``, ``sprite``/``webvtt``): each result is written once to its
own object (``snapshot-result/1``) and the index is composed from them (:mod:`.compose`). Object keys
are the durable reference; the signed URLs are a convenience that expires (``url_expires_at``).
Schema: ``schemas/snapshot-index-2.json``. A ``snapshot-index/1`` document (one job, at the top
level) is read as the result of the profile ``default`` (:func:`profile_result`).

What ICE reports is only the list of image URLs, so the rest is derived and marked as such:
- ``time`` of a snapshot: read from the WebVTT cues for WebVtt jobs; for stills and sprite
  tiles, the *requested* time ``Time + (n-1) * Interval`` when the job's config has an
  Interval; otherwise unknown (null).
- sprite geometry: Columns, Lines, Padding, Margin from the job's config; the cell size from
  CellWidth/CellHeight, else Width/Height, else measured from the first sheet's pixel size.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from .domain import DEFAULT_PROFILE, JobStatus, SnapshotJob, SnapshotType, SnapshotUrls, Upload, iso

SCHEMA = "snapshot-index/2"
LEGACY_SCHEMA = "snapshot-index/1"
RESULT_SCHEMA = "snapshot-result/1"
#: ``read(bucket, key, max_bytes)``: the first bytes of an object, or None when it does not exist.
ReadHead = Callable[[str, str, int], "bytes | None"]


def object_of_url(url: str, bucket: str) -> tuple[str, str]:
    """The (bucket, key) a signed OSS URL points at: virtual-hosted or path-style."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    host = parts.hostname or ""
    if host.startswith(bucket + "."):
        return bucket, path.lstrip("/")
    first, _, rest = path.lstrip("/").partition("/")
    return first, rest


def url_expiry(url: str, now: float, timeout_s: int) -> str:
    """When a signed URL stops working: V1 ``Expires``, V4 ``x-oss-date`` + ``x-oss-expires``."""
    query = parse_qs(urlsplit(url).query)
    if "Expires" in query:
        return iso(int(query["Expires"][0]))
    if "x-oss-expires" in query and "x-oss-date" in query:
        start = datetime.strptime(query["x-oss-date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        return iso(start.timestamp() + int(query["x-oss-expires"][0]))
    return iso(now + timeout_s)


def jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a JPEG (its SOF marker), without decoding it."""
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker, length = head[i + 1], struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


_CUE = re.compile(r"^(\d+:)?(\d{2}):(\d{2})\.(\d{3})\s+-->\s+(\d+:)?(\d{2}):(\d{2})\.(\d{3})")


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int((h or "0:")[:-1]) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> list[dict[str, Any]]:
    """Cues of a WebVTT storyboard: start, end, and the image reference (path, optional xywh)."""
    cues, lines = [], text.splitlines()
    for n, line in enumerate(lines):
        m = _CUE.match(line.strip())
        if m and n + 1 < len(lines):
            ref = lines[n + 1].strip()
            path, _, fragment = ref.partition("#xywh=")
            cue = {"start": _seconds(*m.group(1, 2, 3, 4)), "end": _seconds(*m.group(5, 6, 7, 8)), "image": path}
            if fragment:
                x, y, w, h = (int(v) for v in fragment.split(","))
                cue["xywh"] = [x, y, w, h]
            cues.append(cue)
    return cues


def _requested_times(config: Mapping[str, Any], n: int) -> list[float | None]:
    interval = config.get("Interval")
    if not interval:
        return [None] * n
    start = (config.get("Time") or 0) / 1000
    return [round(start + k * interval, 3) for k in range(n)]


def sprite_geometry(config: Mapping[str, Any], measure_sheet: Callable[[], tuple[int, int] | None],
                    frames: int) -> dict | None:
    """The grid from the job's config; ``measure_sheet()`` (a ranged GET of the first sheet) is
    called only when the config leaves the cell size to the output size."""
    sprite = config.get("SpriteSnapshotConfig") or {}
    columns, lines = sprite.get("Columns"), sprite.get("Lines")
    if not columns or not lines:
        return None
    padding, margin = sprite.get("Padding") or 0, sprite.get("Margin") or 0
    cell_w = sprite.get("CellWidth") or config.get("Width")
    cell_h = sprite.get("CellHeight") or config.get("Height")
    sheet_size = measure_sheet() if not cell_w or not cell_h else None
    if sheet_size:
        cell_w = cell_w or (sheet_size[0] - 2 * margin - (columns - 1) * padding) // columns
        cell_h = cell_h or (sheet_size[1] - 2 * margin - (lines - 1) * padding) // lines
    geometry: dict[str, Any] = {"columns": columns, "lines": lines, "cell_width": cell_w, "cell_height": cell_h,
                                "padding": padding, "margin": margin, "tiles": []}
    if not cell_w or not cell_h:
        return geometry
    per_sheet = columns * lines
    for k, t in enumerate(_requested_times(config, frames)):
        column, line = (k % per_sheet) % columns, (k % per_sheet) // columns
        geometry["tiles"].append({"sprite": k // per_sheet + 1, "column": column, "line": line,
                                  "x": margin + column * (cell_w + padding), "y": margin + line * (cell_h + padding),
                                  "w": cell_w, "h": cell_h, "time": t})
    return geometry


def source_doc(upload: Upload, size: int | None) -> dict[str, Any]:
    """The ``source`` of an index or a result: the version (whatever the profile) and its size."""
    return dict(upload.for_profile(DEFAULT_PROFILE).to_doc(), size=size)


def build_result(job: SnapshotJob, urls: SnapshotUrls | None, *, now: float, url_timeout_s: int,
                 source_size: int | None = None, read: ReadHead | None = None) -> dict[str, Any]:
    """The result of a finished job, for its profile. ``read`` fetches the start of an object (the
    WebVTT file, a sprite sheet's header) when the result needs it."""
    upload = job.source()
    source = source_doc(upload, source_size)
    out_bucket = job.output.bucket if job.output else source["bucket"]
    snapshots = [_snapshot_doc(i, url, out_bucket, now=now, url_timeout_s=url_timeout_s)
                 for i, url in enumerate(urls.urls if urls else (), start=1)]
    doc: dict[str, Any] = {"schema": RESULT_SCHEMA, "source": source, "profile": upload.profile,
                           "job": _job_doc(job), "snapshots": snapshots}
    config = job.template_config or {}
    if job.type == SnapshotType.WEBVTT and urls and urls.webvtt_url:
        doc["webvtt"] = _webvtt_doc(urls.webvtt_url, out_bucket, snapshots, now=now, url_timeout_s=url_timeout_s,
                                    read=read)
    elif job.type == SnapshotType.SPRITE:
        geometry = sprite_geometry(config, lambda: _measure_first_sheet(snapshots, read), config.get("Count") or 0)
        if geometry is not None:
            doc["sprite"] = geometry
    else:
        for snap, t in zip(snapshots, _requested_times(config, len(snapshots)), strict=True):
            snap["time"] = t
    doc["generated_at"] = iso(now)
    return doc


def _snapshot_doc(index: int, url: str, out_bucket: str, *, now: float, url_timeout_s: int) -> dict[str, Any]:
    bucket, key = object_of_url(url, out_bucket)
    return {"index": index, "bucket": bucket, "key": key, "url": url,
            "url_expires_at": url_expiry(url, now, url_timeout_s), "time": None}


def _webvtt_doc(webvtt_url: str, out_bucket: str, snapshots: list[dict[str, Any]], *, now: float,
                url_timeout_s: int, read: ReadHead | None) -> dict[str, Any]:
    """The storyboard's object and cues; each image's time is taken from the first cue showing it."""
    vtt_bucket, vtt_key = object_of_url(webvtt_url, out_bucket)
    webvtt: dict[str, Any] = {"bucket": vtt_bucket, "key": vtt_key, "url": webvtt_url,
                              "url_expires_at": url_expiry(webvtt_url, now, url_timeout_s)}
    text = read(vtt_bucket, vtt_key, 4 << 20) if read else None
    if text is None:
        return webvtt
    by_key = {s["key"]: s for s in snapshots}
    base = vtt_key.rsplit("/", 1)[0] + "/" if "/" in vtt_key else ""
    webvtt["cues"] = []
    for cue in parse_vtt(text.decode("utf-8", "replace")):
        image_key = unquote(urljoin("/" + base, cue["image"]).lstrip("/"))
        cue_doc = {"start": cue["start"], "end": cue["end"], "key": image_key}
        if "xywh" in cue:
            cue_doc["xywh"] = cue["xywh"]
        webvtt["cues"].append(cue_doc)
        snap = by_key.get(image_key)
        if snap is not None and snap["time"] is None:
            snap["time"] = cue["start"]
    return webvtt


def _measure_first_sheet(snapshots: list[dict[str, Any]], read: ReadHead | None) -> tuple[int, int] | None:
    """The pixel size of the first sprite sheet, from one ranged GET of its header."""
    if not (snapshots and read):
        return None
    head = read(snapshots[0]["bucket"], snapshots[0]["key"], 65536)
    return jpeg_size(head) if head else None


def _job_doc(job: SnapshotJob) -> dict[str, Any]:
    """The job's part of the index: a failure's ``error``, or a success's ``warnings`` (its Message, e.g.
    fewer snapshots than Count because the video ended first)."""
    doc: dict[str, Any] = {"id": job.job_id, "status": job.status.value, "type": job.type,
                           "template_id": job.template_id, "created": job.create_time, "finished": job.finish_time}
    if job.status == JobStatus.FAIL:
        doc["error"] = {"code": job.code, "message": job.message}
    elif job.message:
        doc["warnings"] = [job.message]
    return doc


def failure_result(upload: Upload, code: str, message: str, *, template_id: str | None,
                   now: float, size: int | None = None) -> dict[str, Any]:
    """The result of an upload's profile that got no job (ICE refused it)."""
    return {"schema": RESULT_SCHEMA, "source": source_doc(upload, size), "profile": upload.profile,
            "job": {"id": None, "status": JobStatus.FAIL.value, "type": None, "template_id": template_id,
                    "created": None, "finished": None,
                    "error": {"code": code, "message": message, "stage": "submit"}},
            "snapshots": [], "generated_at": iso(now)}


#: The fields of a result that the index shows under ``profiles.<name>``.
_RESULT_FIELDS = ("job", "snapshots", "sprite", "webvtt", "player", "generated_at")


def compose_index(source: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]], *,
                  now: float) -> dict[str, Any]:
    """The index of a version from its profiles' results (name -> result document)."""
    profiles = {name: {k: result[k] for k in _RESULT_FIELDS if k in result} for name, result in sorted(results.items())}
    return {"schema": SCHEMA, "source": dict(source), "profiles": profiles, "generated_at": iso(now)}


def tombstone_index(source: Upload, *, deleted_at: float, now: float) -> dict[str, Any]:
    """The index of a deleted source: ``deleted`` says when, and no profile shows anything."""
    return {"schema": SCHEMA, "source": source_doc(source, source.size), "profiles": {},
            "deleted": iso(deleted_at), "generated_at": iso(now)}


def profile_result(doc: Any, profile: str) -> Mapping[str, Any] | None:
    """What an index shows for ``profile`` (``job``, ``snapshots``...), or None. A ``snapshot-index/1``
    document is the profile ``default``'s result."""
    if not isinstance(doc, Mapping):
        return None
    if doc.get("schema") == LEGACY_SCHEMA or "profiles" not in doc:
        return doc if profile == DEFAULT_PROFILE and isinstance(doc.get("job"), Mapping) else None
    result = (doc.get("profiles") or {}).get(profile)
    return result if isinstance(result, Mapping) else None


def indexed_source(doc: Any) -> Upload | None:
    """The version an index describes, or None when ``doc`` is not an index."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("source"), Mapping):
        return None
    return Upload.from_doc(doc["source"])


def is_tombstone(doc: Any) -> bool:
    """Whether ``doc`` is a deleted source's index (``deleted``, in either schema)."""
    return isinstance(doc, Mapping) and isinstance(doc.get("deleted"), str)


def deleted_at(doc: Mapping[str, Any]) -> float:
    """When a tombstone says its source was deleted (epoch seconds; 0 when unreadable)."""
    try:
        return datetime.strptime(doc["deleted"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


def names_version(doc: Any, upload: Upload) -> bool:
    """Whether the index ``doc`` describes ``upload``'s version: an index without an etag (written before
    etags were recorded) counts; a tombstone never does (the object was written again). What the audit
    and the backfill both take as "this version was indexed"."""
    shown = indexed_source(doc)
    return shown is not None and not is_tombstone(doc) and (not shown.etag or shown.same_version(upload))
