"""The stamped test media itself: stamps survive JPEG and scaling, keyframes fall where asked, black has none."""
from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from localcloud.media import make_garbage, make_test_video, read_stamp
from tests.localcloud.engine.support import DURATION, FPS


def test_stamp_survives_jpeg_and_scaling_to_64_px(clip):
    with av.open(io.BytesIO(clip)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == DURATION * FPS
    for frame in frames[::7]:
        for size in ((320, 240), (64, 48), (64, 64)):
            out = io.BytesIO()
            frame.to_image().resize(size, Image.Resampling.BILINEAR).save(out, "JPEG", quality=60)
            assert read_stamp(Image.open(out), FPS) == pytest.approx(frame.time)


def test_keyframes_are_exactly_every_gop(clip):
    with av.open(io.BytesIO(clip)) as container:
        keyframes = [round(p.pts * p.time_base, 3) for p in container.demux(video=0) if p.is_keyframe]
    assert keyframes == [0.0, 1.0, 2.0, 3.0]


def test_black_lead_frames_and_garbage_have_no_stamp():
    video = make_test_video(duration_s=1, black_lead_s=0.5)
    with av.open(io.BytesIO(video)) as container:
        first = next(container.decode(video=0))
    with pytest.raises(ValueError, match="no stamp"):
        read_stamp(first.to_image(), FPS)
    with pytest.raises(ValueError, match="no stamp"):
        read_stamp(Image.new("RGB", (64, 48), (128, 128, 128)), FPS)
    with pytest.raises(av.error.FFmpegError):
        av.open(io.BytesIO(make_garbage()))

