"""Instant jobs: a job that finishes at once with one tiny placeholder picture, without reading its
input or cutting a frame (``LocalIce(instant_jobs=True)`` / :meth:`LocalIce.set_instant_jobs`), so
backfill and scale benchmarks can hold thousands of jobs on 2 cores. Only the names of the outputs
follow the job's parameters: ``{Count}``/``{TileCount}`` numbered from 00001, a WebVTT beside its
pictures."""
from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

from PIL import Image

from localcloud.ice.engine import SnapshotParams

PLACEHOLDER_SIZE = (16, 9)
VTT_PLACEHOLDER = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n"


@lru_cache(maxsize=1)
def placeholder_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", PLACEHOLDER_SIZE, (128, 128, 128)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_placeholders(params: SnapshotParams, output_object: str,
                       write: Callable[[str, bytes, str], None]) -> tuple[list[str], str | None]:
    """Write the job's placeholder outputs; (the picture keys, the WebVTT key or None)."""
    if params.type in ("Normal", "Sprite"):
        picture = output_object.replace("{Count}", "00001").replace("{TileCount}", "00001")
        vtt = None
    else:
        vtt = output_object
        picture = f"{output_object[: -len('.vtt')]}-00001.jpg"
    write(picture, placeholder_jpeg(), "image/jpeg")
    if vtt is not None:
        write(vtt, VTT_PLACEHOLDER, "text/vtt")
    return [picture], vtt
