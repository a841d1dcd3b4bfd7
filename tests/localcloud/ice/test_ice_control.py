"""The local ICE's ordering controls, through the SDK: held jobs released in any order, callbacks redelivered."""
from __future__ import annotations

import hashlib
import json

import pytest
from alibabacloud_ice20201109 import models as m

from localcloud.ice.callbacks import NothingToRedeliver
from tests.localcloud.ice.support import AUTH_KEY, NORMAL, admin_call, create_template, get_job, run_job, submit
from tests.support import PIPELINE_TIMEOUT_S, wait_until

ONE_FRAME = dict(NORMAL, Count=1)


def event_job_ids(receiver):
    return [json.loads(r["body"])["MessageBody"]["JobId"] for r in receiver.requests]


def test_held_jobs_stay_init_and_finish_in_the_order_released(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, AUTH_KEY)
    template_id = create_template(client, ONE_FRAME)
    ice.hold_jobs(True)
    v1, v2 = submit(client, template_id), submit(client, template_id)
    assert ice.held_jobs() == [v1, v2]
    assert ice.wait_idle(PIPELINE_TIMEOUT_S)  # a held job is not running
    assert [get_job(client, j).status for j in (v1, v2)] == ["Init", "Init"]

    assert ice.release_job(v2) == "Success"
    wait_until(lambda: event_job_ids(receiver) == [v2], "v2's callback")
    assert ice.held_jobs() == [v1] and get_job(client, v1).status == "Init"
    assert get_job(client, v2).count == 1

    assert ice.release_job(v1) == "Success"
    wait_until(lambda: event_job_ids(receiver) == [v2, v1], "v1's callback after v2's")
    assert ice.held_jobs() == []
    with pytest.raises(LookupError):
        ice.release_job(v1)


def test_jobs_submitted_after_holding_stops_run_while_held_ones_wait(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    ice.hold_jobs(True)
    held = submit(client, template_id)
    ice.hold_jobs(False)
    free = run_job(client, ice, template_id)
    assert free.status == "Success" and get_job(client, held).status == "Init"
    assert ice.release_all() == [held] and get_job(client, held).status == "Success"


def test_reset_forgets_holds(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    ice.hold_jobs(True)
    submit(client, template_id)
    ice.reset()
    assert ice.held_jobs() == [] and not ice.holding()


def test_hold_and_release_through_the_admin_endpoint(client, ice, video):
    template_id = create_template(client, ONE_FRAME)
    assert admin_call(ice, "POST", "jobs/hold", {"hold": True}) == (200, {"holding": True, "held": []})
    first, second = submit(client, template_id), submit(client, template_id)
    assert admin_call(ice, "GET", "jobs/held") == (200, {"holding": True, "held": [first, second]})
    assert admin_call(ice, "POST", "jobs/release", {"job_id": second}) == (200, {"job_id": second,
                                                                                  "status": "Success"})
    assert admin_call(ice, "POST", "jobs/release", {"job_id": second})[0] == 404
    assert admin_call(ice, "POST", "jobs/hold", {"hold": False})[1] == {"holding": False, "held": [first]}
    assert admin_call(ice, "POST", "jobs/release-all", {}) == (200, {"released": [first]})
    assert get_job(client, first).status == "Success"
    assert admin_call(ice, "POST", "jobs/hold", {"hold": "yes"})[0] == 400
    assert admin_call(ice, "POST", "jobs/release", {})[0] == 400


def test_redelivery_posts_the_same_event_freshly_signed(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, AUTH_KEY)
    job = run_job(client, ice, create_template(client, ONE_FRAME))
    wait_until(lambda: len(receiver.requests) == 1, "the first delivery")

    assert ice.redeliver_callback(job.job_id) == 200
    first, again = receiver.requests
    assert again["body"] == first["body"] and json.loads(again["body"])["MessageBody"]["JobId"] == job.job_id
    timestamp = again["headers"]["X-ICE-TIMESTAMP"]
    signed = hashlib.md5(f"{receiver.url}|{timestamp}|{AUTH_KEY}".encode()).hexdigest()
    assert again["headers"]["X-ICE-SIGNATURE"] == signed
    original, redelivery = ice.deliveries()
    assert not original["redelivered"] and redelivery["redelivered"] and redelivery["delivered"]

    receiver.statuses = [503]
    assert ice.redeliver_callback(job.job_id) == 503  # one attempt, whatever it answers
    assert len(receiver.requests) == 3 and not ice.deliveries()[-1]["delivered"]


def test_redelivery_needs_a_finished_job_with_an_http_callback(client, ice, video, receiver):
    template_id = create_template(client, ONE_FRAME)
    with pytest.raises(LookupError):
        ice.redeliver_callback("no-such-job")
    done = run_job(client, ice, template_id)
    with pytest.raises(NothingToRedeliver):  # no callback configured
        ice.redeliver_callback(done.job_id)
    ice.set_event_callback(receiver.url, None)
    ice.hold_jobs(True)
    held = submit(client, template_id)
    with pytest.raises(NothingToRedeliver):
        ice.redeliver_callback(held)
    ice.release_all()
    wait_until(lambda: len(receiver.requests) == 1, "the held job's callback")
    assert receiver.requests[0]["headers"].get("X-ICE-SIGNATURE") is None


def test_redelivery_through_the_admin_endpoint(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, AUTH_KEY)
    template_id = create_template(client, ONE_FRAME)
    job = run_job(client, ice, template_id)
    wait_until(lambda: len(receiver.requests) == 1, "the first delivery")
    assert admin_call(ice, "POST", "callbacks/redeliver", {"job_id": job.job_id}) == (
        200, {"job_id": job.job_id, "status": 200})
    assert event_job_ids(receiver) == [job.job_id, job.job_id]
    assert admin_call(ice, "POST", "callbacks/redeliver", {"job_id": "no-such-job"})[0] == 404
    ice.hold_jobs(True)
    held = submit(client, template_id)
    assert admin_call(ice, "POST", "callbacks/redeliver", {"job_id": held})[0] == 409
    ice.release_all()
    assert client.list_snapshot_jobs(m.ListSnapshotJobsRequest(status="Init")).body.jobs == []


def test_resuming_does_not_queue_a_job_already_queued(client, ice, video, receiver):
    """resume_unfinished_jobs takes every Init job; one already queued (here held) is not queued twice,
    so it runs once and sends one callback."""
    ice.set_event_callback(receiver.url, AUTH_KEY)
    template_id = create_template(client, ONE_FRAME)
    ice.hold_jobs(True)
    job_id = submit(client, template_id)
    assert ice.resume_unfinished_jobs() == []
    assert ice.held_jobs() == [job_id]
    assert ice.release_all() == [job_id]
    assert ice.wait_idle(PIPELINE_TIMEOUT_S) and event_job_ids(receiver) == [job_id]
