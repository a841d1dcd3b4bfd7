"""Stills of real containers and codecs, frame by frame against the ffmpeg CLI at the same times.

`normal` is compared with `ffmpeg -i FILE -ss T -frames:v 1` (the frame ffmpeg shows at T: on a
coarse time base such as AVI's 1/25, T rounded to the nearest tick first); `intra` with the last of
the frames ffprobe decodes as keyframes that is at or before T (rounded the same way). Both sides
are read by their stamps, and `normal`'s pixels must match ffmpeg's within JPEG's error.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.media import make_test_video, read_stamp
from tests.localcloud.engine.support import (
    FPS,
    cut,
    ffmpeg_keyframe_times,
    ffmpeg_stills,
    ffmpeg_tick,
    mean_difference,
    needs_ffmpeg,
    stamp_of_snapshot,
)

pytestmark = needs_ffmpeg

# Between frames, on frames, and on half ticks of a 1/25 time base (0.1 s is 2.5 frames).
TIMES_MS = [0, 90, 100, 130, 140, 500, 1100, 2010, 2490, 3960]
JPEG_TOLERANCE = 4.0  # mean absolute difference per channel of the engine's JPEG and ffmpeg's PNG

KINDS = {
    "mp4-h264": {"container_format": "mp4"},
    "mpegts-h264": {"container_format": "mpegts"},
    "mpegts-h264-short-gop": {"container_format": "mpegts", "gop_s": 0.48},
    "matroska-h264": {"container_format": "matroska"},
    "webm-vp8": {"container_format": "webm", "codec": "libvpx"},
    "webm-vp9-no-duration": {"container_format": "webm", "codec": "libvpx-vp9", "declare_duration": False},
    "webm-vp8-no-duration": {"container_format": "webm", "codec": "libvpx", "declare_duration": False},
    "avi-mpeg4": {"container_format": "avi", "codec": "mpeg4"},
    "avi-mjpeg": {"container_format": "avi", "codec": "mjpeg"},
}


@pytest.fixture(scope="module", params=list(KINDS))
def media(request, tmp_path_factory) -> tuple[bytes, Path]:
    video = make_test_video(duration_s=4.0, fps=FPS, **KINDS[request.param])
    path = tmp_path_factory.mktemp("media") / f"clip.{request.param}"
    path.write_bytes(video)
    return video, path


def test_normal_takes_the_frame_ffmpeg_shows_at_each_time(media):
    video, path = media
    references = ffmpeg_stills(path, [t / 1000 for t in TIMES_MS])
    for time_ms, reference in zip(TIMES_MS, references, strict=True):
        result, store = cut(video, {"Type": "Normal", "FrameType": "normal", "Time": time_ms}, "x.jpg")
        (snapshot,) = result.snapshots
        assert stamp_of_snapshot(store, snapshot) == read_stamp(reference, FPS), f"at {time_ms} ms"
        assert snapshot.time_s == pytest.approx(read_stamp(reference, FPS))
        assert mean_difference(store.image(snapshot.key), reference) < JPEG_TOLERANCE, f"at {time_ms} ms"


def test_intra_takes_the_last_keyframe_ffmpeg_decodes_at_or_before_each_time(media):
    video, path = media
    keyframes = ffmpeg_keyframe_times(path)
    for time_ms in TIMES_MS:
        result, store = cut(video, {"Type": "Normal", "FrameType": "intra", "Time": time_ms}, "x.jpg")
        wanted = max(k for k in keyframes if k <= ffmpeg_tick(path, time_ms / 1000) + 1e-9)
        assert stamp_of_snapshot(store, result.snapshots[0]) == pytest.approx(wanted), f"at {time_ms} ms"


def test_count_spreads_over_the_duration_read_from_the_stream(media):
    video, _ = media
    result, store = cut(video, {"Type": "Normal", "FrameType": "normal", "Count": 4})
    assert result.duration_s == pytest.approx(4.0, abs=1 / FPS)
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0, 1, 2, 3])
    assert result.message is None
