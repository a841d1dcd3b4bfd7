"""Nothing lost: with every callback dropped, one reconciler run indexes every upload."""
from __future__ import annotations

import json
import time

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline.claims import Claims
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from snapshot_pipeline.retry import Deadline
from tests.conftest import load_event
from tests.support import (
    PIPELINE_TIMEOUT_S,
    assert_valid_index,
    default_result,
    jobs_for,
    upload,
    upload_of,
    wait_until,
)


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="reconcile")) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(callback_drop_rate=0.0)


def settle(cloud, keys):
    wait_until(lambda: all(jobs_for(cloud, k) and all(j.finished for j in jobs_for(cloud, k)) for k in keys),
               f"finished jobs for {keys}")
    assert cloud.fc.wait_idle(PIPELINE_TIMEOUT_S) and cloud.ice.wait_idle(PIPELINE_TIMEOUT_S)


def index_of(cloud, key: str) -> dict:
    return json.loads(cloud.bucket().get_object(index_key("snapshots/", OssLocation("reconcile", key))).read())


def test_every_upload_ends_with_an_index_after_one_run_when_all_callbacks_are_dropped(cloud, small_video):
    cloud.ice.set_faults(callback_drop_rate=1.0)
    keys = [f"uploads/dropped-{n}.mp4" for n in range(4)]
    for key in keys:
        cloud.bucket().put_object(key, small_video)
    settle(cloud, keys)
    assert all(d["dropped"] for d in cloud.ice.deliveries() if d["job_id"] in
               {jobs_for(cloud, k)[0].job_id for k in keys})
    for key in keys:
        assert not cloud.bucket().object_exists(index_key("snapshots/", OssLocation("reconcile", key)))

    report = json.loads(cloud.fc.fire_timer("reconcile"))
    assert report["indexes_written"] >= 4 and report["errors"] == [] and report["complete"]
    for key in keys:
        index = assert_valid_index(index_of(cloud, key))
        assert default_result(index)["job"]["status"] == "Success" and len(default_result(index)["snapshots"]) == 5

    again = json.loads(cloud.fc.fire_timer("reconcile"))
    assert again["indexes_written"] == 0 and again["indexes_current"] >= 4


def test_a_claim_that_never_got_a_job_is_resubmitted(cloud, small_video):
    orphan = upload_of(cloud, upload(cloud, "manual/orphan.mp4", small_video))
    long_ago = time.time() - 3600
    Claims(cloud.store(), "reconcile", "snapshots/", lease_s=60, clock=lambda: long_ago).acquire(
        orphan, owner="crashed-before-submit")

    report = json.loads(cloud.fc.fire_timer("reconcile"))
    assert report["claims_resubmitted"] == 1
    index = assert_valid_index(cloud.wait_for_index("manual/orphan.mp4", timeout=PIPELINE_TIMEOUT_S))
    assert default_result(index)["job"]["status"] == "Success"
    assert len(jobs_for(cloud, "manual/orphan.mp4")) == 1
    assert json.loads(cloud.fc.fire_timer("reconcile"))["claims_resubmitted"] == 0
    assert len(jobs_for(cloud, "manual/orphan.mp4")) == 1


def test_a_live_claim_is_left_to_its_owner(cloud, small_video):
    in_progress = upload_of(cloud, upload(cloud, "manual/in-progress.mp4", small_video))
    Claims(cloud.store(), "reconcile", "snapshots/", lease_s=600).acquire(in_progress, owner="still-working")
    timer_tick = json.dumps(load_event("timer.json")).encode()  # the sample event, as `s invoke` would send it
    report = json.loads(cloud.fc.invoke("reconcile", timer_tick, trigger="timer"))
    assert report["claims_pending"] >= 1
    assert jobs_for(cloud, "manual/in-progress.mp4") == []


def test_a_claim_whose_video_was_deleted_gets_a_tombstone(cloud, small_video):
    deleted = upload_of(cloud, upload(cloud, "manual/deleted.mp4", small_video))
    long_ago = time.time() - 3600
    Claims(cloud.store(), "reconcile", "snapshots/", lease_s=60, clock=lambda: long_ago).acquire(
        deleted, owner="crashed")
    cloud.bucket().delete_object("manual/deleted.mp4")
    report = json.loads(cloud.fc.fire_timer("reconcile"))
    assert report["claims_source_gone"] == 1
    index = assert_valid_index(cloud.wait_for_index("manual/deleted.mp4", timeout=5))
    assert index["deleted"] and index["profiles"] == {}  # a tombstone: no profile shows anything
    assert jobs_for(cloud, "manual/deleted.mp4") == []


def test_a_sweep_lists_the_claims_of_its_window_and_every_pending_marker_whatever_the_window(cloud, small_video):
    from snapshot_pipeline.reconcile import Reconciler

    orphan = upload_of(cloud, upload(cloud, "manual/windowed.mp4", small_video))
    long_ago = time.time() - 3600
    Claims(cloud.store(), "reconcile", "snapshots/", lease_s=60, clock=lambda: long_ago).acquire(
        orphan, owner="crashed-before-submit")
    reconciler = Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(300))

    later = reconciler.run(since=time.time() + 5)  # a window that starts after the claim was written
    assert later.claims_seen == 0  # the window's claim listing reads nothing older...
    assert later.pending_seen >= 1 and later.claims_resubmitted >= 1  # ...but the upload's pending marker finds it
    assert len(jobs_for(cloud, "manual/windowed.mp4")) == 1
    again = reconciler.run(since=time.time() - 600)
    assert len(jobs_for(cloud, "manual/windowed.mp4")) == 1 and again.complete


def test_an_abandoned_claim_of_a_replaced_version_closes_without_touching_the_newer_index(cloud, small_video):
    from localcloud.media import make_test_video
    from snapshot_pipeline.submit import Submitter

    key = "manual/replaced.mp4"
    first = upload_of(cloud, upload(cloud, key, small_video))
    long_ago = time.time() - 3600
    Claims(cloud.store(), "reconcile", "snapshots/", lease_s=60, clock=lambda: long_ago).acquire(
        first, owner="crashed-before-submit")
    newer_video = make_test_video(duration_s=2.0, fps=25, width=160, height=120, gop_s=1.0)
    second = upload_of(cloud, upload(cloud, key, newer_video))
    assert second.etag != first.etag
    assert Submitter(cloud.settings(), cloud.ice_adapter(), cloud.store()).submit_upload(second, "trigger").job_id
    wait_until(lambda: cloud.bucket().object_exists(index_key("snapshots/", OssLocation("reconcile", key)))
               and default_result(index_of(cloud, key))["job"]["status"] == "Success", "the second version's index")

    report = json.loads(cloud.fc.fire_timer("reconcile"))
    assert report["claims_source_gone"] == 1 and report["errors"] == []
    index = assert_valid_index(index_of(cloud, key))  # still the second version's, not a failure of the first
    assert index["source"]["etag"] == second.etag and default_result(index)["job"]["status"] == "Success"
    assert json.loads(cloud.fc.fire_timer("reconcile"))["claims_source_gone"] == 0  # the first claim is closed
    assert len(jobs_for(cloud, key)) == 1
