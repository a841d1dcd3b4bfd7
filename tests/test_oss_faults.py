"""The local OSS's rate fault switches (errors, latency, lost answers), and what they prove of the pipeline:
its OSS retries carry uploads to a correct index through errors and latency, and lost answers to its
writes (claims created forbid-overwrite, pending markers, indexes) still end in one job and one index
per version."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import oss2
import pytest
from werkzeug.test import Client

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.oss.admin import AdminApp
from localcloud.oss.faults import OssFaults
from localcloud.oss.wire import OssRequest
from snapshot_pipeline.claims import Claims
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from snapshot_pipeline.pending import PENDING_DIR
from tests.conftest import ROOT
from tests.support import (
    PIPELINE_TIMEOUT_S,
    assert_valid_index,
    default_result,
    http_call,
    jobs_for,
    submit_records,
    version_of,
    wait_until,
)

STOP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def cloud():
    # A cloud of its own: the switches apply to every request, other files' uploads included.
    with LocalCloud(LocalCloudOptions(bucket="oss-faults")) as running:
        yield running


@pytest.fixture(autouse=True)
def no_fault_left(cloud):
    yield
    cloud.oss.clear_faults()


def request(method: str = "PUT", key: str = "k", user_agent: str = "aliyun-sdk-python/2.19.1(Linux)") -> OssRequest:
    return OssRequest(method, "b", key, [], {"user-agent": user_agent}, "127.0.0.1")


# --- the switches themselves ----------------------------------------------------------------------

def test_the_same_seed_draws_the_same_faults():
    def draws(seed: int) -> list[tuple[float, int | None, bool]]:
        faults = OssFaults()
        faults.set_rates(error_rate=0.3, drop_response_rate=0.2, latency_s=0.01, seed=seed)
        plans = [faults.plan(request()) for _ in range(300)]
        return [(p.delay_s, p.error.status if p.error else None, p.lose_answer) for p in plans]

    first = draws(7)
    assert first == draws(7) and first != draws(8)
    statuses = [status for _, status, _ in first]
    assert {500, 503} <= set(statuses) and 60 <= statuses.count(500) + statuses.count(503) <= 120
    assert 25 <= sum(lost for _, _, lost in first) <= 75  # 20 % of the ~210 performed
    assert not any(status and lost for _, status, lost in first)  # a failed request has no answer to lose
    assert {delay for delay, _, _ in first} == {0.01}


def test_the_switches_spare_the_local_ice_and_keep_to_their_methods_and_key_prefix():
    faults = OssFaults()
    faults.set_rates(error_rate=1.0, methods=["put", "DELETE"], key_prefix="snapshots/")
    assert faults.plan(request("PUT", "snapshots/x")).error is not None
    assert faults.plan(request("PUT", "uploads/x")).error is None
    assert faults.plan(request("GET", "snapshots/x")).error is None
    assert faults.plan(request("PUT", "snapshots/x", "aliyun-sdk-python/2.19.1(Linux)/localcloud-ice")).error is None
    assert faults.plan(request("PUT", "snapshots/x", "localcloud-ice")).error is None
    assert faults.rates() == {"error_rate": 1.0, "latency_s": 0.0, "drop_response_rate": 0.0,
                              "methods": ["PUT", "DELETE"], "key_prefix": "snapshots/"}
    assert faults.injected() == {"delayed": 0, "failed": 1, "lost": 0}
    faults.lose_answers(key_prefix="uploads/")  # an armed rule goes first, and spares no one
    assert faults.plan(request("PUT", "uploads/x", "localcloud-ice")).lose_answer


@pytest.mark.parametrize("bad", [{"error_rate": 1.5}, {"drop_response_rate": -0.1}, {"latency_s": "1"},
                                 {"methods": "PUT"}, {"key_prefix": 3}, {"seed": "x"}, {"lose_rate": 0.1}])
def test_a_bad_switch_is_refused_and_changes_nothing(bad):
    faults = OssFaults()
    faults.set_rates(error_rate=0.5)
    with pytest.raises(ValueError):
        faults.set_rates(**bad)
    assert faults.rates()["error_rate"] == 0.5


# --- through the wire: oss2, the admin endpoint, `up` ------------------------------------------------

OWN = "manual/faults/"  # these tests' switches spare the pipeline's work that an earlier test left in flight


def test_an_injected_error_does_no_work_and_a_lost_answer_does_it(cloud, small_video):
    bucket = cloud.bucket()
    cloud.oss.set_faults(error_rate=1.0, key_prefix=OWN, seed=1)
    with pytest.raises(oss2.exceptions.ServerError) as failed:
        bucket.put_object("manual/faults/failed.bin", b"never stored")
    assert failed.value.status in (500, 503) and failed.value.code in ("InternalError", "ServiceUnavailable")
    cloud.oss.set_faults(error_rate=0.0, drop_response_rate=1.0)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object("manual/faults/lost.bin", b"stored, unanswered")
    cloud.oss.clear_faults()
    assert not bucket.object_exists("manual/faults/failed.bin")
    assert bucket.get_object("manual/faults/lost.bin").read() == b"stored, unanswered"


def test_latency_is_added_to_every_request(cloud):
    bucket = cloud.bucket()
    bucket.put_object("manual/faults/slow.bin", b"x")
    cloud.oss.set_faults(latency_s=0.3, key_prefix=OWN)
    started = time.monotonic()
    for _ in range(3):
        bucket.head_object("manual/faults/slow.bin")
    assert time.monotonic() - started >= 0.9
    assert cloud.oss.injected_faults()["delayed"] == 3


def admin(cloud, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    status, answer = http_call(f"{cloud.oss.endpoint}/__localcloud/faults", method, body, timeout=10)
    return status, json.loads(answer)


def test_the_admin_endpoint_shows_and_sets_the_switches_without_a_signature(cloud):
    assert admin(cloud) == (200, {"error_rate": 0.0, "latency_s": 0.0, "drop_response_rate": 0.0,
                                  "methods": [], "key_prefix": ""})
    change = {"drop_response_rate": 0.25, "methods": ["PUT"], "key_prefix": OWN, "seed": 4}
    status, now = admin(cloud, "POST", json.dumps(change).encode())
    assert status == 200 and now == dict(now, drop_response_rate=0.25, methods=["PUT"], key_prefix=OWN)
    assert cloud.oss.faults() == now
    status, error = admin(cloud, "POST", b'{"error_rate": 2}')
    assert status == 400 and "error_rate" in error["error"] and cloud.oss.faults() == now
    assert admin(cloud, "POST", b"[1]")[0] == 400


def test_the_admin_endpoint_answers_loopback_clients_only():
    app = AdminApp(lambda environ, start_response: [], OssFaults())
    resp = Client(app).get("/__localcloud/faults", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert resp.status_code == 403 and "loopback" in resp.get_json()["error"]
    assert Client(app).get("/__localcloud/nothing", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_up_takes_the_oss_fault_flags(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "up", "--oss-error-rate", "0.2", "--oss-latency",
                             "0.01", "--oss-drop-response-rate", "0.1", "--fault-seed", "5"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                         "HOME": str(tmp_path),
                                                         "SNAPSHOTS_LOCAL_STATE": str(tmp_path / "state.json")})
    try:
        info = json.loads(proc.stdout.readline())
        with urllib.request.urlopen(f"{info['oss_endpoint']}/__localcloud/faults", timeout=10) as resp:
            faults = json.loads(resp.read())
        assert (faults["error_rate"], faults["latency_s"], faults["drop_response_rate"]) == (0.2, 0.01, 0.1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    assert proc.returncode == 0 and "Traceback" not in err, err


# --- what they prove of the pipeline ----------------------------------------------------------------

def final_index(cloud, key: str) -> dict:
    """The index of ``key`` once its job finished, read through the pipeline's retrying adapter."""
    store, where = cloud.store(), index_key("snapshots/", OssLocation(cloud.options.bucket, key))

    def finished() -> dict | None:
        doc = store.get_json(cloud.options.bucket, where)
        result = (doc or {}).get("profiles", {}).get("default", {})
        return doc if result.get("job", {}).get("status") in ("Success", "Fail") else None

    return wait_until(finished, f"a final index of {key}")


def assert_one_job_and_a_correct_index(cloud, key: str, index: dict) -> None:
    (job,) = jobs_for(cloud, key)  # ListSnapshotJobs: one job for the upload, whatever was retried
    result = default_result(assert_valid_index(index))
    assert result["job"] == dict(result["job"], id=job.job_id, status="Success")
    assert index["source"]["version"] == version_of(cloud, key) and len(result["snapshots"]) == 5
    bucket = cloud.bucket()
    assert all(bucket.object_exists(snap["key"]) for snap in result["snapshots"])


def test_the_pipelines_oss_retries_carry_uploads_through_errors_and_latency(cloud, small_video):
    keys = [f"uploads/oss-faults/errors-{i}.mp4" for i in range(3)]
    cloud.set_oss_faults(error_rate=0.3, latency_s=0.02, seed=12)
    store = cloud.store()  # the upload itself goes through the switches: the pipeline's adapter retries it
    for key in keys:
        store.put_bytes(cloud.options.bucket, key, small_video, content_type="video/mp4")
    indexes = {key: final_index(cloud, key) for key in keys}
    injected = cloud.oss.injected_faults()
    cloud.oss.clear_faults()
    assert injected["failed"] >= 15, injected  # every step of the way met errors
    for key, index in indexes.items():
        assert_one_job_and_a_correct_index(cloud, key, index)


@pytest.mark.parametrize("lost", [
    # Every write under the output prefix: claims (forbid-overwrite), pending markers, claim updates,
    # indexes, the markers' deletion.
    {"drop_response_rate": 0.35, "methods": ["PUT", "POST", "DELETE"], "key_prefix": "snapshots/", "seed": 21},
    # Every read, listing and deletion, the uploads' HEADs too, with errors on top.
    {"drop_response_rate": 0.4, "error_rate": 0.2, "methods": ["GET", "HEAD", "POST", "DELETE"], "seed": 12},
], ids=["writes", "reads"])
def test_lost_answers_still_make_one_job_and_one_index_per_version(cloud, small_video, lost):
    keys = [f"uploads/oss-faults/lost-{lost['seed']}-{i}.mp4" for i in range(4)]
    cloud.set_oss_faults(**lost)  # the uploads themselves (PUTs under uploads/) are answered
    for key in keys:
        cloud.bucket().put_object(key, small_video)
    indexes = {key: final_index(cloud, key) for key in keys}
    injected = cloud.oss.injected_faults()
    cloud.oss.clear_faults()
    assert injected["lost"] >= 5, injected
    settings = cloud.settings()
    claims = Claims(cloud.store(), cloud.options.bucket, settings.output_prefix, lease_s=60)
    for key, index in indexes.items():
        assert_one_job_and_a_correct_index(cloud, key, index)
        records = submit_records(cloud, key)
        assert not [r for r in records if "claimed by attempt" in (r.get("reason") or "")], records
    uploads = {claim.upload.key: claim for claim in claims.all_latest() if claim.upload.key in indexes}
    indexed_jobs = {key: default_result(indexes[key])["job"]["id"] for key in keys}
    assert {key: uploads[key].job_id for key in keys} == indexed_jobs
    pending = f"{settings.output_prefix}{PENDING_DIR}"
    wait_until(lambda: not list(cloud.store().list(cloud.options.bucket, pending)), "every pending marker settled",
               timeout=PIPELINE_TIMEOUT_S)
