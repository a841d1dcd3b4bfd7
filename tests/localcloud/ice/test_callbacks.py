"""The local ICE's event callbacks: delivery, signature, per-job address, retries, time-outs and defaults."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from itertools import pairwise

from alibabacloud_ice20201109 import models as m

from localcloud.ice.server import LocalIce
from tests.localcloud.ice.support import (
    AK,
    AUTH_KEY,
    CALLBACK_INTERVAL_S,
    CALLBACK_TIMEOUT_S,
    IN,
    NORMAL,
    SK,
    client_error,
    create_template,
    run_job,
)


def test_callback_is_delivered_and_signed(client, ice, video, receiver):
    assert client.set_event_callback(m.SetEventCallbackRequest(
        callback_type="HTTP", callback_url=receiver.url, event_type_list="SnapshotComplete",
        auth_switch="on", auth_key=AUTH_KEY)).body.success
    setting = client.get_event_callback().body
    assert (setting.callback_url, setting.auth_switch, setting.auth_key) == (receiver.url, "on", AUTH_KEY)
    template_id = create_template(client, dict(NORMAL, Count=2))
    job = run_job(client, ice, template_id, user_data="not json")

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    event = json.loads(request["body"])
    assert event["EventType"] == "SnapshotComplete" and event["UserId"] == 1000000000000001
    datetime.strptime(event["EventTime"], "%Y-%m-%dT%H:%M:%SZ")
    body = event["MessageBody"]
    assert (body["JobId"], body["Status"], body["Type"], body["UserData"]) == (job.job_id, "Success", "Normal",
                                                                               "not json")
    timestamp = request["headers"]["X-ICE-TIMESTAMP"]
    assert abs(int(timestamp) - time.time()) < 30
    expected = hashlib.md5(f"{receiver.url}|{timestamp}|{AUTH_KEY}".encode()).hexdigest()
    assert request["headers"]["X-ICE-SIGNATURE"] == expected
    (delivery,) = ice.deliveries()
    assert delivery["delivered"] and delivery["attempt"] == 1 and delivery["status"] == 200
    assert delivery["job_id"] == job.job_id and delivery["url"] == receiver.url


def test_notify_address_wins_and_failures_are_reported(client, ice, video, receiver):
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    job = run_job(client, ice, template_id, source=f"oss://{IN}/videos/absent.mp4",
                  user_data=json.dumps({"NotifyAddress": receiver.url + "/per-job"}))
    (request,) = receiver.requests
    assert request["path"] == "/ice/callback/per-job" and "X-ICE-SIGNATURE" not in request["headers"]
    body = json.loads(request["body"])["MessageBody"]
    assert (body["JobId"], body["Status"], body["Code"]) == (job.job_id, "Fail", "ResourceNotFound")


def test_event_callback_validation(client):
    for request, field in ((m.SetEventCallbackRequest(callback_type="HTTP"), "CallbackURL"),
                           (m.SetEventCallbackRequest(callback_type="HTTP", callback_url="http://x/",
                                                      auth_switch="on"), "AuthKey"),
                           (m.SetEventCallbackRequest(callback_type="HTTP", callback_url="http://x/",
                                                      auth_switch="on", auth_key="alllowercase"), "AuthKey"),
                           (m.SetEventCallbackRequest(callback_type="MNS", callback_queue_name="q"),
                            "CallbackQueueName")):
        error = client_error(client.set_event_callback, request)
        assert error.code in ("MissingParameter", "InvalidParameter") and f'"{field}"' in error.message


def test_callback_retried_after_two_500s(client, ice, video, receiver):
    receiver.statuses = [500, 500]
    ice.set_event_callback(receiver.url, AUTH_KEY)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    attempts = ice.deliveries()
    assert [(a["attempt"], a["status"], a["delivered"]) for a in attempts] == [(1, 500, False), (2, 500, False),
                                                                             (3, 200, True)]
    gaps = [b["at"] - a["at"] for a, b in pairwise(receiver.requests)]
    assert len(receiver.requests) == 3 and min(gaps) >= CALLBACK_INTERVAL_S * 0.9


def test_slow_receiver_is_retried_and_three_failures_drop_the_message(client, ice, video, receiver):
    receiver.delays = [CALLBACK_TIMEOUT_S + 0.4]
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    first, second = ice.deliveries()
    assert not first["delivered"] and first["status"] is None and "timed out" in first["error"]
    assert second["delivered"] and second["attempt"] == 2

    ice.reset()
    receiver.requests.clear()
    receiver.statuses = [503, 503, 503, 503]
    ice.set_event_callback(receiver.url, None)
    template_id = create_template(client, dict(NORMAL, Count=1))
    run_job(client, ice, template_id)
    assert [(a["attempt"], a["delivered"]) for a in ice.deliveries()] == [(1, False), (2, False), (3, False)]
    assert len(receiver.requests) == 3


def test_default_callback_knobs_are_the_documented_ones(oss):
    local = LocalIce(access_key_id=AK, access_key_secret=SK, oss_endpoint=oss.endpoint)
    assert (local.callback_timeout_s, local.callback_retry_interval_s, local.callback_attempts) == (3.0, 1.0, 3)
    local.start()
    try:
        assert local.endpoint.startswith("127.0.0.1:") and local.url == f"http://{local.endpoint}"
    finally:
        local.stop()
        local.stop()

