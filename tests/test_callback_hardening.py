"""The callback function: trusts only a valid signature, and only GetSnapshotJob's word."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.media import make_garbage
from snapshot_pipeline.callback import MAX_BODY_BYTES, MAX_SKEW_S, signature
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from tests.support import PIPELINE_TIMEOUT_S, assert_valid_index, default_result, jobs_for, wait_until

OLD_KEY = "OldKey2025abc"
# Far outside the accepted clock skew, so no slowness of the machine brings a timestamp back inside.
OUTSIDE_THE_WINDOW_S = MAX_SKEW_S * 12
# Longer than any slowness of the machine between a job's start and the callback's look at it.
JOB_DELAY_S = 20.0


@pytest.fixture(scope="module")
def cloud():
    options = LocalCloudOptions(bucket="callbacks", extra_env={"ICE_CALLBACK_AUTH_KEY_PREVIOUS": OLD_KEY})
    with LocalCloud(options) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(callback_drop_rate=0.0, job_delay_s=0.0)


def post(cloud, job_id: str, *, key: str | None = None, skew_s: int = 0, body: bytes | None = None):
    """POST a callback for ``job_id``, signed at the current time plus ``skew_s``."""
    ts = str(int(time.time()) + skew_s)
    sig = signature(cloud.callback_url, ts, key or cloud.callback_auth_key)
    data = body if body is not None else json.dumps(
        {"EventType": "SnapshotComplete", "MessageBody": {"JobId": job_id, "Status": "Success"}}).encode()
    req = urllib.request.Request(cloud.callback_url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", "X-ICE-TIMESTAMP": ts,
                                          "X-ICE-SIGNATURE": sig})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def finished_job_without_index(cloud, key: str, data: bytes):
    """Upload through the trigger with every callback dropped: a finished job, no index."""
    cloud.ice.set_faults(callback_drop_rate=1.0)
    cloud.bucket().put_object(key, data)
    wait_until(lambda: jobs_for(cloud, key) and jobs_for(cloud, key)[0].finished, f"a finished job for {key}")
    assert cloud.ice.wait_idle(PIPELINE_TIMEOUT_S)
    assert not cloud.bucket().object_exists(index_key("snapshots/", OssLocation("callbacks", key)))
    return jobs_for(cloud, key)[0]


def test_every_bad_call_is_401_and_writes_nothing(cloud, small_video):
    job = finished_job_without_index(cloud, "uploads/guarded.mp4", small_video)
    cases = {
        "wrong key": post(cloud, job.job_id, key="WrongKey123"),
        "too old": post(cloud, job.job_id, skew_s=-OUTSIDE_THE_WINDOW_S),
        "from the future": post(cloud, job.job_id, skew_s=OUTSIDE_THE_WINDOW_S),
        "too big": post(cloud, job.job_id, body=b" " * (MAX_BODY_BYTES + 1)),
    }
    for case, (status, payload) in cases.items():
        assert status == 401, case
        assert "invalid ICE callback" in payload["error"], case
    assert not cloud.bucket().object_exists(index_key("snapshots/", OssLocation("callbacks", "uploads/guarded.mp4")))
    status, payload = post(cloud, job.job_id)
    assert status == 200 and payload["status"] == "Success"
    assert_valid_index(cloud.wait_for_index("uploads/guarded.mp4", timeout=5))


def test_previous_key_is_accepted_during_rotation(cloud, small_video):
    job = finished_job_without_index(cloud, "uploads/rotated.mp4", small_video)
    status, _ = post(cloud, job.job_id, key=OLD_KEY)
    assert status == 200
    assert default_result(cloud.wait_for_index("uploads/rotated.mp4", timeout=5))["job"]["id"] == job.job_id


def test_job_still_running_is_202_and_nothing_written(cloud, small_video):
    assert post(cloud, "0" * 32)[0] == 404  # a warm callback instance: the job's delay is all margin
    cloud.ice.set_faults(job_delay_s=JOB_DELAY_S)
    cloud.bucket().put_object("uploads/slow-job.mp4", small_video)
    (job,) = wait_until(lambda: jobs_for(cloud, "uploads/slow-job.mp4"), "a job for uploads/slow-job.mp4")
    status, payload = post(cloud, job.job_id)
    assert status == 202 and payload["status"] == "Init"
    assert not cloud.bucket().object_exists(index_key("snapshots/", OssLocation("callbacks", "uploads/slow-job.mp4")))
    index = cloud.wait_for_index("uploads/slow-job.mp4", timeout=JOB_DELAY_S + PIPELINE_TIMEOUT_S)
    assert default_result(index)["job"]["status"] == "Success"


def test_failed_job_gets_an_index_with_its_code_and_message(cloud):
    cloud.bucket().put_object("uploads/broken.mp4", make_garbage(50_000))
    index = assert_valid_index(cloud.wait_for_index("uploads/broken.mp4", timeout=PIPELINE_TIMEOUT_S))
    assert default_result(index)["job"]["status"] == "Fail"
    assert default_result(index)["job"]["error"]["code"].startswith("InvalidInput")
    assert default_result(index)["job"]["error"]["message"]
    assert default_result(index)["snapshots"] == []


def test_replayed_callback_rewrites_the_same_index(cloud, small_video):
    job = finished_job_without_index(cloud, "uploads/replayed.mp4", small_video)
    assert post(cloud, job.job_id)[0] == 200
    first = cloud.wait_for_index("uploads/replayed.mp4", timeout=5)
    cloud.bucket().delete_object(index_key("snapshots/", OssLocation("callbacks", "uploads/replayed.mp4")))
    assert post(cloud, job.job_id)[0] == 200
    second = cloud.wait_for_index("uploads/replayed.mp4", timeout=5)  # written again by the replay
    assert second["generated_at"] >= first["generated_at"]

    def lasting(doc: dict) -> tuple:
        result = default_result(doc)
        return doc["source"], result["job"], [(s["index"], s["key"]) for s in result["snapshots"]]

    assert lasting(first) == lasting(second)


def test_callback_logs_hold_no_secret_signature_or_signed_url(cloud, small_video):
    job = finished_job_without_index(cloud, "uploads/logged.mp4", small_video)
    assert post(cloud, job.job_id, key="WrongKey123")[0] == 401
    assert post(cloud, job.job_id, key=OLD_KEY)[0] == 200
    assert post(cloud, job.job_id)[0] == 200
    logs = "\n".join([*cloud.fc.pools["callback"].logs, *cloud.fc.pools["submit"].logs])
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    callbacks = [line for line in lines if line.get("event") == "callback"]
    assert callbacks and all({"request_id", "outcome", "duration_s", "http_status"} <= set(c) for c in callbacks)
    assert any(c.get("job_id") and c.get("bucket") and c.get("key") for c in callbacks)
    for secret in (cloud.callback_auth_key, OLD_KEY, cloud.access_key_secret, "Signature=", "OSSAccessKeyId"):
        assert secret not in logs
