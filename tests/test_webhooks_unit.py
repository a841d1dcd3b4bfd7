"""Webhook events and the outbox on plain values: ids, signatures, the backoff schedule, and the
outbox's rules over an in-memory store with a virtual clock and a scripted receiver."""
from __future__ import annotations

import json
import time

import pytest

from snapshot_pipeline import outbox as outbox_module
from snapshot_pipeline.domain import OssLocation
from snapshot_pipeline.outbox import (
    MAX_ATTEMPTS,
    RETRY_BASE_S,
    RETRY_CAP_S,
    Outbox,
    OutboxRun,
    delivery_report,
    retry_delay,
)
from snapshot_pipeline.settings import Settings, SettingsError, WebhookSettings
from snapshot_pipeline.webhooks import (
    ChangeKind,
    Delivery,
    IndexChange,
    body_of,
    event_of,
    signature,
    verify_signature,
)
from tests.support import MemoryStore, VirtualTime

SECRET = "whsec_test-secret"
CHANGE = IndexChange("oss://media/uploads/a.mp4", "20261201T000000Z-ABC", ChangeKind.PROFILE_INDEXED, "default",
                     "snapshots/media/uploads/a.mp4/index.json", None)


class ScriptedReceiver:
    """``post`` for the outbox: answers the statuses given, in turn (None: no answer), then 204."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []

    def __call__(self, url: str, secret: str, event: dict, *, timeout_s: float, clock) -> Delivery:
        self.bodies.append(body_of(event))
        status = self.statuses.pop(0) if self.statuses else 204
        return Delivery(status, None if status and status < 300 else f"HTTP {status}")


def outbox(store: MemoryStore, virtual: VirtualTime, receiver: ScriptedReceiver) -> Outbox:
    return Outbox(store, "media", "snapshots/", WebhookSettings("https://app.example/hook", SECRET),
                  clock=virtual.clock, post=receiver)


# --- ids and signatures ------------------------------------------------------------------------------
def test_the_event_id_depends_on_source_version_profile_and_kind_only():
    again = IndexChange(CHANGE.source, CHANGE.version, CHANGE.kind, CHANGE.profile, "elsewhere.json", "https://x/")
    assert again.event_id == CHANGE.event_id and CHANGE.event_id.startswith("evt_")
    others = {IndexChange(CHANGE.source, "20261201T000001Z-ABC", CHANGE.kind, "default", "", None).event_id,
              IndexChange(CHANGE.source, CHANGE.version, ChangeKind.PROFILE_FAILED, "default", "", None).event_id,
              IndexChange(CHANGE.source, CHANGE.version, CHANGE.kind, "poster", "", None).event_id,
              IndexChange("oss://media/uploads/b.mp4", CHANGE.version, CHANGE.kind, "default", "", None).event_id}
    assert CHANGE.event_id not in others and len(others) == 4


def test_the_event_names_the_source_version_profile_and_the_index():
    event = event_of(CHANGE, "out", 1_800_000_000.5)
    assert event == {"schema": "snapshot-webhook-event/1", "id": CHANGE.event_id, "type": "profile.indexed",
                     "created": 1_800_000_000,
                     "source": {"uri": "oss://media/uploads/a.mp4", "bucket": "media", "key": "uploads/a.mp4"},
                     "version": "20261201T000000Z-ABC", "profile": "default",
                     "index": {"bucket": "out", "key": "snapshots/media/uploads/a.mp4/index.json", "url": None}}


def test_the_signature_is_hmac_sha256_over_t_dot_body_as_stripe_signs():
    # computed apart: printf '1800000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test-secret
    assert signature(SECRET, 1_800_000_000, b'{"a":1}') == \
        "t=1800000000,v1=77b55b9065c27028a07a7baaf5636e5988858d904a7c4f0b324ef23c0a22696a"


@pytest.mark.parametrize("tamper, problem", [
    (lambda h, b: (h, b), None),
    (lambda h, b: (h, b + b" "), "no v1 signature matches"),
    (lambda h, b: (h.replace("v1=", "v1=0"), b), "no v1 signature matches"),
    (lambda h, b: (h.replace("t=1800000000", "t=1800000400"), b), "timestamp outside the 300 s tolerance"),
    (lambda h, b: (h.split(",")[1], b), "no timestamp t"),
    (lambda h, b: ("v1=deadbeef," + h, b), None),  # a second (old secret's) v1 beside the right one
])
def test_a_receiver_refuses_a_changed_body_a_wrong_signature_and_an_old_timestamp(tamper, problem):
    header, body = tamper(signature(SECRET, 1_800_000_000, b'{"a":1}'), b'{"a":1}')
    assert verify_signature(SECRET, header, body, now=1_800_000_000 + 10) == problem


def test_a_webhook_url_without_a_secret_is_named_and_the_secret_is_never_in_the_settings_repr():
    base = {"REGION": "cn-shanghai"}
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is not set"):
        Settings.from_env({**base, "WEBHOOK_URL": "https://app.example/hook"})
    with pytest.raises(SettingsError, match="WEBHOOK_URL must be an http"):
        Settings.from_env({**base, "WEBHOOK_URL": "ftp://app.example/hook", "WEBHOOK_SECRET": SECRET})
    settings = Settings.from_env({**base, "WEBHOOK_URL": "https://app.example/hook", "WEBHOOK_SECRET": SECRET})
    assert settings.webhook() == WebhookSettings("https://app.example/hook", SECRET)
    assert SECRET not in repr(settings) and SECRET not in repr(settings.webhook())
    assert Settings.from_env(base).webhook() is None


# --- the outbox's rules --------------------------------------------------------------------------------
def test_the_backoff_doubles_from_five_minutes_up_to_six_hours():
    assert [retry_delay(n) for n in range(1, MAX_ATTEMPTS)] == \
        [min(RETRY_BASE_S * 2 ** k, RETRY_CAP_S) for k in range(MAX_ATTEMPTS - 1)]
    assert retry_delay(1) == 300 and retry_delay(20) == RETRY_CAP_S


def test_a_record_is_created_once_per_event_and_a_2xx_deletes_it():
    store, virtual, receiver = MemoryStore(), VirtualTime(1_800_000_000), ScriptedReceiver()
    box = outbox(store, virtual, receiver)
    doc = box.record(CHANGE)
    assert doc is not None and box.record(CHANGE) is None  # a second writer keeps the first record
    assert store.keys("snapshots/_outbox/*") == [f"snapshots/_outbox/{CHANGE.event_id}.json"]
    assert box.send(doc, timeout_s=1).delivered and store.keys("snapshots/_outbox/*") == []


def test_failed_attempts_are_recorded_with_backoff_until_the_record_is_dead():
    store, virtual, receiver = MemoryStore(), VirtualTime(1_800_000_000), ScriptedReceiver(*[500] * MAX_ATTEMPTS)
    box = outbox(store, virtual, receiver)
    box.send(box.record(CHANGE), timeout_s=1)
    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert box.deliver_due(lambda: True).waiting == 1  # not due before its backoff has passed
        virtual.now += retry_delay(attempt - 1)
        run = box.deliver_due(lambda: True)
        assert (run.retrying, run.failed, run.delivered) == ((0, 1, 0) if attempt == MAX_ATTEMPTS else (1, 0, 0))
    assert list(box.records()) == []
    ((key, record),) = box.records(failed=True)
    assert key == f"snapshots/_outbox/failed/{CHANGE.event_id}.json"
    assert (record["state"], record["attempts"], record["last_status"], record["next_attempt_at"]) == \
        ("failed", MAX_ATTEMPTS, 500, None)
    virtual.now += RETRY_CAP_S * 10
    assert box.deliver_due(lambda: True) == OutboxRun() and len(receiver.bodies) == MAX_ATTEMPTS  # sent no more
    report = delivery_report(box, OssLocation("media", "uploads/"))
    assert (report.failed, report.failed_deliveries[0]["id"]) == (1, CHANGE.event_id)
    assert delivery_report(box, OssLocation("media", "elsewhere/")).failed == 0
    assert box.revive_failed(OssLocation("media", "uploads/")) == 1
    assert box.deliver_due(lambda: True).delivered == 1 and store.keys("snapshots/_outbox/*") == []


def test_notify_records_before_sending_and_a_failed_send_never_raises():
    store, virtual, receiver = MemoryStore(), VirtualTime(1_800_000_000), ScriptedReceiver(None)
    settings = Settings.from_env({"REGION": "cn-shanghai", "OUTPUT_BUCKET": "media",
                                  "WEBHOOK_URL": "https://app.example/hook", "WEBHOOK_SECRET": SECRET})
    outbox_module.notify(settings, store, CHANGE, clock=virtual.clock, post=receiver)  # no answer: no exception
    (record,) = [doc for _, doc in Outbox(store, "media", "snapshots/").records()]
    assert (record["attempts"], record["last_status"], record["next_attempt_at"]) == \
        (1, None, virtual.now + RETRY_BASE_S)
    outbox_module.notify(settings, store, CHANGE, clock=virtual.clock, post=receiver)  # the same change again
    assert len(receiver.bodies) == 1  # left to the reconciler, with its backoff
    unconfigured = Settings.from_env({"REGION": "cn-shanghai", "OUTPUT_BUCKET": "media"})
    outbox_module.notify(unconfigured, MemoryStore(), CHANGE, clock=virtual.clock, post=receiver)
    assert len(receiver.bodies) == 1


# --- the POST itself, against a server on this machine ----------------------------------------------
@pytest.fixture
def server():
    """A server answering each POST with the next of ``server.answers`` (a status, "hang": no
    answer within the sender's timeout, or "not http": a line that is no HTTP status line); it keeps
    what it was sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[str, bytes]] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((self.headers["X-Snapshot-Signature"], self.rfile.read(int(self.headers["Content-Length"]))))
            answer = httpd.answers.pop(0)
            if answer == "hang":
                release.wait(5)
                return
            if answer == "not http":
                self.wfile.write(b"hello from something that is not a web server\r\n\r\n")
                self.close_connection = True
                return
            self.send_response(answer)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.answers, httpd.got = [], got
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/hook"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    release.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_post_is_signed_and_only_a_2xx_delivers_a_redirect_is_not_followed(server):
    from snapshot_pipeline.webhooks import post_event

    server.answers = [200, 302, 500, "hang"]
    event = event_of(CHANGE, "media", 1_800_000_000)
    ok = post_event(server.url, SECRET, event, timeout_s=5)
    header, body = server.got[0]
    assert (ok.delivered, ok.answer) == (True, "ok") and json.loads(body) == event
    assert verify_signature(SECRET, header, body, now=time.time()) is None
    moved = post_event(server.url, SECRET, event, timeout_s=5)
    assert (moved.status, moved.delivered, len(server.got)) == (302, False, 2)  # /elsewhere never asked
    assert post_event(server.url, SECRET, event, timeout_s=5).error == "HTTP 500"
    hung = post_event(server.url, SECRET, event, timeout_s=0.3)
    assert (hung.status, hung.delivered) == (None, False) and "timed out" in hung.error


def test_an_answer_that_is_not_http_is_a_failed_delivery_not_an_error(server):
    from snapshot_pipeline.webhooks import post_event

    server.answers = ["not http"]
    garbled = post_event(server.url, SECRET, event_of(CHANGE, "media", 1_800_000_000), timeout_s=5)
    assert (garbled.status, garbled.delivered) == (None, False) and garbled.error.startswith("BadStatusLine")


def test_an_error_answer_whose_body_is_cut_off_is_still_a_failed_delivery():
    import socket
    import struct
    import threading

    from snapshot_pipeline.webhooks import post_event

    listener = socket.create_server(("127.0.0.1", 0))

    def answer_500_then_reset() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\npartial")
        time.sleep(0.2)  # the sender is reading the body by now
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, not a FIN
        connection.close()

    server = threading.Thread(target=answer_500_then_reset)
    server.start()
    try:
        cut = post_event(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", SECRET,
                         event_of(CHANGE, "media", 1_800_000_000), timeout_s=5)
    finally:
        server.join(5)
        listener.close()
    assert (cut.status, cut.delivered, cut.error) == (500, False, "HTTP 500")
