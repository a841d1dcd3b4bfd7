"""One correct, immutable result per upload version (issue 10), as a reader of the index sees it.

Driven through the session's local cloud: the OSS trigger runs the submit function, the local ICE
runs the jobs (held and released in a chosen order where the order matters) and calls back the
callback function. Every video is a flat colour of its own size, so the pixels of an index's
snapshots show which video they came from. Each test names the numbered failure of issue 10 it
reproduces, and fails on the commit before the fix (3f5965f); the legacy-index test guards the
migration instead (there it fails only for want of the new layout module).
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key, legacy_index_key
from snapshot_pipeline.submit import Submitter
from tests.support import (
    assert_snapshots_show,
    assert_valid_index,
    coloured_video,
    default_result,
    jobs_for,
    oss_record,
    output_versions,
    upload_of,
    version_of,
    wait_until,
)
from tests.test_cli import local_env, run, state_file  # noqa: F401 (the CLI's fixtures, for `snapshots index`)

RED, BLUE, GREEN = (200, 40, 40), (40, 40, 200), (40, 190, 40)
SMALL, LARGE = (64, 48), (96, 64)
OTHER_BUCKET = "other-media"


def unique_key(name: str) -> str:
    """A key under the trigger's upload prefix that no other test uses."""
    return f"uploads/v10-{uuid.uuid4().hex[:8]}/{name}"


def index_of(cloud, key: str, bucket: str | None = None) -> dict | None:
    """The index a reader finds at the stable place of ``oss://bucket/key`` (None when there is none)."""
    source = OssLocation(bucket or cloud.options.bucket, key)
    return cloud.store().get_json(cloud.options.bucket, index_key("snapshots/", source))


def wait_for_version_index(cloud, key: str, version: str, bucket: str | None = None) -> dict:
    """The index of ``oss://bucket/key`` once it describes ``version`` with snapshots."""
    def indexed() -> dict | None:
        doc = index_of(cloud, key, bucket)
        found = doc is not None and doc["source"].get("version") == version and default_result(doc)["snapshots"]
        return doc if found else None

    return assert_valid_index(wait_until(indexed, f"the index of {key} describing version {version}"))


def put(cloud, key: str, data: bytes) -> tuple[str, str]:
    """Upload ``data`` at ``key`` (through the trigger); its (version, ETag) as the pipeline names them."""
    etag = cloud.bucket().put_object(key, data).etag.upper()
    return version_of(cloud, key), etag


def held_job(cloud, key: str, version: str) -> str:
    """The id of the held job submitted for ``version`` of ``key``."""
    def find() -> str | None:
        held = set(cloud.ice.held_jobs())
        ids = [j.job_id for j in jobs_for(cloud, key) if j.job_id in held and f"/{version}/" in j.output.key]
        return ids[0] if ids else None

    return wait_until(find, f"the held job of {key} version {version}")


def wait_until_idle(cloud) -> None:
    """Until nothing is in flight: no function invocation (or its retry) pending, no job, no callback."""
    assert cloud.fc.wait_idle(120) and cloud.ice.wait_idle(120) and cloud.fc.wait_idle(120)


def callback_outcomes(cloud, job_id: str) -> list[tuple[int, str]]:
    """(HTTP status, outcome) of every call of the callback function for ``job_id``, oldest first."""
    outcomes = []
    for line in list(cloud.fc.pools["callback"].logs):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if doc.get("event") == "callback" and doc.get("job_id") == job_id:
            outcomes.append((doc["http_status"], doc["outcome"]))
    return outcomes


# --- failure 1: two buckets, one key --------------------------------------------------------------
def test_two_buckets_with_the_same_key_keep_their_own_index_and_snapshots(cloud):
    # Issue 10, failure 1: `other`'s backfill overwrote `media`'s index and JPEGs (one shared folder).
    key = unique_key("x.mp4")
    other = cloud.bucket(OTHER_BUCKET)
    other.create_bucket()
    media_version, _ = put(cloud, key, coloured_video(RED, *SMALL))
    other.put_object(key, coloured_video(BLUE, *LARGE))  # not watched by the trigger: submitted as backfill does
    other_upload = upload_of(cloud, oss_record(OTHER_BUCKET, key, other.head_object(key).etag.upper(), 0))
    Submitter(cloud.settings(), cloud.ice_adapter(), cloud.store()).submit_upload(other_upload, owner="test-backfill")

    media_index = wait_for_version_index(cloud, key, media_version)
    other_index = wait_for_version_index(cloud, key, other_upload.version, bucket=OTHER_BUCKET)
    assert media_index["source"]["bucket"] == cloud.options.bucket and media_index["source"]["key"] == key
    assert other_index["source"]["bucket"] == OTHER_BUCKET and other_index["source"]["key"] == key
    assert all(s["key"].startswith(f"snapshots/{cloud.options.bucket}/{key}/{media_version}/")
               for s in default_result(media_index)["snapshots"])
    assert all(s["key"].startswith(f"snapshots/{OTHER_BUCKET}/{key}/{other_upload.version}/")
               for s in default_result(other_index)["snapshots"])
    assert_snapshots_show(cloud, media_index, SMALL, RED)
    assert_snapshots_show(cloud, other_index, LARGE, BLUE)


# --- failure 3: old versions never overwrite new ones ---------------------------------------------
@pytest.mark.parametrize("release_order", [("v1", "v2"), ("v2", "v1")])
def test_an_old_versions_job_never_replaces_the_new_versions_index(cloud, release_order):
    # Issue 10, failure 3: v1's late job (or its callback again) rewrote index.json and the JPEGs.
    key = unique_key("versions.mp4")
    cloud.ice.hold_jobs(True)
    try:
        v1, _ = put(cloud, key, coloured_video(RED, *SMALL))
        jobs = {"v1": held_job(cloud, key, v1)}  # v1's job exists before v2 replaces the object
        v2, v2_etag = put(cloud, key, coloured_video(BLUE, *LARGE))
        jobs["v2"] = held_job(cloud, key, v2)
        for name in release_order:
            assert cloud.ice.release_job(jobs[name]) == "Success"
            assert cloud.ice.wait_idle(120)  # its callback answered
    finally:
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()

    index = wait_for_version_index(cloud, key, v2)
    assert index["source"]["etag"] == v2_etag and default_result(index)["job"]["id"] == jobs["v2"]
    assert_snapshots_show(cloud, index, LARGE, BLUE)
    assert list(output_versions(cloud, key)) == [v2]  # v1's outputs are gone
    assert callback_outcomes(cloud, jobs["v1"]) == [(200, "superseded")]

    assert cloud.ice.redeliver_callback(jobs["v1"]) == 200  # v1's callback once more, after v2 is indexed
    assert callback_outcomes(cloud, jobs["v1"])[-1] == (200, "superseded")
    assert index_of(cloud, key) == index
    assert list(output_versions(cloud, key)) == [v2]


def test_a_burst_of_writes_ends_indexing_the_current_version_only(cloud):
    # Issue 10, failure 3: after 20 writes of one key in ~3 s the index named an older version.
    for _ in range(3):
        key = unique_key("burst.mp4")
        sizes = {}
        for n in range(20):
            size = (32 + 4 * n, 32)  # each write its own picture size
            sizes[cloud.bucket().put_object(key, coloured_video(GREEN, *size)).etag.upper()] = size
            time.sleep(0.15)
        current = version_of(cloud, key)
        index = wait_for_version_index(cloud, key, current)
        wait_until_idle(cloud)

        index = assert_valid_index(index_of(cloud, key))
        assert index["source"]["version"] == version_of(cloud, key) == current
        assert_snapshots_show(cloud, index, sizes[index["source"]["etag"]], GREEN)
        assert list(output_versions(cloud, key)) == [current]  # every earlier version's outputs deleted


# --- failure 7: copies ------------------------------------------------------------------------------
def test_a_copy_to_a_new_key_gets_a_job_and_an_index(cloud):
    # Issue 10, failure 7: an object created by CopyObject got no job and no index.
    original = f"manual-v10-{uuid.uuid4().hex[:8]}/red.mp4"  # outside the upload prefix: no job of its own
    cloud.bucket().put_object(original, coloured_video(RED, *SMALL))
    copy = unique_key("copied.mp4")
    cloud.bucket().copy_object(cloud.options.bucket, original, copy)

    index = wait_for_version_index(cloud, copy, version_of(cloud, copy))
    assert index["source"]["key"] == copy
    assert len(jobs_for(cloud, copy)) == 1 and jobs_for(cloud, original) == []
    assert_snapshots_show(cloud, index, SMALL, RED)


def test_a_copy_over_an_indexed_key_is_a_new_version_whose_index_replaces_the_old(cloud):
    # Issue 10, failure 7: a copy over an indexed key left the old index (and its snapshots) in place.
    key = unique_key("overwritten.mp4")
    first, _ = put(cloud, key, coloured_video(BLUE, *LARGE))
    wait_for_version_index(cloud, key, first)
    original = f"manual-v10-{uuid.uuid4().hex[:8]}/red.mp4"
    cloud.bucket().put_object(original, coloured_video(RED, *SMALL))
    cloud.bucket().copy_object(cloud.options.bucket, original, key)

    copied = version_of(cloud, key)
    assert copied != first
    index = wait_for_version_index(cloud, key, copied)
    assert index["source"]["etag"] == cloud.bucket().head_object(key).etag.upper()
    assert_snapshots_show(cloud, index, SMALL, RED)
    assert len(jobs_for(cloud, key)) == 2


# --- `snapshots index`: the current index, wherever the layout puts it ------------------------------
@pytest.mark.usefixtures("local_env")
def test_snapshots_index_prints_the_current_versions_index(cloud, run):  # noqa: F811 (a fixture)
    # Issue 10, failures 1 and 3: a reader finds the current version's index by the source's name.
    key = unique_key("cli.mp4")
    first, _ = put(cloud, key, coloured_video(RED, *SMALL))
    wait_for_version_index(cloud, key, first)
    second, _ = put(cloud, key, coloured_video(BLUE, *LARGE))
    index = wait_for_version_index(cloud, key, second)

    code, out, _ = run("--local", "index", f"oss://media/{key}", "--json")
    assert code == 0 and json.loads(out) == index
    code, out, _ = run("--local", "index", f"oss://media/{key}")
    assert code == 0 and f"oss://media/snapshots/media/{key}/{second}/" in out and f"/{first}/" not in out


@pytest.mark.usefixtures("local_env")
def test_snapshots_index_still_prints_an_index_of_the_old_layout(cloud, run):  # noqa: F811 (a fixture)
    # Issue 10, migration: an index written before versioned outputs stays readable.
    key = f"manual-v10-{uuid.uuid4().hex[:8]}/legacy.mp4"  # no trigger: only the legacy index exists
    etag = cloud.bucket().put_object(key, coloured_video(RED, *SMALL)).etag.upper()
    legacy = assert_valid_index({
        "schema": "snapshot-index/1",
        "source": {"bucket": "media", "key": key, "etag": etag, "size": 1},
        "job": {"id": "0" * 32, "status": "Success", "template_id": cloud.template_id, "type": "Normal",
                "created": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:01Z"},
        "snapshots": [], "generated_at": "2026-01-01T00:00:00Z"})
    legacy_key = legacy_index_key("snapshots/", OssLocation("media", key))
    assert legacy_key == f"snapshots/{key}/index.json"
    cloud.store().put_json("media", legacy_key, legacy)

    code, out, _ = run("--local", "index", f"oss://media/{key}", "--json")
    assert code == 0 and json.loads(out) == legacy


# --- failure 8: deletion ----------------------------------------------------------------------------
def wait_for_tombstone(cloud, key: str) -> dict:
    """The index of ``key`` once it is a tombstone; checked as a reader sees it: no snapshots, no outputs."""
    index = assert_valid_index(wait_until(lambda: (doc := index_of(cloud, key)) and "deleted" in doc and doc,
                                          f"the tombstone of {key}"))
    assert index["profiles"] == {} and index["source"]["key"] == key  # a tombstone: no profile shows anything
    wait_until(lambda: output_versions(cloud, key) == {}, f"every output of {key} removed")
    return index


def test_deleting_an_indexed_video_leaves_a_tombstone_and_no_outputs(cloud):
    # Issue 10, failure 8: a deleted video kept its index and snapshots for ever.
    key = unique_key("deleted.mp4")
    version, _ = put(cloud, key, coloured_video(RED, *SMALL))
    indexed = wait_for_version_index(cloud, key, version)
    cloud.bucket().delete_object(key)

    tombstone = wait_for_tombstone(cloud, key)
    assert tombstone["source"]["version"] == version and tombstone["deleted"] >= indexed["generated_at"]
    assert not any(cloud.bucket().object_exists(s["key"]) for s in default_result(indexed)["snapshots"])


def test_a_video_deleted_while_its_job_runs_stays_deleted(cloud):
    # Issue 10, failure 8: a deletion racing the job's completion must end deleted, never resurrected.
    key = unique_key("deleted-while-held.mp4")
    cloud.ice.hold_jobs(True)
    try:
        version, _ = put(cloud, key, coloured_video(RED, *SMALL))
        job_id = held_job(cloud, key, version)
        cloud.bucket().delete_object(key)
        wait_for_tombstone(cloud, key)
        cloud.ice.release_job(job_id)
        assert cloud.ice.wait_idle(120)
    finally:
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()
    assert callback_outcomes(cloud, job_id) == [(200, "deleted")]
    assert cloud.ice.redeliver_callback(job_id) == 200
    assert callback_outcomes(cloud, job_id)[-1] == (200, "deleted")
    wait_for_tombstone(cloud, key)


def test_a_video_deleted_after_its_job_wrote_the_snapshots_but_before_the_callback_stays_deleted(cloud):
    # Issue 10, failure 8: the job's outputs exist when the deletion is followed; its callback comes after.
    key = unique_key("deleted-before-callback.mp4")
    cloud.ice.hold_jobs(True)
    try:
        version, _ = put(cloud, key, coloured_video(RED, *SMALL))
        job_id = held_job(cloud, key, version)
        cloud.ice.set_faults(callback_drop_rate=1.0)  # its callback is lost, to be delivered again later
        assert cloud.ice.release_job(job_id) == "Success"
        assert cloud.ice.wait_idle(120) and callback_outcomes(cloud, job_id) == []
        assert list(output_versions(cloud, key)) == [version]
    finally:
        cloud.ice.set_faults(callback_drop_rate=0.0)
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()
    cloud.bucket().delete_object(key)
    wait_for_tombstone(cloud, key)
    assert cloud.ice.redeliver_callback(job_id) == 200
    assert callback_outcomes(cloud, job_id) == [(200, "deleted")]
    wait_for_tombstone(cloud, key)


def test_the_same_bytes_uploaded_after_a_deletion_get_a_new_job_and_fresh_snapshots(cloud):
    # Issue 10, failure 8: the claim of the deleted version made the same bytes again a "duplicate".
    key = unique_key("again.mp4")
    video = coloured_video(BLUE, *LARGE)
    first, etag = put(cloud, key, video)
    first_written = cloud.bucket().head_object(key).last_modified
    wait_for_version_index(cloud, key, first)
    cloud.bucket().delete_object(key)
    wait_for_tombstone(cloud, key)
    # A version is its ETag and its Last-Modified second: the same bytes in the same second are the
    # same version. Write them again in a later second, as any re-upload after a deletion is.
    wait_until(lambda: time.time() >= first_written + 1, "a second later than the first upload")

    again, again_etag = put(cloud, key, video)
    assert again_etag == etag and again != first
    index = wait_for_version_index(cloud, key, again)
    assert "deleted" not in index and default_result(index)["job"]["status"] == "Success"
    assert_snapshots_show(cloud, index, LARGE, BLUE)
    assert len(jobs_for(cloud, key)) == 2
    assert list(output_versions(cloud, key)) == [again]
