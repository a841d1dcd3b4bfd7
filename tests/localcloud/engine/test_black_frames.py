"""The engine's black-frame filter (BlackLevel, PixelBlackThreshold): which snapshots it moves, and when not."""
from __future__ import annotations

import pytest

from localcloud.media import make_test_video
from tests.localcloud.engine.support import DURATION, cut, stamp_of_snapshot


@pytest.fixture(scope="module")
def black_lead_clip() -> bytes:
    """Black for 0.5 s (frames 0..11), keyframes every 0.4 s."""
    return make_test_video(duration_s=DURATION, gop_s=0.4, black_lead_s=0.5)


def test_black_first_frame_is_skipped_for_the_first_snapshot_only(black_lead_clip):
    filtered, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "FrameType": "normal",
                                            "BlackLevel": 90, "PixelBlackThreshold": 40})
    stamps = [stamp_of_snapshot(store, s) for s in filtered.snapshots]
    assert stamps == pytest.approx([0.48, 1.0, 2.0, 3.0])  # 0.48: frame 12, the first non-black one
    assert filtered.snapshots[0].time_s == pytest.approx(0.48)

    plain, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "FrameType": "normal"})
    with pytest.raises(ValueError):
        stamp_of_snapshot(store, plain.snapshots[0])


def test_black_first_keyframe_moves_to_the_next_keyframe(black_lead_clip):
    result, store = cut(black_lead_clip, {"Type": "Normal", "Count": 4, "BlackLevel": 90})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0.8, 0.8, 2.0, 2.8])


def test_black_filter_is_multi_frame_only(black_lead_clip):
    result, store = cut(black_lead_clip, {"Type": "Normal", "Count": 1, "FrameType": "normal", "BlackLevel": 90})
    with pytest.raises(ValueError):
        stamp_of_snapshot(store, result.snapshots[0])


def test_all_black_until_the_next_snapshot_keeps_the_black_frame():
    video = make_test_video(duration_s=2, black_lead_s=2)
    result, _ = cut(video, {"Type": "Normal", "Count": 2, "FrameType": "normal", "BlackLevel": 90})
    assert result.snapshots[0].time_s == 0 and "black" in result.message

