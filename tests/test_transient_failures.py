"""Transient versus final failures (issue 10, case 6): a job that fails for a server-side reason is
submitted again with backoff, a bounded number of times, before an index records a final failure;
a bad input or parameter is final at once; a backfill that meets the same refusal on every object
stops after a few. Each test asserts what a reader of the index sees."""
from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.media import make_garbage, make_test_video
from snapshot_pipeline.backfill import MAX_CONSECUTIVE_ERRORS
from snapshot_pipeline.claims import MAX_JOB_ATTEMPTS, Claim, Claims
from snapshot_pipeline.domain import OssLocation, Upload
from snapshot_pipeline.layout import index_key
from snapshot_pipeline.reconcile import Reconciler, ReconcileReport
from snapshot_pipeline.retry import Deadline
from snapshot_pipeline.submit import job_name
from tests.support import (
    PIPELINE_TIMEOUT_S,
    assert_valid_index,
    cli_runner,
    default_result,
    function_log,
    jobs_for,
    oss_event,
    oss_record,
    post_signed_callback,
    wait_until,
)

BUCKET = "transient"
PREFIX = "snapshots/"
#: How long the local OSS holds the submitter's writes of its claim: far longer than a job that fails at
#: once takes to reach the callback, even on a busy machine.
CLAIM_RECORD_DELAY_S = 8.0


@pytest.fixture(scope="module")
def cloud():
    """A cloud of this module's own: ``fail_jobs`` fails whichever jobs ICE processes next, and the
    reconciler below runs an hour ahead, so no other module's jobs or claims may be around."""
    with LocalCloud(LocalCloudOptions(bucket=BUCKET)) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(fail_jobs={})


@pytest.fixture
def run(cloud, monkeypatch, capsys, tmp_path: Path):
    return cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)


def put_video(cloud, key: str, data: bytes) -> Upload:
    """Put an object (under uploads/ the trigger submits it); the upload as the pipeline sees it."""
    cloud.bucket().put_object(key, data)
    info = cloud.store().head(BUCKET, key)
    assert info is not None
    return Upload.of_object(BUCKET, info)


def finished_jobs(cloud, key: str, count: int) -> list:
    """Wait for ``count`` finished jobs of ``key``; they are returned in attempt order (by Name)."""
    def done() -> list | None:
        jobs = jobs_for(cloud, key)
        return jobs if len(jobs) == count and all(j.finished for j in jobs) else None

    listed = wait_until(done, f"{count} finished job(s) for {key}")
    ice = cloud.ice_adapter()  # the listing has no Code: GetSnapshotJob has everything
    return sorted((ice.get_snapshot_job(j.job_id) for j in listed), key=lambda j: j.name or "")


def latest_claim(cloud, upload: Upload) -> Claim | None:
    return Claims(cloud.store(), BUCKET, PREFIX, lease_s=60).latest(upload)


def retry_scheduled(cloud, upload: Upload, attempt: int) -> Claim:
    """Wait until the claims hold the next attempt: a new generation, no job yet."""
    def scheduled() -> Claim | None:
        claim = latest_claim(cloud, upload)
        return claim if claim is not None and claim.attempt == attempt and claim.job_id is None else None

    return wait_until(scheduled, f"attempt {attempt} of {upload.key} scheduled")


def index_of(cloud, key: str) -> dict | None:
    location = index_key(PREFIX, OssLocation(BUCKET, key))
    if not cloud.bucket().object_exists(location):
        return None
    return json.loads(cloud.bucket().get_object(location).read())


def index_of_job(cloud, key: str, job_id: str) -> dict:
    index = wait_until(lambda: (doc := index_of(cloud, key)) and default_result(doc)["job"]["id"] == job_id and doc,
                       f"the index of {key} naming job {job_id}")
    return assert_valid_index(index)


def reconcile_an_hour_later(cloud) -> ReconcileReport:
    """One reconciler run with a clock past every retry's backoff. (Its counts cover the whole
    module's cloud: tests judge by their own key's jobs and index.)"""
    reconciler = Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(300),
                            clock=lambda: time.time() + 3600)
    report = reconciler.run()
    assert report.errors == [] and report.complete
    return report


def assert_pictures(cloud, index: dict) -> None:
    assert default_result(index)["job"]["status"] == "Success" and len(default_result(index)["snapshots"]) == 5
    for snap in default_result(index)["snapshots"]:
        image = Image.open(io.BytesIO(cloud.bucket(snap["bucket"]).get_object(snap["key"]).read()))
        assert image.format == "JPEG" and image.size == (320, 240)


def unique_key() -> str:
    return f"uploads/{uuid.uuid4().hex[:8]}/clip.mp4"


def test_a_transient_failure_is_retried_and_the_retry_is_indexed(cloud, small_video):
    """Case 6: an InternalError was indexed as a final failure, exactly like a bad parameter."""
    key = unique_key()
    cloud.ice.set_faults(fail_jobs={"code": "InternalError", "count": 1})
    the_upload = put_video(cloud, key, small_video)
    (first,) = finished_jobs(cloud, key, 1)
    assert first.status == "Fail" and first.code == "InternalError"
    claim = retry_scheduled(cloud, the_upload, attempt=2)
    assert claim.generation == 2 and claim.doc["retry_of"]["job_id"] == first.job_id
    assert claim.expires_at > time.time() + 30  # the retry waits out its backoff
    assert cloud.fc.wait_idle(PIPELINE_TIMEOUT_S)
    answers = [r for r in function_log(cloud, "callback", "callback") if r.get("job_id") == first.job_id]
    assert answers and all(r["outcome"] == "retrying" and r["http_status"] == 200 for r in answers)
    status, payload = post_signed_callback(cloud, json.dumps({"MessageBody": {"JobId": first.job_id}}).encode())
    assert status == 200 and payload["outcome"] == "retrying"
    assert index_of(cloud, key) is None  # no failure for a reader to take as final

    assert reconcile_an_hour_later(cloud).claims_resubmitted >= 1
    first, second = finished_jobs(cloud, key, 2)
    assert second.name == job_name(the_upload, 2) and second.name.endswith("-2")
    assert second.status == "Success"
    assert_pictures(cloud, index_of_job(cloud, key, second.job_id))


def test_a_transient_failure_whose_callback_comes_before_the_claim_records_the_job_is_retried(
        cloud, small_video):
    """Case 6, in a race: ICE can call back before the submitter has written the JobId into its claim
    (a job that fails at once, a slow OSS). The callback must still see the job as the claim's attempt,
    not index a transient failure as final."""
    key = f"manual/{uuid.uuid4().hex[:8]}/raced.mp4"  # outside the trigger's prefix: submitted below
    the_upload = put_video(cloud, key, small_video)
    first_claim = f"{PREFIX}_claims/{the_upload.id}/000001.json"
    cloud.oss.delay_requests(CLAIM_RECORD_DELAY_S, method="PUT", key_prefix=first_claim, count=2)
    cloud.ice.set_faults(fail_jobs={"code": "InternalError", "count": 1})
    try:
        (outcome,) = json.loads(cloud.fc.invoke("submit", oss_event(oss_record(
            BUCKET, key, the_upload.etag, the_upload.size))))
    finally:
        cloud.oss.clear_faults()
    assert outcome["outcome"] == "submitted"
    (first,) = finished_jobs(cloud, key, 1)
    assert first.job_id == outcome["job_id"] and first.code == "InternalError"
    assert cloud.ice.wait_idle(PIPELINE_TIMEOUT_S) and cloud.fc.wait_idle(PIPELINE_TIMEOUT_S)
    answers = [r for r in function_log(cloud, "callback", "callback") if r.get("job_id") == first.job_id]
    assert answers and answers[0]["outcome"] == "retrying"  # it came while the claim had no JobId
    assert index_of(cloud, key) is None
    retry_scheduled(cloud, the_upload, attempt=2)
    assert reconcile_an_hour_later(cloud).claims_resubmitted >= 1
    second = finished_jobs(cloud, key, 2)[-1]
    assert second.name == job_name(the_upload, 2)
    assert_pictures(cloud, index_of_job(cloud, key, second.job_id))


def test_a_failure_on_every_attempt_is_final_after_three_and_a_backfill_retries_it_only_when_asked(
        cloud, run, small_video):
    """Case 6: after MAX_JOB_ATTEMPTS transient failures the failure is indexed as final; a plain
    backfill leaves it, ``--retry-failed`` submits it again."""
    key = unique_key()
    cloud.ice.set_faults(fail_jobs={"code": "InternalError", "count": MAX_JOB_ATTEMPTS})
    the_upload = put_video(cloud, key, small_video)
    for attempt in range(1, MAX_JOB_ATTEMPTS):
        finished_jobs(cloud, key, attempt)
        retry_scheduled(cloud, the_upload, attempt + 1)
        assert index_of(cloud, key) is None
        assert reconcile_an_hour_later(cloud).claims_resubmitted >= 1
    jobs = finished_jobs(cloud, key, MAX_JOB_ATTEMPTS)
    assert [j.name for j in jobs] == [job_name(the_upload, n) for n in range(1, MAX_JOB_ATTEMPTS + 1)]
    index = index_of_job(cloud, key, jobs[-1].job_id)
    result = default_result(index)
    assert result["job"]["status"] == "Fail" and result["job"]["error"]["code"] == "InternalError"
    assert result["snapshots"] == []
    reconcile_an_hour_later(cloud)
    assert len(jobs_for(cloud, key)) == MAX_JOB_ATTEMPTS  # no 4th job

    source = f"oss://{BUCKET}/{key.rsplit('/', 1)[0]}/"
    code, out = run("--local", "backfill", source, "--json")
    assert code == 0 and json.loads(out)["submitted"] == 0  # a final failure stays, unless the operator asks
    code, out = run("--local", "backfill", source, "--retry-failed", "--json")
    assert code == 0 and json.loads(out)["submitted"] == 1
    retried = finished_jobs(cloud, key, MAX_JOB_ATTEMPTS + 1)[-1]
    assert_pictures(cloud, index_of_job(cloud, key, retried.job_id))


@pytest.mark.parametrize("cause", ["undecodable-video", "bad-input-code"])
def test_a_final_failure_is_indexed_at_once_and_never_retried(cloud, small_video, cause):
    """Case 6, the other half: bad input stays final at once (no retry scheduled, no second job)."""
    key = unique_key()
    if cause == "bad-input-code":
        cloud.ice.set_faults(fail_jobs={"code": "InvalidInput.NotDecodable", "count": 1})
    the_upload = put_video(cloud, key, make_garbage(50_000) if cause == "undecodable-video" else small_video)
    (job,) = finished_jobs(cloud, key, 1)
    index = index_of_job(cloud, key, job.job_id)
    pending = f"{PREFIX}_pending/{the_upload.id}.json"  # the callback's publication is over once it settled
    wait_until(lambda: not cloud.bucket().object_exists(pending), f"the pending marker of {key} settled")
    indexed_job = default_result(index)["job"]
    assert indexed_job["status"] == "Fail" and indexed_job["error"]["code"].startswith("InvalidInput")
    claim = latest_claim(cloud, the_upload)
    assert claim is not None and claim.generation == 1 and claim.attempt == 1 and claim.job_id == job.job_id
    reconcile_an_hour_later(cloud)
    assert len(jobs_for(cloud, key)) == 1 and index_of(cloud, key) == index


def test_a_backfill_refused_on_every_object_stops_after_a_few(cloud, run):
    """Case 6: a backfill meeting the same refusal on every object marked the whole prefix failed."""
    folder = f"manual-{uuid.uuid4().hex[:8]}"
    tiny = make_test_video(duration_s=1.0, width=64, height=48)
    keys = [f"{folder}/{n:02d}.mp4" for n in range(MAX_CONSECUTIVE_ERRORS + 3)]
    uploads = [put_video(cloud, key, tiny + bytes([n])) for n, key in enumerate(keys)]  # distinct versions
    code, out = run("--local", "backfill", f"oss://{BUCKET}/{folder}/", "--overwrite", '{"Count": -1}', "--json")
    report = json.loads(out)
    assert code != 0 and "InvalidParameter" in report["aborted"]
    assert report["rejected"] == MAX_CONSECUTIVE_ERRORS and report["submitted"] == 0
    # The backfill's workers take objects in listing order but finish in any order: which five were
    # refused is not fixed, only that five were, each with its failure indexed, and the rest untouched.
    refused = [u for u in uploads if index_of(cloud, u.key) is not None]
    untouched = [u for u in uploads if index_of(cloud, u.key) is None]
    assert len(refused) == MAX_CONSECUTIVE_ERRORS and len(untouched) == 3
    for upload in refused:
        assert default_result(index_of(cloud, upload.key))["job"]["error"]["code"] == "InvalidParameter"
    for upload in untouched:  # not submitted: no index, no claim
        assert latest_claim(cloud, upload) is None
    assert [jobs_for(cloud, key) for key in keys] == [[]] * len(keys)
