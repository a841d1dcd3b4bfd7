"""Normal stills from the engine: time, count, interval, frame type, containers, output size and rotation."""
from __future__ import annotations

import pytest

from localcloud.ice.engine import EngineError
from localcloud.media import make_test_video, read_stamp
from tests.localcloud.engine.support import (
    DURATION,
    FPS,
    FRAME,
    cut,
    first_frame_at_or_after,
    keyframe_at_or_before,
    stamp_of_snapshot,
)


def test_normal_intra_takes_keyframe_at_or_before_each_time(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 5, "FrameType": "intra"})
    planned = [k * DURATION / 5 for k in range(5)]  # 0, 0.8, 1.6, 2.4, 3.2
    assert [s.key for s in result.snapshots] == [f"snap/0000{i}.jpg" for i in range(1, 6)]
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == [keyframe_at_or_before(t) for t in planned]
    assert [s.time_s for s in result.snapshots] == pytest.approx([keyframe_at_or_before(t) for t in planned])
    assert all((s.width, s.height) == (320, 240) for s in result.snapshots)
    assert (result.duration_s, result.source_width, result.source_height) == (DURATION, 320, 240)
    assert result.message is None and result.vtt_key is None


def test_normal_frame_type_normal_takes_exact_frame(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 7, "FrameType": "normal", "Time": 130})
    planned = [0.13 + k * (DURATION - 0.13) / 7 for k in range(7)]
    for snapshot, t in zip(result.snapshots, planned, strict=True):
        stamp = stamp_of_snapshot(store, snapshot)
        assert stamp == pytest.approx(first_frame_at_or_after(t))
        assert t - 1e-9 <= stamp < t + FRAME
        assert snapshot.time_s == pytest.approx(stamp)


def test_interval_steps_from_time(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 3, "Interval": 1, "Time": 500, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0.52, 1.52, 2.52])
    assert result.message is None


def test_fewer_images_when_the_video_ends_first(clip):
    result, store = cut(clip, {"Type": "Normal", "Count": 10, "Interval": 1, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in result.snapshots] == pytest.approx([0, 1, 2, 3])
    assert len(store) == 4
    assert "4 of 10" in result.message


def test_interval_without_count_covers_the_video(clip):
    result, _ = cut(clip, {"Type": "Normal", "Interval": 1})
    assert len(result.snapshots) == 4 and result.message is None


def test_single_snapshot_without_placeholder_uses_the_name(clip):
    result, store = cut(clip, {"Type": "Normal", "Time": 2500}, "covers/a.jpg")
    assert list(store) == ["covers/a.jpg"]
    assert stamp_of_snapshot(store, result.snapshots[0]) == 2.0


def test_time_past_the_end_fails_the_job(clip):
    with pytest.raises(EngineError) as err:
        cut(clip, {"Type": "Normal", "Time": 4000})
    assert err.value.code == "InvalidParameter.Time" and "4000 ms" in err.value.message


@pytest.mark.parametrize("container_format", ["mpegts", "matroska"])
def test_other_containers_including_one_without_seek_index(container_format):
    video = make_test_video(duration_s=12, gop_s=2, container_format=container_format)
    planned = [k * 12 / 9 for k in range(9)]
    intra, store = cut(video, {"Type": "Normal", "Count": 9})
    assert [stamp_of_snapshot(store, s) for s in intra.snapshots] == [keyframe_at_or_before(t, 2) for t in planned]
    exact, store = cut(video, {"Type": "Normal", "Count": 9, "FrameType": "normal"})
    assert [stamp_of_snapshot(store, s) for s in exact.snapshots] == pytest.approx(
        [first_frame_at_or_after(t) for t in planned]
    )


# --- size -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dims", "expected"),
    [({"Width": 64}, (64, 48)), ({"Height": 60}, (80, 60)), ({"Width": 100, "Height": 50}, (100, 50)),
     ({}, (320, 240))],
)
def test_output_size(clip, dims, expected):
    result, store = cut(clip, {"Type": "Normal", "Count": 2, "FrameType": "normal", **dims})
    for snapshot in result.snapshots:
        assert store.image(snapshot.key).size == expected == (snapshot.width, snapshot.height)
        assert stamp_of_snapshot(store, snapshot) == pytest.approx(snapshot.time_s)


def test_display_rotation_is_applied():
    video = make_test_video(duration_s=2, rotation=90)  # coded 320x240, shown 240x320
    result, store = cut(video, {"Type": "Normal", "Count": 2, "FrameType": "normal", "Width": 120})
    assert (result.source_width, result.source_height) == (240, 320)
    for snapshot in result.snapshots:
        image = store.image(snapshot.key)
        assert image.size == (120, 160)
        assert read_stamp(image.rotate(-90, expand=True), FPS) == pytest.approx(snapshot.time_s)

