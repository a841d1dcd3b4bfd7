"""Where outputs live: one folder per source object, one sub-folder per version (issue 10, cases 1 and 8)."""
from urllib.parse import urljoin

import pytest

from snapshot_pipeline import layout
from snapshot_pipeline.backfill import MAX_CONSECUTIVE_ERRORS, RefusalStreak
from snapshot_pipeline.claims import transient_failure
from snapshot_pipeline.domain import ObjectInfo, OssLocation, Outcome, OutcomeKind, Upload

WRITTEN = 1796124091.0  # 2026-12-01T11:21:31Z
V1 = Upload("media", "uploads/a.mp4", "5B3C1A2E053D763E1B002CC607C5A0FE", 10, WRITTEN)


def test_a_version_is_named_by_its_time_and_etag_and_sorts_by_time():
    assert V1.version == "20261201T112131Z-5b3c1a2e053d763e1b002cc607c5a0fe"
    later = Upload("media", "uploads/a.mp4", "00000000000000000000000000000000", 10, WRITTEN + 1)
    assert later.version > V1.version


def test_the_same_bytes_written_again_are_a_new_upload():
    again = Upload(V1.bucket, V1.key, V1.etag, V1.size, WRITTEN + 60)
    assert again.id != V1.id and not again.same_version(V1)
    assert Upload(V1.bucket, V1.key, V1.etag).same_version(V1)  # a side without a time compares by etag


def test_an_upload_survives_its_document_and_its_object_info():
    assert Upload.from_doc(V1.to_doc()) == Upload(V1.bucket, V1.key, V1.etag, None, WRITTEN)
    info = ObjectInfo(V1.key, 10, V1.etag, WRITTEN + 0.7)
    assert Upload.of_object("media", info) == V1


def test_two_buckets_and_two_versions_never_share_an_object_name():
    other_bucket = Upload("other", V1.key, V1.etag, 10, WRITTEN)
    v2 = Upload(V1.bucket, V1.key, "AB" * 16, 10, WRITTEN + 5)
    outputs = {layout.output_location("out", "snapshots/", "Normal", u).key for u in (V1, other_bucket, v2)}
    assert len(outputs) == 3
    assert layout.output_location("out", "snapshots/", "Normal", V1).key == \
        f"snapshots/media/uploads/a.mp4/{V1.version}/{{Count}}.jpg"
    assert layout.index_key("snapshots/", V1.location) == "snapshots/media/uploads/a.mp4/index.json"
    assert layout.index_key("snapshots/", other_bucket.location) != layout.index_key("snapshots/", V1.location)


@pytest.mark.parametrize("key", ["uploads/a/../b.mp4", "uploads/./c.mp4", "uploads//d.mp4", "/e.mp4", "../f.mp4"])
def test_keys_a_url_client_would_normalise_get_a_hashed_folder(key):
    folder = layout.object_dir("snapshots/", OssLocation("media", key))
    assert folder.startswith("snapshots/_by-hash/")
    url = "https://media.oss-cn-shanghai.aliyuncs.com/" + folder + "v/00001.jpg"
    assert urljoin(url, ".") + "00001.jpg" == url  # normalising changes nothing


def test_a_key_too_long_for_a_version_folder_gets_a_hashed_folder():
    long_key = "uploads/" + "x" * 900 + ".mp4"
    upload = Upload("media", long_key, "E" * 32, 1, WRITTEN)
    key = layout.output_location("media", "snapshots/", "Sprite", upload).key
    assert key.startswith("snapshots/_by-hash/")
    assert len(key.replace("{TileCount}", "00001").encode()) <= layout.MAX_KEY_BYTES


def test_the_unversioned_layout_is_still_found():
    assert layout.legacy_index_key("snapshots/", V1.location) == "snapshots/uploads/a.mp4/index.json"


def test_only_the_files_of_a_version_folder_belong_to_it():
    folder = layout.object_dir("snapshots/", V1.location)
    assert layout.version_of_dir_entry(folder, folder + V1.version + "/00001.jpg") == V1.version
    assert layout.version_of_dir_entry(folder, folder + "index.json") is None


@pytest.mark.parametrize("code, transient", [
    ("InternalError", True), ("ServiceUnavailable", True), ("Output.WriteFailed", True), ("ReadTimeout", True),
    ("InvalidParameter", False), ("InvalidInput.NotDecodable", False), ("ResourceNotFound", False),
    ("SomethingNew", False), (None, False),
])
def test_server_side_and_io_failures_are_transient_and_the_rest_final(code, transient):
    assert transient_failure(code) is transient


def test_a_backfill_stops_after_the_same_refusal_in_a_row_only():
    streak = RefusalStreak()

    def refused(code: str) -> Outcome:
        return Outcome("media", "k.mp4", OutcomeKind.REJECTED, reason=f"{code}: bad (RequestId 1)")

    assert streak.add(refused("InvalidParameter")) is None
    assert streak.add(refused("ResourceNotFound")) is None  # another code starts a new streak
    assert streak.add(Outcome("media", "k.mp4", OutcomeKind.SUBMITTED, "job")) is None
    reasons = [streak.add(refused("InvalidParameter")) for _ in range(MAX_CONSECUTIVE_ERRORS)]
    assert reasons[:-1] == [None] * (MAX_CONSECUTIVE_ERRORS - 1)
    assert reasons[-1] and "InvalidParameter" in reasons[-1] and f"{MAX_CONSECUTIVE_ERRORS} objects" in reasons[-1]


def _index_of(upload: Upload, job_id: str | None, status: str = "Success", deleted: str | None = None) -> dict:
    doc = {"schema": "snapshot-index/1", "source": upload.to_doc(), "job": {"id": job_id, "status": status},
           "snapshots": []}
    return dict(doc, deleted=deleted) if deleted else doc


def _job(job_id: str, status: str = "Success"):
    from snapshot_pipeline.domain import SnapshotJob

    return SnapshotJob.from_map({"JobId": job_id, "Status": status})


def test_what_the_reconciler_calls_current():
    from snapshot_pipeline.reconcile import index_is_current

    v2 = Upload(V1.bucket, V1.key, "AB" * 16, 10, WRITTEN + 5)
    assert index_is_current(_job("j1"), V1, _index_of(V1, "j1"))  # this very job, final
    assert not index_is_current(_job("j1"), V1, _index_of(V1, "j1", "Fail"))  # its state changed
    assert not index_is_current(_job("j2"), v2, _index_of(V1, "j1"))  # an older version's index is stale
    assert index_is_current(_job("j1"), V1, _index_of(v2, "j2"))  # a newer version owns it
    assert index_is_current(_job("j1b"), V1, _index_of(V1, "j1"))  # a second job of a version already shown
    assert not index_is_current(_job("j1b"), V1, _index_of(V1, "j1", "Fail"))  # ...which failed
    assert index_is_current(_job("j1"), V1, _index_of(V1, None, "Fail", deleted="2026-12-01T11:30:00Z"))
    assert not index_is_current(_job("j1"), V1, _index_of(V1, None, "Fail", deleted="2026-12-01T11:00:00Z"))
    assert not index_is_current(_job("j1"), V1, None)
