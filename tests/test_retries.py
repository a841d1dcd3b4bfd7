"""Retries that end: backoff with jitter within the deadline, against the local ICE's faults.

Sleep and clock are injected, so throttling is tested instantly."""
from __future__ import annotations

import socket

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline.credentials import Credentials
from snapshot_pipeline.ice import IceClient
from snapshot_pipeline.ports import IceError, ObjectStoreError
from snapshot_pipeline.retry import Deadline, RetryPolicy
from snapshot_pipeline.store import OssStore
from snapshot_pipeline.submit import Submitter
from tests.support import PIPELINE_TIMEOUT_S, VirtualTime, default_result, jobs_for, oss_event, upload, upload_of


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    t = VirtualTime()
    policy = RetryPolicy(base_s=0.2, cap_s=5.0, sleep=t.sleep, random=lambda: 1.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 8:
            raise IceError("Throttling.User", "slow down", status_code=400)
        return "ok"

    assert policy.call(flaky, deadline=Deadline(1000, t.clock), retryable=lambda e: e.retryable) == "ok"
    assert t.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    jittered = RetryPolicy(sleep=t.sleep, random=lambda: 0.5)
    t.sleeps.clear()
    calls.clear()
    jittered.call(flaky, deadline=Deadline(1000, t.clock), retryable=lambda e: e.retryable)
    assert t.sleeps[:3] == [0.1, 0.2, 0.4]


def test_refusals_wait_at_most_a_second_and_do_not_lengthen_the_backoff_of_failures():
    t = VirtualTime()
    policy = RetryPolicy(base_s=0.2, cap_s=5.0, throttled_cap_s=1.0, sleep=t.sleep, random=lambda: 1.0)
    throttled = IceError("Throttling.User", "slow down", status_code=400)
    errors = iter([throttled] * 6 + [IceError("InternalError", "boom", status_code=500)] * 6 + [throttled])

    def refused_then_failing():
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    assert policy.call(refused_then_failing, deadline=Deadline(1000, t.clock), retryable=lambda e: e.retryable,
                       throttled=lambda e: e.throttled) == "ok"
    assert t.sleeps == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0] + [0.2, 0.4, 0.8, 1.6, 3.2, 5.0] + [1.0]


def test_budget_spent_raises_the_last_error():
    t = VirtualTime()
    policy = RetryPolicy(sleep=t.sleep, random=lambda: 1.0)
    with pytest.raises(IceError, match="InternalError"):
        policy.call(lambda: (_ for _ in ()).throw(IceError("InternalError", "boom", status_code=500)),
                    deadline=Deadline(10, t.clock, reserve_s=1), retryable=lambda e: e.retryable)
    assert 0 < t.now <= 9


def test_non_retryable_errors_are_raised_at_once():
    t = VirtualTime()
    with pytest.raises(IceError, match="InvalidParameter"):
        RetryPolicy(sleep=t.sleep).call(
            lambda: (_ for _ in ()).throw(IceError("InvalidParameter", "no", status_code=400)),
            deadline=Deadline(100, t.clock), retryable=lambda e: e.retryable)
    assert t.sleeps == []


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(LocalCloudOptions(bucket="retries")) as running:
        yield running


@pytest.fixture(autouse=True)
def clear_faults(cloud):
    yield
    cloud.ice.set_faults(qps_limits={}, error_rate=0.0, latency_s=0.0, callback_drop_rate=0.0, job_delay_s=0.0)


def _adapters(cloud, t: VirtualTime, budget_s: float):
    policy = RetryPolicy(sleep=t.sleep)
    deadline = Deadline(budget_s, t.clock, reserve_s=1)
    ice = IceClient(endpoint=cloud.ice.endpoint, credentials=cloud.credentials(), region=cloud.options.region,
                    protocol="http", retry=policy, deadline=deadline)
    store = OssStore(endpoint=cloud.oss.endpoint, credentials=cloud.credentials(), retry=policy, deadline=deadline)
    return ice, store


def test_throttled_and_failing_ice_is_retried_until_the_job_is_submitted(cloud, small_video):
    record = upload(cloud, "manual/throttled.mp4", small_video)
    cloud.ice.set_faults(error_rate=0.6, seed=7)
    t = VirtualTime()
    ice, store = _adapters(cloud, t, budget_s=60)
    outcome = Submitter(cloud.settings(), ice, store).submit_upload(upload_of(cloud, record), owner="t")
    assert outcome.outcome == "submitted"
    assert t.sleeps, "the injected 5xx must have been retried"
    assert len(jobs_for(cloud, "manual/throttled.mp4")) == 1


def test_throttling_user_is_retried(cloud):
    cloud.ice.set_faults(qps_limits={"GetSnapshotJob": 0.001})
    t = VirtualTime()
    ice, _ = _adapters(cloud, t, budget_s=30)
    with pytest.raises(IceError, match="JobNotFound"):  # the first call takes the one token
        ice.get_snapshot_job("0" * 32)
    with pytest.raises(IceError) as err:  # the bucket never refills in virtual time: the budget runs out
        ice.get_snapshot_job("0" * 32)
    assert err.value.code == "Throttling.User"
    assert len(t.sleeps) >= 3 and t.now <= 29
    assert max(t.sleeps) <= RetryPolicy.throttled_cap_s, "a throttled call is retried within a second"


def test_when_the_budget_is_spent_the_submit_function_raises_for_the_platform(cloud, small_video):
    record = upload(cloud, "manual/unavailable.mp4", small_video)
    cloud.ice.set_faults(error_rate=1.0)
    t = VirtualTime()
    ice, store = _adapters(cloud, t, budget_s=20)
    with pytest.raises(Exception) as err:
        Submitter(cloud.settings(), ice, store).handle_event(oss_event(record), request_id="r1")
    assert type(err.value).__name__ == "RetryLater" and "InternalError" in str(err.value)
    assert t.now > 10, "it retried until the budget was nearly spent"
    cloud.ice.set_faults(error_rate=0.0)
    assert jobs_for(cloud, "manual/unavailable.mp4") == []


def test_oss_connection_errors_are_retried_then_raised():
    t = VirtualTime()
    with socket.socket() as closed:  # bound, never listening: every connection to it is refused
        closed.bind(("127.0.0.1", 0))
        store = OssStore(endpoint=f"http://127.0.0.1:{closed.getsockname()[1]}", credentials=Credentials("a", "b"),
                         retry=RetryPolicy(sleep=t.sleep), deadline=Deadline(15, t.clock), connect_timeout_s=1)
        with pytest.raises(ObjectStoreError) as err:
            store.get_bytes("bucket", "key")
    assert err.value.retryable and len(t.sleeps) >= 2


def test_transient_faults_through_the_real_functions_still_make_one_job_and_an_index(cloud, small_video):
    cloud.ice.set_faults(error_rate=0.3, seed=3)
    cloud.bucket().put_object("uploads/flaky.mp4", small_video)
    index = cloud.wait_for_index("uploads/flaky.mp4", timeout=PIPELINE_TIMEOUT_S)
    assert default_result(index)["job"]["status"] == "Success"
    assert len(jobs_for(cloud, "uploads/flaky.mp4")) == 1
