"""A cut-short upload fails the job with InvalidInput.Truncated whatever the frame type and the times,
and a job that fails leaves none of its outputs behind."""
from __future__ import annotations

import pytest

from localcloud.media import cut_short, make_test_video, with_noise
from tests.localcloud.engine.support import Store, cut, cut_failing

KINDS = {
    "mp4-moov-at-end": {"container_format": "mp4"},  # cut before the moov: does not even open
    "mp4-faststart": {"container_format": "mp4", "faststart": True},  # opens, declares 4 s, holds ~2
    "matroska": {"container_format": "matroska"},  # Duration at the front, no Cues
    "webm-vp8": {"container_format": "webm", "codec": "libvpx"},
    "avi-mpeg4": {"container_format": "avi", "codec": "mpeg4"},  # header frame count, no idx1
}
JOBS = {
    "intra-early": {"Type": "Normal", "FrameType": "intra", "Time": 0},  # only intact frames asked for
    "intra-count": {"Type": "Normal", "FrameType": "intra", "Count": 5},
    "normal-count": {"Type": "Normal", "FrameType": "normal", "Count": 5},
    "sprite": {"Type": "Sprite", "Count": 4, "SpriteSnapshotConfig": {"Columns": 2, "Lines": 2}},
}


@pytest.fixture(scope="module", params=list(KINDS))
def truncated(request) -> bytes:
    return cut_short(make_test_video(duration_s=4.0, gop_s=1.0, **KINDS[request.param]), keep=0.55)


@pytest.mark.parametrize("job", list(JOBS))
def test_a_truncated_input_fails_with_truncated_and_writes_nothing(truncated, job):
    output = "sheet-{TileCount}.jpg" if JOBS[job]["Type"] == "Sprite" else "snap/{Count}.jpg"
    error, store = cut_failing(truncated, JOBS[job], output)
    assert error.code == "InvalidInput.Truncated", error
    assert "declares" in error.message or "past the end" in error.message or "incomplete" in error.message
    assert store == {}


def test_the_intact_file_passes_the_same_check():
    for kind in KINDS.values():
        result, _ = cut(make_test_video(duration_s=4.0, gop_s=1.0, **kind), JOBS["normal-count"])
        assert len(result.snapshots) == 5


class Counting(Store):
    """A store that counts the writes it was asked for."""

    def __init__(self):
        super().__init__()
        self.writes = 0

    def __call__(self, key: str, data: bytes, content_type: str) -> None:
        self.writes += 1
        super().__call__(key, data, content_type)


class FailingOn(Counting):
    """A store whose n-th write fails (`fail_at`), as a full bucket or a lost connection would."""

    def __init__(self, fail_at: int):
        super().__init__()
        self.fail_at = fail_at

    def __call__(self, key: str, data: bytes, content_type: str) -> None:
        if self.writes + 1 == self.fail_at:
            self.writes += 1
            raise OSError("the bucket is full")
        super().__call__(key, data, content_type)


@pytest.mark.parametrize(("config", "output", "fail_at"), [
    ({"Type": "Normal", "Count": 4}, "snap/{Count}.jpg", 3),
    ({"Type": "WebVtt", "Count": 4}, "story.vtt", 5),  # the VTT, after its four images
    ({"Type": "Sprite", "Count": 4, "SpriteSnapshotConfig": {"Columns": 1, "Lines": 1}}, "s-{TileCount}.jpg", 4),
])
def test_a_failed_job_deletes_what_it_wrote(clip, config, output, fail_at):
    error, store = cut_failing(clip, config, output, FailingOn(fail_at))
    assert error.code == "Output.WriteFailed" and "the bucket is full" in error.message
    assert store.writes == fail_at and store == {}


def test_outputs_that_cannot_be_deleted_are_named_in_the_error(clip):
    class Undeletable(FailingOn):
        def delete(self, key: str) -> None:
            raise OSError("access denied")

    error, store = cut_failing(clip, {"Type": "Normal", "Count": 3}, "snap/{Count}.jpg", Undeletable(3))
    assert error.code == "Output.WriteFailed"
    assert "2 output(s) could not be removed: snap/00001.jpg, snap/00002.jpg" in error.message
    assert sorted(store) == ["snap/00001.jpg", "snap/00002.jpg"]


def test_a_job_that_fails_part_way_deletes_the_images_it_wrote():
    damaged = with_noise(make_test_video(duration_s=4.0, gop_s=1.0, faststart=True))  # the second half is noise
    error, store = cut_failing(damaged, {"Type": "Normal", "FrameType": "normal", "Count": 4}, "snap/{Count}.jpg",
                               Counting())
    assert error.code == "InvalidInput.NotDecodable"
    assert store.writes >= 1 and store == {}  # the first still was written, then deleted
