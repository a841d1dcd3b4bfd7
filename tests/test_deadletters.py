"""Dead letters: an event whose async retries ran out reaches the dead-letter function as Function
Compute's destination event, is kept in OSS, and is replayed once its cause is gone; expired letters
go, letters that still fail stay, and an unreadable payload is kept as text."""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from localcloud.fc import LocalFc
from localcloud.slsyaml import FunctionSpec
from snapshot_pipeline.deadletters import DEAD_LETTER_TTL_S, DeadLetters
from snapshot_pipeline.domain import Outcome, OutcomeKind
from snapshot_pipeline.retry import Deadline
from tests.support import (
    PIPELINE_TIMEOUT_S,
    cli_runner,
    default_result,
    function_log,
    jobs_for,
    oss_event,
    upload,
    wait_until,
)

SUBMIT_TIMEOUT_S = 8  # each failing attempt retries ICE for this long: short, so the retries run out soon


@pytest.fixture(scope="module")
def cloud():
    options = LocalCloudOptions(bucket="dead-letters", async_retry_base_s=0.1, function_props={
        "submit": {"timeout": SUBMIT_TIMEOUT_S, "asyncInvokeConfig": {"maxAsyncRetryAttempts": 1}}})
    with LocalCloud(options) as running:
        yield running


def _letters(cloud, output_prefix: str = "snapshots/") -> DeadLetters:
    return DeadLetters(cloud.store(), cloud.options.bucket, output_prefix)


def _letter_of(cloud, request_id: str):
    return next((letter for letter in _letters(cloud).list() if request_id in letter.key), None)


def test_the_local_fc_hands_the_last_failure_to_the_destination_as_fc_documents_it(tmp_path: Path):
    """A handler that always raises: after 1 + 2 retries the destination gets FC's destination event."""
    for name, source in (("failing", "def handler(event, context):\n    raise ValueError('no luck')\n"),
                         ("sink", "def handler(event, context):\n    return event.decode()\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.py").write_text(textwrap.dedent(source))
    destination = "acs:fc:cn-test:42:functions/the-sink"
    functions = {
        "failing": FunctionSpec("failing", {"functionName": "the-failing", "handler": "index.handler", "timeout": 30,
                                            "asyncInvokeConfig": {"maxAsyncRetryAttempts": 2, "destinationConfig": {
                                                "onFailure": {"destination": destination}}}}),
        "sink": FunctionSpec("sink", {"functionName": "the-sink", "handler": "index.handler", "timeout": 30}),
    }
    fc = LocalFc(functions, code_dirs={n: tmp_path / n for n in functions}, context_base={
        "region": "cn-test", "account_id": "42"}, env_overrides={}, max_instances=1, retry_base_s=0.05).start()
    try:
        request_id = fc.invoke_async("failing", b'{"events": []}')
        assert fc.wait_idle(PIPELINE_TIMEOUT_S)
    finally:
        fc.stop()
    attempts = [i for i in fc.invocations if i.function == "failing"]
    assert [i.attempt for i in attempts] == [1, 2, 3] and {i.request_id for i in attempts} == {request_id}
    (delivered,) = [i for i in fc.invocations if i.function == "sink"]
    assert delivered.trigger == "async" and delivered.ok
    payload = json.loads(delivered.result)
    assert payload["requestContext"] == {
        "requestId": request_id, "functionArn": "acs:fc:cn-test:42:functions/the-failing",
        "condition": "UnhandledInvocationError", "approximateInvokeCount": 3}
    assert payload["requestPayload"] == '{"events": []}'
    assert payload["responseContext"] == {"statusCode": 200, "functionError": "ValueError"}
    assert json.loads(payload["responsePayload"]) == {"errorType": "ValueError", "errorMessage": "no luck"}
    assert payload["timestamp"].endswith("Z")


@pytest.fixture
def run(cloud, tmp_path, monkeypatch, capsys):
    return cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)


def test_retries_exhausted_then_replayed_once_ice_is_back_makes_one_job_each(cloud, small_video, run):
    records = [upload(cloud, f"manual/outage-{n}.mp4", small_video + bytes([n])) for n in range(2)]
    event = oss_event(*records)
    cloud.ice.set_faults(error_rate=1.0)  # SubmitSnapshotJob and ListSnapshotJobs answer 500, every time
    try:
        request_id = cloud.fc.invoke_async("submit", event)
        letter = wait_until(lambda: _letter_of(cloud, request_id), "the dead letter in OSS")
    finally:
        cloud.ice.set_faults(error_rate=0.0)
    submits = [i for i in cloud.fc.invocations if i.function == "submit" and i.request_id == request_id]
    assert [i.attempt for i in submits] == [1, 2] and not any(i.ok for i in submits)
    assert letter.event == json.loads(event)
    assert letter.records == tuple(("dead-letters", r["oss"]["object"]["key"], r["oss"]["object"]["eTag"],
                                    "ObjectCreated:PutObject") for r in records)
    doc = cloud.store().get_json(cloud.options.bucket, letter.key)
    assert doc["schema"] == "snapshot-deadletter/1" and doc["request_id"] == request_id
    assert doc["function"] == "video-snapshot-submit" and doc["attempts"] == 2
    assert doc["error"]["type"] in ("RetryLater", "FunctionTimeout")
    assert any(line.get("key") == letter.key for line in function_log(cloud, "deadletter", "deadletter.recorded"))

    # ICE is back: one `snapshots reconcile` replays the letter. Function Compute gave up on the
    # invocation, so its claims are taken over at once, lease or not, through the claim protocol.
    code, out = run("--local", "reconcile", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["dead_letters_replayed"] >= 1 and _letter_of(cloud, request_id) is None
    for record in records:
        key = record["oss"]["object"]["key"]
        assert default_result(cloud.wait_for_index(key, PIPELINE_TIMEOUT_S))["job"]["status"] == "Success"
        assert len(jobs_for(cloud, key)) == 1
    code, out = run("--local", "reconcile", "--json")  # nothing left to replay
    assert code == 0 and json.loads(out)["dead_letters_replayed"] == 0
    assert all(len(jobs_for(cloud, r["oss"]["object"]["key"])) == 1 for r in records)


class _Refusing:
    """A submitter whose every record must be retried (its cause is not gone)."""

    def handle_record(self, raw_record, owner: str, *, abandoned_by: str | None = None) -> list[Outcome]:
        raise RuntimeError("ICE is still down")


class _Settling:
    def handle_record(self, raw_record, owner: str, *, abandoned_by: str | None = None) -> list[Outcome]:
        return [Outcome(None, None, OutcomeKind.DUPLICATE)]


def _payload(request_id: str, key: str) -> dict:
    record = {"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "dead-letters"},
                                                              "object": {"key": key, "eTag": "E1", "size": 9}}}
    return {"timestamp": "2026-12-01T11:21:04.000Z",
            "requestContext": {"requestId": request_id, "functionArn": "acs:fc:r:1:functions/video-snapshot-submit",
                               "condition": "UnhandledInvocationError", "approximateInvokeCount": 4},
            "requestPayload": json.dumps({"events": [record]}),
            "responseContext": {"statusCode": 200, "functionError": "RetryLater"},
            "responsePayload": json.dumps({"errorType": "RetryLater", "errorMessage": "1 of 1 record(s)"})}


def test_an_expired_letter_is_removed_with_a_log_line_and_a_failing_one_stays(cloud, capsys):
    now = time.time()
    old = DeadLetters(cloud.store(), cloud.options.bucket, "ttl-test/", clock=lambda: now - DEAD_LETTER_TTL_S - 60)
    expired_key = old.record(_payload("req-old", "uploads/old.mp4"))
    letters = DeadLetters(cloud.store(), cloud.options.bucket, "ttl-test/", clock=lambda: now)
    failing_key = letters.record(_payload("req-failing", "uploads/failing.mp4"))

    report = letters.replay(_Refusing(), "replay", Deadline.after(300))
    assert (report.expired, report.kept, report.replayed) == (1, 1, 0)
    assert [letter.key for letter in letters.list()] == [failing_key]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(r["event"] == "deadletter.expired" and r["key"] == expired_key for r in logged)
    assert letters.for_object("dead-letters", "uploads/failing.mp4")[0].error == {
        "type": "RetryLater", "message": "1 of 1 record(s)"}

    assert letters.replay(_Settling(), "replay", Deadline.after(300)).replayed == 1
    assert list(letters.list()) == []


@pytest.mark.parametrize("payload", [b"not json{", b'{"requestContext": {"requestId": "r-9"}, "requestPayload": "?"}',
                                     b'["a list"]'])
def test_the_dead_letter_function_keeps_an_unreadable_payload_as_text(cloud, payload):
    answer = json.loads(cloud.fc.invoke("deadletter", payload))
    bucket, _, key = answer["dead_letter"].removeprefix("oss://").partition("/")
    doc = cloud.store().get_json(bucket, key)
    assert doc["raw_payload"] == payload.decode() and doc["parse_error"]
    assert doc["event"] is None and doc["records"] == []
    assert any(line.get("reason") == doc["parse_error"]
               for line in function_log(cloud, "deadletter", "deadletter.unreadable"))
    # a replay keeps it for an operator to read (until it expires), and never fails on it
    report = _letters(cloud).replay(_Settling(), "replay", Deadline.after(300))
    assert report.errors == [] and key in [letter.key for letter in _letters(cloud).list()]
