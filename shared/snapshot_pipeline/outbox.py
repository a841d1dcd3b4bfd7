"""The webhook outbox: each event waits in OSS until the receiver has answered it with a 2xx.

``<OUTPUT_PREFIX>_outbox/<event id>.json`` in the output bucket (``snapshot-webhook-outbox/1``)
holds the event and its delivery state. The rules:

1. **Recorded before the index write counts as done.** The Publisher records the change right
   after writing the index, before it settles the upload's pending marker: a writer that dies
   between the two leaves the marker, so the reconciler publishes again and records the event.
   Recording is create-if-absent: a second writer (or a redelivery) of the same change keeps the
   record there, with its attempts.
2. **Sent at once, never failing the writer.** The writer that created the record sends it once,
   with :data:`IMMEDIATE_TIMEOUT_S` (the callback answers ICE within 3 s); a failed send, or a
   failed update of the record, is logged and the invocation goes on.
3. **A 2xx deletes the record.** Anything else (a non-2xx status, a redirect, no answer) counts an
   attempt: ``attempts``, ``last_attempt_at``, ``last_status``, ``last_error`` and the backoff
   ``next_attempt_at`` = now + ``RETRY_BASE_S * 2**(attempts-1)``, at most :data:`RETRY_CAP_S`.
4. **The reconciler sends what is due** on every timer run (:data:`RECONCILE_TIMEOUT_S` each).
5. **Dead after** :data:`MAX_ATTEMPTS` failed attempts: the record moves to
   ``_outbox/failed/<event id>.json`` with ``state: failed``, is sent no more (a reconciler run
   reads only the pending ones) and is listed by ``snapshots audit``; ``audit --fix`` makes it due
   again once the receiver works (or delete it).
6. **At least once.** A crash after the 2xx and before the delete, or two senders at once, send an
   event twice: receivers deduplicate by its ``id``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import layout
from .domain import OssLocation, iso
from .log import log
from .ports import ObjectStore, ObjectStoreError
from .settings import Settings, WebhookSettings
from .webhooks import Delivery, IndexChange, event_of, post_event

OUTBOX_DIR = "_outbox/"
FAILED_DIR = "failed/"  # under OUTBOX_DIR
RECORD_SCHEMA = "snapshot-webhook-outbox/1"
#: A delivery attempt's timeout when the writer sends at once (inside ICE's 3 s callback budget).
IMMEDIATE_TIMEOUT_S = 1.5
#: A delivery attempt's timeout when the reconciler sends.
RECONCILE_TIMEOUT_S = 5.0
#: The pause after the first failed attempt; it doubles with each further one, up to RETRY_CAP_S.
RETRY_BASE_S = 300.0
RETRY_CAP_S = 6 * 3600.0
#: Failed attempts after which an event is dead (about 11 hours after the first, with the backoff).
MAX_ATTEMPTS = 8

PENDING, FAILED = "pending", "failed"
Post = Callable[..., Delivery]


def retry_delay(attempts: int) -> float:
    """The pause before the next attempt after ``attempts`` failed ones."""
    return min(RETRY_BASE_S * 2 ** (attempts - 1), RETRY_CAP_S)


@dataclass
class OutboxRun:
    """What one pass over the outbox did."""

    delivered: int = 0
    retrying: int = 0  # attempted and failed this pass; due again later
    waiting: int = 0  # not due yet
    failed: int = 0  # attempted for the last time this pass: moved to the failed ones
    complete: bool = True
    errors: list[str] = field(default_factory=list)


class Outbox:
    """The outbox of one output bucket; ``webhook``: where its events go (reading needs none)."""

    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str, webhook: WebhookSettings | None = None, *,
                 clock: Callable[[], float] = time.time, post: Post = post_event):
        self.store = store
        self.bucket = bucket
        self.root = f"{output_prefix}{OUTBOX_DIR}"
        self.webhook = webhook
        self.clock = clock
        self.post = post

    def key(self, event_id: str, *, failed: bool = False) -> str:
        return f"{self.root}{FAILED_DIR if failed else ''}{event_id}.json"

    def record(self, change: IndexChange) -> dict[str, Any] | None:
        """Record ``change``'s event, due now; the record, or None when one was there already."""
        now = self.clock()  # the index is in the output bucket, as the outbox is
        doc = {"schema": RECORD_SCHEMA, "event": event_of(change, self.bucket, now), "state": PENDING,
               "attempts": 0, "recorded_at": iso(now), "next_attempt_at": now, "last_attempt_at": None,
               "last_status": None, "last_error": None}
        created = self.store.create_json(self.bucket, self.key(change.event_id), doc)
        log("webhook.recorded", event_id=change.event_id, type=str(change.kind), source=change.source,
            created=created)
        return doc if created else None

    def send(self, doc: dict[str, Any], *, timeout_s: float) -> Delivery:
        """One attempt at ``doc``'s event: a 2xx deletes the record, anything else is recorded in it."""
        if self.webhook is None:
            raise ValueError("no webhook to send to (WEBHOOK_URL is not set)")
        event = doc["event"]
        delivery = self.post(self.webhook.url, self.webhook.secret, event, timeout_s=timeout_s, clock=self.clock)
        attempt = int(doc.get("attempts") or 0) + 1
        log("webhook.sent", event_id=event["id"], type=event["type"], host=urlsplit(self.webhook.url).hostname,
            attempt=attempt, status=delivery.status, delivered=delivery.delivered, error=delivery.error)
        if not delivery.delivered:
            self._record_failure(doc, attempt, delivery)
        else:
            self.store.delete_many(self.bucket, [self.key(event["id"])])
        return delivery

    def _record_failure(self, doc: dict[str, Any], attempt: int, delivery: Delivery) -> None:
        """The attempt goes in the record, with the next one's time; the last one moves it to the failed."""
        now, dead, event_id = self.clock(), attempt >= MAX_ATTEMPTS, doc["event"]["id"]
        failed = dict(doc, attempts=attempt, state=FAILED if dead else PENDING, last_attempt_at=iso(now),
                      last_status=delivery.status, last_error=delivery.error,
                      next_attempt_at=None if dead else now + retry_delay(attempt))
        self.store.put_json(self.bucket, self.key(event_id, failed=dead), failed)
        if dead:
            self.store.delete_many(self.bucket, [self.key(event_id)])
            log("webhook.failed", event_id=event_id, type=doc["event"]["type"], attempts=attempt)

    def records(self, *, failed: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        """The pending records (or the failed ones) as (key, document), in key order: one LIST page
        per 1000, one GET each."""
        root = self.root + (FAILED_DIR if failed else "")
        for obj in self.store.list(self.bucket, root):
            if obj.key.endswith(".json") and "/" not in obj.key[len(root):]:
                doc = self.store.get_json(self.bucket, obj.key)
                if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
                    yield obj.key, doc

    def deliver_due(self, time_left: Callable[[], bool]) -> OutboxRun:
        """Send every record whose next attempt is due, while ``time_left()``."""
        run = OutboxRun()
        for key, doc in self.records():
            if float(doc.get("next_attempt_at") or 0) > self.clock():
                run.waiting += 1
            elif not time_left():
                run.complete = False
                return run
            else:
                try:
                    delivered = self.send(doc, timeout_s=RECONCILE_TIMEOUT_S).delivered
                except ObjectStoreError as exc:  # the record stays as it was: due again next run
                    run.errors.append(f"outbox {key}: {exc}")
                    continue
                last = int(doc.get("attempts") or 0) + 1 >= MAX_ATTEMPTS
                run.delivered += delivered
                run.retrying += not delivered and not last
                run.failed += not delivered and last
        return run

    def revive_failed(self, under: OssLocation) -> int:
        """Make the dead events of sources under ``under`` (a prefix) due again, with fresh attempts."""
        revived = 0
        for key, doc in self.records(failed=True):
            if _names_source_under(doc, under):
                self.store.put_json(self.bucket, self.key(doc["event"]["id"]),
                                    dict(doc, state=PENDING, attempts=0, next_attempt_at=self.clock()))
                self.store.delete_many(self.bucket, [key])
                revived += 1
        return revived


@dataclass
class DeliveryReport:
    """The outbox as ``snapshots audit`` shows it, for the sources under one prefix."""

    pending: int = 0
    failed: int = 0
    failed_deliveries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delivery_report(outbox: Outbox, under: OssLocation) -> DeliveryReport:
    """The pending and failed (dead) events of the sources under ``under``."""
    report = DeliveryReport()
    report.pending = sum(_names_source_under(doc, under) for _, doc in outbox.records())
    for _, doc in outbox.records(failed=True):
        if not _names_source_under(doc, under):
            continue
        report.failed += 1
        event = doc["event"]
        report.failed_deliveries.append({
            "id": event.get("id"), "type": event.get("type"), "source": (event.get("source") or {}).get("uri"),
            "version": event.get("version"), "attempts": doc.get("attempts"),
            "last_attempt_at": doc.get("last_attempt_at"), "last_status": doc.get("last_status"),
            "last_error": doc.get("last_error")})
    return report


def _names_source_under(doc: dict[str, Any], under: OssLocation) -> bool:
    source = doc["event"].get("source") or {}
    return source.get("bucket") == under.bucket and str(source.get("key") or "").startswith(under.key)


def _source_bucket(change: IndexChange) -> str:
    source = OssLocation.parse(change.source)
    if source is None:
        raise ValueError(f"an index change names no OSS source: {change.source!r}")
    return source.bucket


def outbox_for(settings: Settings, store: ObjectStore, source_bucket: str, *,
               clock: Callable[[], float] = time.time, post: Post = post_event) -> Outbox | None:
    """The outbox of the output bucket of ``source_bucket``'s sources; None without a webhook."""
    webhook = settings.webhook()
    if webhook is None:
        return None
    bucket = layout.output_bucket(settings.output_bucket, source_bucket)
    return Outbox(store, bucket, settings.output_prefix, webhook, clock=clock, post=post)


def notify(settings: Settings, store: ObjectStore, change: IndexChange, *,
           clock: Callable[[], float] = time.time, post: Post = post_event) -> None:
    """Record ``change``'s event (a failure to record raises: the index write is not done) and, if
    this writer recorded it, send it at once (a failure to send is left to the reconciler)."""
    outbox = outbox_for(settings, store, _source_bucket(change), clock=clock, post=post)
    if outbox is None:
        return
    doc = outbox.record(change)
    if doc is None:
        return
    try:
        outbox.send(doc, timeout_s=IMMEDIATE_TIMEOUT_S)
    except ObjectStoreError as exc:  # the record stays due: the reconciler sends it
        log("webhook.send_unrecorded", event_id=change.event_id, error=str(exc))
