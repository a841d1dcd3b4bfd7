"""Webhooks through the local cloud: the app's receiver (the README's own code checks every
signature) gets an event for an indexed, a failed and a deleted video, also when it fails twice
first, deduplicated by id; a writer killed while sending, or between its index write and the
outbox record, still delivers through the reconciler's timer run; a receiver down for good ends as
failed deliveries in `snapshots audit`; and the secret never reaches a log."""
from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import oss2
import pytest

from localcloud.cloud import LocalCloud, LocalCloudOptions
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.layout import index_key
from snapshot_pipeline.outbox import MAX_ATTEMPTS, retry_delay
from snapshot_pipeline.publish import Publisher
from snapshot_pipeline.webhooks import ChangeKind, IndexChange
from tests.conftest import ROOT
from tests.support import cli_runner, default_result, jobs_for, upload, version_of, wait_until

#: The CDN in front of the output bucket: events name the index's URL under it.
PUBLIC_BASE_URL = "https://cdn.example.com/"

#: What the receiver answers the n-th delivery (from 0) of one (source key, type): a status, or
#: "kill" (the callback function's instances are killed and no answer is written).
Plan = Callable[[int], "int | str"]


def readme_receiver_code() -> str:
    """The Python block of README's "Webhooks" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Webhooks\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Webhooks' section"
    code = re.search(r"```python\n(.*?)```", section.group(1), re.DOTALL)
    assert code, "README's Webhooks section has no Python receiver"
    return code.group(1)


def readme_verifier(secret: str) -> Callable[[str, bytes], bool]:
    """README's ``verified``, run as the README has it, with ``secret`` in its environment."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WEBHOOK_SECRET", secret)
        namespace: dict[str, Any] = {"__name__": "readme_receiver"}
        exec(readme_receiver_code(), namespace)
    return namespace["verified"]


class AppReceiver:
    """The app's side: README's ``verified`` checks each request; the answers follow a plan per
    (source key, type); every verified delivery is kept, duplicates included."""

    def __init__(self) -> None:
        self.verified: Callable[[str, bytes], bool] | None = None
        self.kill: Callable[[], Any] = lambda: None
        self.plans: dict[tuple[str, str], Plan] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.accepted: list[dict] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hooks/snapshots"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, header: str, body: bytes) -> int | str:
        assert self.verified is not None
        if not self.verified(header, body):
            with self._lock:
                self.refused += 1
            return 400
        event = json.loads(body)
        what = (event["source"]["key"], event["type"])
        with self._lock:
            n = self.requests[what]
            self.requests[what] += 1
        action = self.plans.get(what, lambda n: 204)(n)
        if action == 204:
            with self._lock:
                self.accepted.append(event)
        return action

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                action = receiver.answer(self.headers.get("X-Snapshot-Signature", ""), body)
                if action == "kill":
                    receiver.kill()
                    return  # no answer: the sender is dead anyway
                self.send_response(int(action))
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def events_for(self, key: str) -> list[dict]:
        with self._lock:
            return [e for e in self.accepted if e["source"]["key"] == key]


def failing(times: int, status: int = 500) -> Plan:
    return lambda n: status if n < times else 204


@pytest.fixture(scope="module")
def receiver():
    app = AppReceiver()
    yield app
    app.close()


@pytest.fixture(scope="module")
def cloud(receiver):
    options = LocalCloudOptions(bucket=f"webhooks-{uuid.uuid4().hex[:8]}", webhook_url=receiver.url,
                                extra_env={"PUBLIC_BASE_URL": PUBLIC_BASE_URL})
    with LocalCloud(options) as running:
        receiver.verified = readme_verifier(running.webhook_secret)
        receiver.kill = lambda: running.fc.kill_instances("callback")
        yield running


@pytest.fixture(scope="module")
def video() -> bytes:
    from localcloud.media import make_test_video

    return make_test_video(duration_s=1.0, width=64, height=48)


def event_id(cloud, key: str, version: str | None, kind: ChangeKind) -> str:
    source = OssLocation(cloud.options.bucket, key)
    profile = None if kind == ChangeKind.SOURCE_DELETED else "default"
    return IndexChange(source.uri, version, kind, profile, index_key("snapshots/", source), None).event_id


def outbox_record(cloud, event: str, *, failed: bool = False) -> dict | None:
    folder = "snapshots/_outbox/failed/" if failed else "snapshots/_outbox/"
    return cloud.store().get_json(cloud.options.bucket, f"{folder}{event}.json")


def retry_now(cloud, event: str) -> dict | None:
    """Let the backoff of ``event``'s record pass (minutes to hours: it is made due now), then run the
    reconciler's timer; the record after the run."""
    record = outbox_record(cloud, event)
    assert record is not None and record["state"] == "pending", record
    assert record["next_attempt_at"] == pytest.approx(time.time() + retry_delay(record["attempts"]), abs=60)
    cloud.store().put_json(cloud.options.bucket, f"snapshots/_outbox/{event}.json",
                           dict(record, next_attempt_at=time.time() - 1))
    report = json.loads(cloud.fc.fire_timer("reconcile"))
    assert report["webhooks_delivered"] + report["webhooks_retrying"] + report["webhooks_failed"] >= 1, report
    return outbox_record(cloud, event)


def delivered(receiver: AppReceiver, key: str, kind: ChangeKind) -> dict:
    return wait_until(lambda: next((e for e in receiver.events_for(key) if e["type"] == kind), None),
                      f"a {kind} event for {key}", timeout=60)


def test_indexed_failed_and_deleted_reach_a_receiver_that_fails_twice_verified_and_deduplicated(
        cloud, receiver, video):
    run = uuid.uuid4().hex[:8]
    good, bad = f"uploads/ok-{run}.mp4", f"uploads/bad-{run}.mp4"
    receiver.plans[(good, ChangeKind.PROFILE_INDEXED)] = failing(2)
    upload(cloud, good, video)
    good_version = version_of(cloud, good)
    assert default_result(cloud.wait_for_index(good))["job"]["status"] == "Success"
    wait_until(lambda: receiver.requests[(good, ChangeKind.PROFILE_INDEXED)] == 1, "the writer's own attempt")
    cloud.set_faults(fail_jobs={"code": "InvalidInput.Unsupported", "message": "no such codec", "count": 1})
    upload(cloud, bad, video)
    failed = delivered(receiver, bad, ChangeKind.PROFILE_FAILED)
    assert default_result(cloud.wait_for_index(bad))["job"]["error"]["code"] == "InvalidInput.Unsupported"
    cloud.bucket().delete_object(good)
    deleted = delivered(receiver, good, ChangeKind.SOURCE_DELETED)

    pending = event_id(cloud, good, good_version, ChangeKind.PROFILE_INDEXED)
    assert retry_now(cloud, pending)["attempts"] == 2  # the second 500
    assert retry_now(cloud, pending) is None  # accepted: removed from the outbox
    indexed = delivered(receiver, good, ChangeKind.PROFILE_INDEXED)
    assert receiver.requests[(good, ChangeKind.PROFILE_INDEXED)] == 3

    assert (indexed["id"], indexed["version"], indexed["profile"]) == (pending, good_version, "default")
    key = index_key("snapshots/", OssLocation(cloud.options.bucket, good))
    assert indexed["index"] == {"bucket": cloud.options.bucket, "key": key, "url": PUBLIC_BASE_URL + quote(key)}
    assert (deleted["id"], deleted["profile"]) == (event_id(cloud, good, good_version, ChangeKind.SOURCE_DELETED),
                                                   None)
    assert failed["id"] == event_id(cloud, bad, version_of(cloud, bad), ChangeKind.PROFILE_FAILED)
    assert all(outbox_record(cloud, e["id"]) is None for e in (indexed, failed, deleted))  # 2xx: removed

    # The deletion recorded again (a redelivered event, an audit --fix): the same id comes again.
    Publisher(cloud.settings(), cloud.ice_adapter(), cloud.store()).record_deletion(
        OssLocation(cloud.options.bucket, good), deleted_at=time.time())
    wait_until(lambda: len(receiver.events_for(good)) == 3, "the deletion's event again")
    seen = {e["id"] for e in receiver.events_for(good) + receiver.events_for(bad)}
    assert seen == {indexed["id"], failed["id"], deleted["id"]} and receiver.refused == 0


def test_a_writer_killed_while_sending_delivers_through_the_reconcilers_timer_run(cloud, receiver, video):
    key = f"uploads/killed-{uuid.uuid4().hex[:8]}.mp4"
    receiver.plans[(key, ChangeKind.PROFILE_INDEXED)] = lambda n: "kill" if n == 0 else 204
    upload(cloud, key, video)
    wait_until(lambda: receiver.requests[(key, ChangeKind.PROFILE_INDEXED)] >= 1, "the killed writer's attempt")
    assert default_result(cloud.wait_for_index(key))["job"]["status"] == "Success"
    event = event_id(cloud, key, version_of(cloud, key), ChangeKind.PROFILE_INDEXED)
    record = outbox_record(cloud, event)
    assert record is not None and record["state"] == "pending" and not receiver.events_for(key)

    cloud.fc.fire_timer("reconcile")
    assert delivered(receiver, key, ChangeKind.PROFILE_INDEXED)["id"] == event
    assert outbox_record(cloud, event) is None


class WriterDied(BaseException):
    """The writer's instance was killed (not an error anything catches)."""


class DiesBeforeTheOutbox:
    """The store of a writer killed right after its index write: the outbox record is never made."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def create_json(self, bucket: str, key: str, doc) -> bool:
        if "/_outbox/" in f"/{key}":
            raise WriterDied(key)
        return self._store.create_json(bucket, key, doc)


def test_a_writer_killed_between_the_index_and_the_outbox_leaves_it_to_the_reconciler(cloud, receiver, video):
    key = f"uploads/unrecorded-{uuid.uuid4().hex[:8]}.mp4"
    cloud.ice.set_faults(callback_drop_rate=1.0)  # this writer is the only one, until the reconciler
    try:
        upload(cloud, key, video)
        (job,) = wait_until(lambda: [j for j in jobs_for(cloud, key) if j.finished], f"the job of {key}")
    finally:
        cloud.ice.set_faults(callback_drop_rate=0.0)
    publisher = Publisher(cloud.settings(), cloud.ice_adapter(), DiesBeforeTheOutbox(cloud.store()))
    with pytest.raises(WriterDied):
        publisher.publish(cloud.ice_adapter().get_snapshot_job(job.job_id))
    assert default_result(cloud.wait_for_index(key, timeout=1))["job"]["id"] == job.job_id  # written, yet nobody told
    event = event_id(cloud, key, version_of(cloud, key), ChangeKind.PROFILE_INDEXED)
    assert outbox_record(cloud, event) is None and not receiver.events_for(key)

    report = json.loads(cloud.fc.fire_timer("reconcile"))  # the upload is still pending: published again
    assert report["pending_seen"] >= 1
    assert delivered(receiver, key, ChangeKind.PROFILE_INDEXED)["id"] == event


def test_a_receiver_down_for_good_ends_as_failed_deliveries_in_audit_and_fix_sends_them_again(
        cloud, receiver, video, tmp_path, monkeypatch, capsys):
    folder = f"uploads/down-{uuid.uuid4().hex[:8]}/"
    key = folder + "v.mp4"
    receiver.plans[(key, ChangeKind.PROFILE_INDEXED)] = lambda n: 503
    upload(cloud, key, video)
    cloud.wait_for_index(key)
    event = event_id(cloud, key, version_of(cloud, key), ChangeKind.PROFILE_INDEXED)
    wait_until(lambda: (outbox_record(cloud, event) or {}).get("attempts") == 1, "the writer's failed attempt")
    for attempts in range(2, MAX_ATTEMPTS):
        record = retry_now(cloud, event)
        assert record is not None and record["attempts"] == attempts
    assert retry_now(cloud, event) is None  # the last attempt: moved to the failed ones
    record = outbox_record(cloud, event, failed=True)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_status"]) == ("failed", MAX_ATTEMPTS, 503)
    assert receiver.requests[(key, ChangeKind.PROFILE_INDEXED)] == MAX_ATTEMPTS

    run = cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)
    code, out = run("--local", "--json", "audit", f"oss://{cloud.options.bucket}/{folder}")
    webhooks = json.loads(out)["webhooks"]
    assert code == 1 and (webhooks["failed"], webhooks["pending"]) == (1, 0)
    (failure,) = webhooks["failed_deliveries"]
    assert (failure["id"], failure["type"], failure["attempts"], failure["last_status"]) == \
        (event, "profile.indexed", MAX_ATTEMPTS, 503)
    code, out = run("--local", "audit", f"oss://{cloud.options.bucket}/{folder}")
    assert code == 1 and event in out and "webhook deliveries" in out

    receiver.plans[(key, ChangeKind.PROFILE_INDEXED)] = lambda n: 204  # the receiver is fixed
    code, out = run("--local", "--json", "audit", "--fix", f"oss://{cloud.options.bucket}/{folder}")
    assert "failed webhook deliveries made due again: 1" in " ".join(json.loads(out)["notes"])
    cloud.fc.fire_timer("reconcile")
    assert delivered(receiver, key, ChangeKind.PROFILE_INDEXED)["id"] == event
    assert run("--local", "audit", f"oss://{cloud.options.bucket}/{folder}")[0] == 0


def test_webhook_test_sends_a_signed_sample_and_the_secret_is_never_in_a_log_or_the_output(
        cloud, receiver, video, tmp_path, monkeypatch, capsys):
    key = f"uploads/logged-{uuid.uuid4().hex[:8]}.mp4"
    upload(cloud, key, video)
    delivered(receiver, key, ChangeKind.PROFILE_INDEXED)
    run = cli_runner(cloud, tmp_path / "state.json", monkeypatch, capsys)
    code, out = run("--local", "--json", "webhook", "test")
    answer = json.loads(out)
    assert code == 0 and (answer["status"], answer["delivered"]) == (204, True)
    assert any(e["id"] == answer["event_id"] and e["type"] == "webhook.test" for e in receiver.accepted)
    with socket.socket() as unused:  # a port nobody listens on: the connection is refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, out = run("--local", "--json", "webhook", "test", "--url", f"http://127.0.0.1:{port}/")
    refused = json.loads(out)
    assert code == 1 and (refused["status"], refused["delivered"]) == (None, False) and refused["error"]
    logs = [line for pool in cloud.fc.pools.values() for line in list(pool.logs)]
    assert any('"webhook.sent"' in line for line in logs)
    assert not [line for line in logs if cloud.webhook_secret in line]
    assert cloud.webhook_secret not in out + capsys.readouterr().out


@contextlib.contextmanager
def local_cloud_up(tmp_path, *args: str) -> Iterator[dict]:
    """``python -m localcloud up ARGS`` in its own process; its JSON line while it runs. On leaving,
    Ctrl-C: it must stop cleanly, never printing the webhook secret."""
    proc = subprocess.Popen([sys.executable, "-m", "localcloud", "up", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "SNAPSHOTS_LOCAL_STATE": str(tmp_path / "state.json")})
    info: dict = {}
    try:
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert not info.get("webhook_secret") or info["webhook_secret"] not in err


def test_up_with_a_webhook_url_prints_the_secret_and_the_functions_send_there(video, tmp_path):
    app = AppReceiver()
    with contextlib.closing(app), local_cloud_up(tmp_path, "--webhook-url", app.url) as info:
        assert info["webhook_url"] == app.url and info["webhook_secret"].startswith("whsec_")
        app.verified = readme_verifier(info["webhook_secret"])
        bucket = oss2.Bucket(oss2.Auth(info["access_key_id"], info["access_key_secret"]), info["oss_endpoint"],
                             info["bucket"])
        bucket.put_object("uploads/told.mp4", video)
        delivered(app, "uploads/told.mp4", ChangeKind.PROFILE_INDEXED)


def test_up_with_a_data_dir_keeps_the_webhook_secret_across_restarts(tmp_path):
    args = ("--webhook-url", "http://127.0.0.1:9/", "--data-dir", str(tmp_path / "data"))
    with local_cloud_up(tmp_path, *args) as first:
        pass
    with local_cloud_up(tmp_path, *args) as second:
        assert second["webhook_secret"] == first["webhook_secret"]
