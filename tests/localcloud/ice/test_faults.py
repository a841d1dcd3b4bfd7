"""The local ICE's injected faults: QPS limits, 5xx errors, latency, dropped callbacks, job delay, admin API."""
from __future__ import annotations

import time

import pytest
from alibabacloud_ice20201109 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from tests.localcloud.ice.support import AUTH_KEY, NORMAL, admin_call, create_template, get_job, run_job, submit
from tests.support import PIPELINE_TIMEOUT_S, wait_until

# Longer than a busy machine takes for the SDK call and the half-second look after the submit.
JOB_DELAY_S = 3.0


def test_qps_limit_answers_throttling_user(client, ice):
    # One call every 2 s: six calls in a row see at most three tokens even if the machine is so
    # busy that they take 4 s, so the refusal is certain, not a race.
    ice.set_faults(qps_limits={"GetEventCallback": 0.5})
    codes = []
    for _ in range(6):
        try:
            client.get_event_callback()
            codes.append("ok")
        except ClientException as exc:
            codes.append((exc.code, exc.status_code, "user flow control" in exc.message))
    assert codes[0] == "ok" and codes.count("ok") <= 3 and ("Throttling.User", 400, True) in codes
    client.list_custom_templates(m.ListCustomTemplatesRequest(type="2"))  # other actions are not limited

    def goes_through() -> bool:
        try:
            client.get_event_callback()
            return True
        except ClientException as exc:
            assert exc.code == "Throttling.User"
            return False

    wait_until(goes_through, "GetEventCallback allowed again once the bucket refills")


def test_injected_5xx_raises_server_exception_and_changes_no_state(client, ice, video):
    template_id = create_template(client)
    ice.set_faults(error_rate=1.0)
    with pytest.raises(ServerException) as info:
        submit(client, template_id)
    assert (info.value.code, info.value.status_code) == ("InternalError", 500)
    ice.set_faults(error_rate=0.0)
    assert client.list_snapshot_jobs(m.ListSnapshotJobsRequest()).body.jobs == []


def test_error_rate_is_reproducible_with_a_seed(client, ice):
    def outcomes():
        ice.set_faults(error_rate=0.5, seed=123)
        result = []
        for _ in range(12):
            try:
                client.get_event_callback()
                result.append(True)
            except ServerException:
                result.append(False)
        return result

    first = outcomes()
    assert first == outcomes() and True in first and False in first


def test_latency_is_added_per_call(client, ice):
    ice.set_faults(latency_s=0.3)
    started = time.monotonic()
    client.get_event_callback()
    assert time.monotonic() - started >= 0.3


def test_dropped_callback_sends_nothing(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, AUTH_KEY)
    ice.set_faults(callback_drop_rate=1.0)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job = run_job(client, ice, template_id)
    assert job.status == "Success" and receiver.requests == []
    (entry,) = ice.deliveries()
    assert entry["dropped"] and not entry["delivered"] and entry["job_id"] == job.job_id


def test_job_delay_keeps_the_job_in_init(client, ice, video):
    ice.set_faults(job_delay_s=JOB_DELAY_S)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job_id = submit(client, template_id)
    early = get_job(client, job_id)
    assert early.status == "Init" and early.finish_time is None
    assert not ice.wait_idle(0.5)
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)
    assert get_job(client, job_id).status == "Success"


def test_admin_endpoint(ice):
    def call(method, name, payload=None):
        return admin_call(ice, method, name, payload)

    status, faults = call("POST", "faults", {"error_rate": 0.25, "qps_limits": {"SubmitSnapshotJob": 5}})
    assert status == 200 and faults["error_rate"] == 0.25 and faults["qps_limits"] == {"SubmitSnapshotJob": 5}
    assert call("GET", "faults")[1] == faults == ice.faults()
    assert call("POST", "faults", {"no_such_fault": 1})[0] == 400
    assert call("POST", "faults", {"error_rate": 2})[0] == 400
    assert call("GET", "deliveries") == (200, [])
    assert call("POST", "reset", {}) == (200, {"reset": True})
    assert ice.faults()["error_rate"] == 0.0
