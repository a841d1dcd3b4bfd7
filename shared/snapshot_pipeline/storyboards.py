"""Player-ready storyboards: a JSON storyboard and a player VTT beside every storyboard result.

ICE's WebVTT names its images relative to itself (on a private bucket a player resolves them to
unsigned URLs and gets 403), leaves ``#xywh`` off when the images are stills, and a Sprite job has
no VTT at all. From a job's result as the index records it (a WebVtt job's cues; a Sprite job's
grid and sheets) this module builds two files:

- a JSON storyboard, ``snapshot-storyboard/1`` (``schemas/snapshot-storyboard-1.json``), in the
  spirit of imgix's and Mux's ``{url, tile_width, tile_height, duration, tiles: [{start, x, y}]}``,
  with every image listed and, per tile, its end and which image holds it;
- a player VTT as video.js' videojs-vtt-thumbnails and Plyr's previewThumbnails read it: LF line
  ends (the former splits cues on blank lines and finds none in a CRLF file), no cue identifiers
  (it takes a cue's first line as its timing), ``HH:MM:SS.mmm`` times (Plyr wants two-digit hours)
  and ``#xywh=x,y,w,h`` on every cue (the former sizes the thumbnail from it).

Image references are absolute URLs under ``PUBLIC_BASE_URL`` (a CDN or custom domain serving the
output bucket); without one they are relative to the files (image names: they share a folder),
which a player resolves against the VTT's or the JSON's own URL. Both files sit beside the job's
outputs, named after its Output (``storyboard.vtt`` -> ``storyboard-player.vtt`` and
``storyboard-player.json``), so a version's files never change content and go with its outputs.
"""
from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .domain import JobStatus, SnapshotJob, SnapshotType
from .index import jpeg_size
from .log import log
from .ports import ObjectStore

SCHEMA = "snapshot-storyboard/1"
VTT_SUFFIX = "-player.vtt"
JSON_SUFFIX = "-player.json"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: A version's files never change content, so a CDN may keep them for good.
CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Enough of a JPEG to reach its SOF marker (what :func:`.index.jpeg_size` reads).
_JPEG_HEAD_BYTES = 65536
#: ``measure(key)``: the pixel size of the output image ``key``, or None when it cannot be read.
Measure = Callable[[str], "tuple[int, int] | None"]
#: ``url_of(key)``: how the player files refer to the object ``key``.
UrlOf = Callable[[str], str]


@dataclass(frozen=True)
class Tile:
    """One thumbnail: shown from ``start`` to ``end`` (seconds), the box (x, y, w, h) of ``images[image]``."""

    start: float
    end: float
    image: int
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Storyboard:
    """A storyboard as players need it. ``images``: object keys; ``image_size``: the pixel size every
    image has (all are cut to one grid or one output size), None when it could not be read."""

    images: tuple[str, ...]
    image_size: tuple[int, int] | None
    tiles: tuple[Tile, ...]

    @property
    def duration(self) -> float:
        return self.tiles[-1].end


@dataclass(frozen=True)
class PlayerFile:
    key: str
    body: bytes
    content_type: str


# --- from a job's result ------------------------------------------------------------------------
def storyboard_of(result: Mapping[str, Any], *, interval_s: float | None, measure: Measure) -> Storyboard | str:
    """The storyboard of a job's ``result`` (the index's fields for one job), or why it has none.
    ``interval_s``: the job's Interval (a Sprite job's last tile lasts that long)."""
    job = result.get("job") or {}
    if job.get("status") != JobStatus.SUCCESS.value:
        return "the job did not succeed"
    if job.get("type") == SnapshotType.WEBVTT.value:
        return _from_cues((result.get("webvtt") or {}).get("cues") or [], measure)
    if job.get("type") == SnapshotType.SPRITE.value:
        return _from_sprite(result.get("sprite") or {}, result.get("snapshots") or [], interval_s)
    return "not a storyboard (Normal stills)"


def _from_cues(cues: Sequence[Mapping[str, Any]], measure: Measure) -> Storyboard | str:
    """A WebVtt job's cues. A cue without ``#xywh`` shows a whole still: its box is the image's size
    (the first image is measured; a job cuts every still to one size)."""
    if not cues:
        return "the index lists no WebVTT cues"
    position = {key: n for n, key in enumerate(dict.fromkeys(cue["key"] for cue in cues))}
    images = tuple(position)
    image_size = measure(images[0])
    tiles = []
    for cue in cues:
        if "xywh" in cue:
            x, y, w, h = cue["xywh"]
        elif image_size is not None:
            (x, y), (w, h) = (0, 0), image_size
        else:
            return f"the size of {images[0]} could not be read"
        tiles.append(Tile(cue["start"], cue["end"], position[cue["key"]], x, y, w, h))
    return Storyboard(images, image_size, tuple(tiles))


def _from_sprite(sprite: Mapping[str, Any], snapshots: Sequence[Mapping[str, Any]],
                 interval_s: float | None) -> Storyboard | str:
    """A Sprite job's grid. As in ICE's own WebVTT, the first tile is shown from 0 and each one until
    the next is taken; the last lasts ``interval_s`` (ICE does not report the video's duration).
    Tiles on sheets that were never written (the video ended first) are left out."""
    tiles_doc = [t for t in sprite.get("tiles") or [] if t["sprite"] <= len(snapshots)]
    if not tiles_doc:
        return "the index lists no sprite tiles"
    starts = [t["time"] for t in tiles_doc]
    if any(t is None for t in starts) or not interval_s:
        return "the tiles' times are unknown (the job has no Interval)"
    ends = [*starts[1:], starts[-1] + interval_s]
    tiles = tuple(Tile(start, end, t["sprite"] - 1, t["x"], t["y"], t["w"], t["h"])
                  for start, end, t in zip([0.0, *starts[1:]], ends, tiles_doc, strict=True))
    columns, lines, padding, margin = (sprite[k] for k in ("columns", "lines", "padding", "margin"))
    size = (2 * margin + columns * sprite["cell_width"] + (columns - 1) * padding,
            2 * margin + lines * sprite["cell_height"] + (lines - 1) * padding)
    return Storyboard(tuple(s["key"] for s in sorted(snapshots, key=lambda s: s["index"])), size, tiles)


# --- to bytes -----------------------------------------------------------------------------------
def vtt_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm``: two-digit hours always (Plyr's pattern), milliseconds rounded."""
    hours, rest = divmod(round(seconds * 1000), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def player_vtt(board: Storyboard, url_of: UrlOf) -> bytes:
    """The player VTT: a timing line then the image reference with ``#xywh``, cues apart by one blank line."""
    lines = ["WEBVTT", ""]
    for tile in board.tiles:
        lines += [f"{vtt_timestamp(tile.start)} --> {vtt_timestamp(tile.end)}",
                  f"{url_of(board.images[tile.image])}#xywh={tile.x},{tile.y},{tile.w},{tile.h}", ""]
    return "\n".join(lines).encode("utf-8")


def storyboard_json(board: Storyboard, url_of: UrlOf) -> dict[str, Any]:
    """The JSON storyboard: imgix's and Mux's fields (``url`` is the first image's), plus every image
    and, per tile, its end and the index of its image in ``images``."""
    first = board.tiles[0]
    width, height = board.image_size or (None, None)
    return {"schema": SCHEMA, "url": url_of(board.images[0]),
            "images": [{"key": key, "url": url_of(key)} for key in board.images],
            "image_width": width, "image_height": height, "tile_width": first.w, "tile_height": first.h,
            "duration": board.duration,
            "tiles": [{"start": t.start, "end": t.end, "x": t.x, "y": t.y, "image": t.image} for t in board.tiles]}


# --- where ------------------------------------------------------------------------------------------
def player_keys(output_key: str) -> tuple[str, str]:
    """The player VTT's and the JSON's keys, beside the job's Output ``output_key`` and named after it
    (``.../storyboard.vtt`` or ``.../sprite-{TileCount}.jpg`` -> ``.../storyboard-player.vtt``,
    ``.../sprite-player.json``): two jobs writing one folder keep apart."""
    folder, name = posixpath.split(output_key)
    stem = posixpath.splitext(name)[0].replace("{TileCount}", "").replace("{Count}", "").strip("-_.") or "storyboard"
    base = posixpath.join(folder, stem)
    return base + VTT_SUFFIX, base + JSON_SUFFIX


def public_url(public_base_url: str, key: str) -> str:
    """The URL of ``key`` under the public base URL (which ends with ``/``)."""
    return public_base_url + quote(key, safe="/")


def url_maker(public_base_url: str | None, beside: str) -> UrlOf:
    """Absolute URLs under ``public_base_url``; without one, paths relative to the file ``beside``."""
    if public_base_url:
        return lambda key: public_url(public_base_url, key)
    folder = posixpath.dirname(beside)
    return lambda key: quote(posixpath.relpath(key, folder or "."), safe="/")


def player_files(board: Storyboard, *, output_key: str, public_base_url: str | None) -> list[PlayerFile]:
    """The player VTT and the JSON storyboard of ``board`` for the job whose Output is ``output_key``."""
    vtt_key, json_key = player_keys(output_key)
    url_of = url_maker(public_base_url, vtt_key)
    body = json.dumps(storyboard_json(board, url_of), ensure_ascii=False, indent=1).encode("utf-8")
    return [PlayerFile(vtt_key, player_vtt(board, url_of), VTT_CONTENT_TYPE),
            PlayerFile(json_key, body, JSON_CONTENT_TYPE)]


def player_field(files: Sequence[PlayerFile], public_base_url: str | None) -> dict[str, Any]:
    """The result's ``player`` field: each file's key and public URL (None without a public base URL)."""
    vtt, doc = files
    return {name: {"key": f.key, "url": public_url(public_base_url, f.key) if public_base_url else None}
            for name, f in (("vtt", vtt), ("json", doc))}


# --- the write step ---------------------------------------------------------------------------------
def write_player_files(store: ObjectStore, job: SnapshotJob, result: Mapping[str, Any], *,
                       public_base_url: str | None) -> dict[str, Any]:
    """Write the player files of ``job``'s ``result`` (before the index that lists them, so the
    index never names a missing file); the fields to add to the result: ``{"player": ...}``, or
    nothing when the result is no storyboard."""
    if job.output is None or job.type not in (SnapshotType.WEBVTT.value, SnapshotType.SPRITE.value):
        return {}  # stills: no storyboard, and nothing worth a log line
    bucket = job.output.bucket

    def measure(key: str) -> tuple[int, int] | None:
        head = store.get_head_bytes(bucket, key, _JPEG_HEAD_BYTES)
        return jpeg_size(head) if head else None

    board = storyboard_of(result, interval_s=job.template_config.get("Interval"), measure=measure)
    if isinstance(board, str):
        log("storyboard.skipped", job_id=job.job_id, reason=board)
        return {}
    files = player_files(board, output_key=job.output.key, public_base_url=public_base_url)
    for f in files:
        store.put_bytes(bucket, f.key, f.body, content_type=f.content_type, headers={"Cache-Control": CACHE_CONTROL})
    return {"player": player_field(files, public_base_url)}
