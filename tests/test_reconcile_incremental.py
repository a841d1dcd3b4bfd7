"""A reconciler run costs O(new work): pending markers and a cursor, not the whole history (issue 11)."""
from __future__ import annotations

import json
import uuid

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from snapshot_pipeline.pending import CURSOR_KEY, PENDING_DIR
from snapshot_pipeline.reconcile import Reconciler
from snapshot_pipeline.retry import Deadline
from tests.support import PIPELINE_TIMEOUT_S, default_result, jobs_for, wait_until

BUCKET = "incremental"


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket=BUCKET)) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(callback_drop_rate=0.0)


def _keys(cloud, prefix: str) -> list[str]:
    return [o.key for o in cloud.store().list(BUCKET, prefix)]


def _upload_all(cloud, keys: list[str], video: bytes) -> None:
    for key in keys:
        cloud.bucket().put_object(key, video)
    wait_until(lambda: all(jobs_for(cloud, k) and all(j.finished for j in jobs_for(cloud, k)) for k in keys),
               f"finished jobs for {len(keys)} uploads")
    assert cloud.fc.wait_idle(PIPELINE_TIMEOUT_S) and cloud.ice.wait_idle(PIPELINE_TIMEOUT_S)


def _indexed(cloud, key: str) -> bool:
    location = index_key("snapshots/", OssLocation(BUCKET, key))
    return cloud.bucket().object_exists(location) and \
        default_result(json.loads(cloud.bucket().get_object(location).read()))["job"]["status"] == "Success"


def _reconciler(cloud) -> Reconciler:
    return Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(300))


def test_a_run_after_an_outage_indexes_only_what_is_new_and_reads_no_settled_claim(cloud, small_video):
    prefix = f"uploads/{uuid.uuid4().hex[:8]}/"
    history = [f"{prefix}old-{n}.mp4" for n in range(8)]
    _upload_all(cloud, history, small_video)
    wait_until(lambda: all(_indexed(cloud, k) for k in history), "the history's indexes")
    assert not _keys(cloud, f"snapshots/{PENDING_DIR}"), "settled uploads leave no pending marker"
    first = _reconciler(cloud).run()  # a deployment's first run: a sweep, which leaves a cursor
    assert cloud.bucket().object_exists(f"snapshots/{CURSOR_KEY}") and first.complete

    cloud.ice.set_faults(callback_drop_rate=1.0)  # an outage of ICE's callbacks
    lost = [f"{prefix}new-{n}.mp4" for n in range(5)]
    _upload_all(cloud, lost, small_video)
    assert not any(_indexed(cloud, k) for k in lost)
    assert len(_keys(cloud, f"snapshots/{PENDING_DIR}")) == len(lost)  # exactly the unsettled ones
    cloud.ice.set_faults(callback_drop_rate=0.0)

    run = _reconciler(cloud).run()
    assert run.mode == "incremental" and run.complete and run.errors == []
    assert run.pending_seen == len(lost) and run.indexes_written == len(lost)
    assert run.claims_seen == 0  # no claim listing: the settled history is not read
    assert all(_indexed(cloud, k) for k in lost + history)
    assert all(len(jobs_for(cloud, k)) == 1 for k in lost + history)
    assert not _keys(cloud, f"snapshots/{PENDING_DIR}")

    quiet = _reconciler(cloud).run()  # nothing new: nothing pending, and only the overlap's jobs listed
    assert quiet.mode == "incremental" and quiet.pending_seen == 0 and quiet.indexes_written == 0


def test_a_job_still_running_stays_pending_until_it_finishes(cloud, small_video):
    key = f"uploads/{uuid.uuid4().hex[:8]}/held.mp4"
    _reconciler(cloud).run()  # make sure a cursor exists
    cloud.ice.hold_jobs(True)
    try:
        cloud.bucket().put_object(key, small_video)
        wait_until(lambda: jobs_for(cloud, key), "the held job")
        cloud.ice.set_faults(callback_drop_rate=1.0)
        running = _reconciler(cloud).run()
        assert running.jobs_running >= 1 and not _indexed(cloud, key)
        (job,) = jobs_for(cloud, key)
        assert cloud.ice.release_job(job.job_id) == "Success"
    finally:
        cloud.ice.hold_jobs(False)
        cloud.ice.release_all()
    done = _reconciler(cloud).run()
    assert done.indexes_written >= 1 and _indexed(cloud, key)
