"""Which frames a job takes: the planned times, one frame per time, black first frames skipped."""

from __future__ import annotations

import math
from collections.abc import Iterator

import av
import numpy as np

from localcloud.ice.engine.params import MAX_COUNT, SnapshotParams
from localcloud.ice.engine.results import EngineError
from localcloud.ice.engine.video import Video

BLACK_SCAN_LIMIT_S = 30.0
DEFAULT_BLACK_LEVEL = 98  # ffmpeg blackframe "amount"
DEFAULT_PIXEL_BLACK_THRESHOLD = 32  # ffmpeg blackframe "threshold"


def plan_times(params: SnapshotParams, duration_s: float) -> tuple[list[float], str | None]:
    start = params.time_ms / 1000
    if start >= duration_s:
        raise EngineError(
            "InvalidParameter.Time",
            f"Time {params.time_ms} ms is at or after the end of the video ({duration_s:.3f} s)",
        )
    if params.interval_s is None:
        count = params.count or 1
        step = (duration_s - start) / count
        return [start + k * step for k in range(count)], None
    fits = math.ceil((duration_s - start) / params.interval_s)
    count = min(params.count, fits) if params.count is not None else min(fits, MAX_COUNT)
    times = [start + k * params.interval_s for k in range(count)]
    message = None
    if params.count is not None and count < params.count:
        message = f"video ended after {count} of {params.count} snapshots (duration {duration_s:.3f} s)"
    return times, message


def capture(video: Video, params: SnapshotParams,
            planned: list[float]) -> Iterator[tuple[float, av.VideoFrame, str | None]]:
    """Yield (time_s, frame, note) per planned time; the first may be moved past black frames."""
    frames_at = video.keyframes_from if params.frame_type == "intra" else video.frames_from
    for index, seconds in enumerate(planned):
        frames = frames_at(seconds)
        frame = next(frames, None)
        if frame is None:
            raise EngineError("InvalidInput.NotDecodable", f"no frame could be decoded at {seconds:.3f} s")
        note = None
        if index == 0 and len(planned) > 1 and params.black_filter_on:
            frame, note = skip_black(video, params, frame, frames, planned[1])
        yield video.time_of(frame), frame, note


def skip_black(
    video: Video, params: SnapshotParams, frame: av.VideoFrame, later: Iterator[av.VideoFrame], next_time: float
) -> tuple[av.VideoFrame, str | None]:
    """Return the first non-black frame from `frame` on, up to `next_time` / BLACK_SCAN_LIMIT_S."""
    level = DEFAULT_BLACK_LEVEL if params.black_level is None else params.black_level
    threshold = DEFAULT_PIXEL_BLACK_THRESHOLD if params.pixel_black_threshold is None else params.pixel_black_threshold
    if not is_black(frame, level, threshold):
        return frame, None
    first = frame
    limit = min(next_time, video.time_of(first) + BLACK_SCAN_LIMIT_S)
    for candidate in later:
        if video.time_of(candidate) > limit + 1e-9:
            break
        if not is_black(candidate, level, threshold):
            return candidate, None
    return first, f"the first snapshot is black: no non-black frame up to {limit:.3f} s"


def is_black(frame: av.VideoFrame, black_level: int, pixel_threshold: int) -> bool:
    """ffmpeg-blackframe test on a small full-range grey copy (the percentage is scale-free)."""
    scale = min(1.0, 160 / frame.width)
    small = frame.reformat(
        width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)), format="gray"
    )
    luma = small.to_ndarray()
    return float(np.count_nonzero(luma < pixel_threshold)) * 100 >= black_level * luma.size

