"""How two web players read a thumbnails VTT, re-implemented line by line from their source so the
tests can load the pipeline's player VTT as they do (their code is not copied here, only its rules).

- video.js' videojs-vtt-thumbnails (github.com/chrisboustead/videojs-vtt-thumbnails, ``src/plugin.js``,
  class ``vttThumbnailsPlugin``, at commit 3daf72b): ``processVtt``, ``getVttCss``,
  ``getFullyQualifiedUrl``, ``getPropsFromDef``, ``getSecondsFromTimestamp``, ``trim``,
  ``getStyleForTime``.
- Plyr's previewThumbnails (github.com/sampotts/plyr, ``src/js/plugins/preview-thumbnails.js``,
  v3.8.4): ``parseVtt``, ``PreviewThumbnails.getThumbnail`` (the URL prefix) and
  ``showImageAtCurrentTime`` (which frame a time shows).

JavaScript's ``String.split`` with a regular expression and ``String.match`` without ``g`` behave as
Python's ``re.split`` and ``re.search`` do for these patterns (a capturing group's text is kept in
both), so the patterns are theirs, unchanged. Also here: what the tests require of every player file
whichever player reads it (its shape, the JSON storyboard's schema).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tests.conftest import ROOT

STORYBOARD_SCHEMA = json.loads(
    (ROOT / "shared" / "snapshot_pipeline" / "schemas" / "snapshot-storyboard-1.json").read_text())
_TIMING = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$")


def assert_player_vtt_shape(vtt: str) -> None:
    """LF only, the header, then blocks of exactly a timing line and an image line with ``#xywh``."""
    assert "\r" not in vtt and vtt.startswith("WEBVTT\n\n")
    blocks = vtt.strip("\n").split("\n\n")[1:]
    assert blocks
    for block in blocks:
        timing, image = block.split("\n")  # no cue identifier, no cue payload beyond the image
        assert _TIMING.match(timing), timing
        assert re.search(r"#xywh=\d+,\d+,\d+,\d+$", image), image


# --- videojs-vtt-thumbnails -------------------------------------------------------------------------
@dataclass(frozen=True)
class VideojsCue:
    """One entry of ``processVtt``'s list: ``start``/``end`` and the ``css`` ``getVttCss`` made."""

    start: int
    end: int
    css: dict[str, str]


_VJS_CUE = re.compile(r"([0-9]{2}:)?([0-9]{2}:)?[0-9]{2}(.[0-9]{3})?( ?--> ?)([0-9]{2}:)?([0-9]{2}:)?[0-9]{2}"
                      r"(.[0-9]{3})?[\r\n]{1}.*", re.IGNORECASE)


def _vjs_trim(text: str, charlist: str) -> str:
    """``trim(str, charlist)``: strip the characters of ``charlist`` from both ends ('' if nothing is left)."""
    return text.strip(charlist)


def _vjs_fully_qualified_url(path: str, base: str) -> str:
    """``getFullyQualifiedUrl``: a path containing ``//`` is taken as is, else joined to the base."""
    if "//" in path:
        return path
    if base.startswith("//"):
        return "/".join([re.sub(r"/$", "", base), _vjs_trim(path, "/")])
    if base.find("//") > 0:
        return "/".join([_vjs_trim(base, "/"), _vjs_trim(path, "/")])
    return path


def _vjs_seconds(timestamp: str) -> int:
    """``getSecondsFromTimestamp`` with ``deconstructTimestamp``: note the final ``parseInt``, which
    truncates every cue time to whole seconds."""
    whole, _, fraction = timestamp.partition(".")
    parts = whole.split(":")

    def pop() -> int:
        return _js_parse_int(parts.pop()) if parts else 0

    millis = _js_parse_int(fraction)
    seconds, minutes, hours = pop(), pop(), pop()
    return int(hours * 3600 + minutes * 60 + seconds + millis / 1000)


def _js_parse_int(text: str) -> int:
    """``parseInt(text, 10) || 0``: the leading digits, 0 when there are none."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


def _vjs_css(image_def: str, src: str) -> dict[str, str]:
    """``getVttCss``: the thumbnail's CSS; ``width``, ``height`` and ``url`` only with ``#xywh``."""
    base = re.split(r"([^/]*)$", src)[0]  # src has '//' in the tests: the other branch prefixes the page's URL
    image_def = _vjs_fully_qualified_url(image_def, base)
    if not re.search(r"#xywh=", image_def, re.IGNORECASE):
        return {"background": f'url("{image_def}")'}
    image, coords = re.split(r"#xywh=", image_def, flags=re.IGNORECASE)[:2]
    x, y, w, h = re.findall(r"[0-9]+", coords)[:4]
    return {"background": f'url("{image}") no-repeat -{x}px -{y}px', "width": f"{w}px", "height": f"{h}px",
            "url": image}


def videojs_vtt_thumbnails(text: str, src: str) -> list[VideojsCue]:
    """``processVtt``: blocks split on two line-end characters, a block counts when the cue pattern
    is found in it, its first line is the timing and its second the image."""
    cues = []
    for block in re.split(r"[\r\n][\r\n]", text, flags=re.IGNORECASE):
        if _VJS_CUE.search(block):
            lines = re.split(r"[\r\n]", block)
            start, end = re.split(r" ?--> ?", lines[0])[:2]
            cues.append(VideojsCue(_vjs_seconds(start), _vjs_seconds(end), _vjs_css(lines[1], src)))
    return cues


def videojs_style_for_time(cues: list[VideojsCue], time: float) -> dict[str, str] | None:
    """``getStyleForTime``: the first cue with start <= time < end."""
    return next((cue.css for cue in cues if cue.start <= time < cue.end), None)


# --- Plyr previewThumbnails -------------------------------------------------------------------------
@dataclass(frozen=True)
class PlyrFrame:
    """One entry of ``parseVtt``'s list; x, y, w, h stay strings (or None without ``#xywh``), as in Plyr."""

    start_time: float
    end_time: float
    text: str
    x: str | None
    y: str | None
    w: str | None
    h: str | None


_PLYR_TIMES = re.compile(r"(\d{2})?:?(\d{2}):(\d{2}).(\d{2,3})( ?--> ?)(\d{2})?:?(\d{2}):(\d{2}).(\d{2,3})")


def _plyr_seconds(m: re.Match[str], first: int) -> float:
    """``Number(h || 0) * 60 * 60 + Number(m) * 60 + Number(s) + Number(`0.${ms}`)`` from groups ``first``..+3."""
    hours, minutes, seconds, fraction = m.group(first, first + 1, first + 2, first + 3)
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + float(f"0.{fraction}")


def _plyr_parse_frame(frame: str) -> PlyrFrame | None:
    times: tuple[float, float] | None = None
    text, xywh = "", [None, None, None, None]
    for line in re.split(r"\r\n|\n|\r", frame):
        if times is None:
            m = _PLYR_TIMES.search(line)
            if m:
                times = (_plyr_seconds(m, 1), _plyr_seconds(m, 6))
        elif line.strip() and not text:
            text, *rest = line.strip().split("#xywh=")
            if rest and rest[0]:
                parts = rest[0].split(",")
                xywh = [parts[i] if i < len(parts) else None for i in range(4)]
    if not text or times is None:
        return None
    return PlyrFrame(times[0], times[1], text, *xywh)


def plyr_preview_thumbnails(text: str) -> list[PlyrFrame]:
    """``parseVtt``: frames split on a blank line; the first line matching the times pattern gives the
    times, the next non-empty line the image and its optional ``#xywh``; a frame without an image is dropped."""
    frames = (_plyr_parse_frame(f) for f in re.split(r"\r\n\r\n|\n\n|\r\r", text))
    return [f for f in frames if f is not None]


def plyr_url_prefix(frames: list[PlyrFrame], src: str) -> str:
    """``getThumbnail``: no prefix when the first frame's image starts with ``/``, ``http://`` or
    ``https://``; else the VTT URL's folder."""
    if frames[0].text.startswith(("/", "http://", "https://")):
        return ""
    return src[:src.rfind("/") + 1]


def plyr_frame_for_time(frames: list[PlyrFrame], seek_time: float) -> PlyrFrame | None:
    """``showImageAtCurrentTime``: the first frame with startTime <= seekTime <= endTime."""
    return next((f for f in frames if f.start_time <= seek_time <= f.end_time), None)
