"""Webhook events: what the app is told when a source's index changes, signed as Stripe signs them.

- **The event** (``snapshot-webhook-event/1``): ``id``, ``type`` (:class:`ChangeKind`), the
  ``source``, its ``version``, the ``profile`` whose result changed, and where the ``index`` is.
  The id is a hash of (source, version, profile, type): a redelivery, or a second writer of the
  same change, sends the same id, so a receiver deduplicates on it.
- **The signature**: ``X-Snapshot-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
  HMAC-SHA256 with the webhook secret over ``"<t>.<body>"`` (the exact bytes sent). A receiver
  recomputes it, compares in constant time and refuses a ``t`` outside its tolerance window
  (:func:`verify_signature`; README, "Webhooks").
- **Sending**: one POST of the JSON body; a 2xx answer is a delivery, anything else (a 3xx
  included: redirects are not followed) or no answer is a failure to retry (:mod:`.outbox`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from .domain import DEFAULT_PROFILE, OssLocation, StrEnum

EVENT_SCHEMA = "snapshot-webhook-event/1"
SIGNATURE_HEADER = "X-Snapshot-Signature"
#: How far a receiver lets ``t`` be from its own clock (Stripe's default).
DEFAULT_TOLERANCE_S = 300
#: How much of an answer's body a delivery keeps (for the CLI and the outbox record).
ANSWER_EXCERPT = 500


class ChangeKind(StrEnum):
    """What changed in a source's index."""

    PROFILE_INDEXED = "profile.indexed"  # a profile's job finished and its result is in the index
    PROFILE_FAILED = "profile.failed"  # a profile's job failed for good (or ICE refused it); the index says why
    SOURCE_DELETED = "source.deleted"  # the source object was deleted: the index is a tombstone


@dataclass(frozen=True)
class IndexChange:
    """What the Publisher just wrote into a source's index (its hook ``on_index_written``)."""

    source: str  # oss://bucket/key
    version: str | None  # Upload.version; None when unknown (an index written before versions)
    kind: ChangeKind
    profile: str | None
    index_key: str
    index_url: str | None  # where a reader fetches the index (a public base URL), if the deployment has one

    @property
    def event_id(self) -> str:
        """Stable for the same change, whoever writes it and however often."""
        material = "\n".join((self.source, self.version or "", self.profile or "", str(self.kind)))
        return "evt_" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def event_of(change: IndexChange, index_bucket: str, created: float) -> dict[str, Any]:
    """The event document for ``change`` (``created``: when the change was recorded, unix seconds)."""
    source = OssLocation.parse(change.source)
    return {
        "schema": EVENT_SCHEMA, "id": change.event_id, "type": str(change.kind), "created": int(created),
        "source": {"uri": change.source, "bucket": source.bucket if source else None,
                   "key": source.key if source else None},
        "version": change.version, "profile": change.profile,
        "index": {"bucket": index_bucket, "key": change.index_key, "url": change.index_url},
    }


def sample_event(now: float) -> dict[str, Any]:
    """A well-formed event of type ``webhook.test`` (``snapshots webhook test``): no index changed."""
    change = IndexChange("oss://example-bucket/uploads/example.mp4", "20261201T000000Z-0123456789ABCDEF",
                         ChangeKind.PROFILE_INDEXED, DEFAULT_PROFILE,
                         "snapshots/example-bucket/uploads/example.mp4/index.json", None)
    return dict(event_of(change, "example-bucket", now), id=f"evt_test_{int(now)}", type="webhook.test")


def body_of(event: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact JSON."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Snapshot-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float,
                     tolerance_s: float = DEFAULT_TOLERANCE_S) -> str | None:
    """Why ``header`` does not sign ``body``, or None when it does (what a receiver checks)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    timestamps = fields.get("t", [])
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return "no timestamp t"
    if abs(now - int(timestamps[0])) > tolerance_s:
        return f"timestamp outside the {tolerance_s:g} s tolerance"
    expected = signature(secret, int(timestamps[0]), body).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        return "no v1 signature matches"
    return None


@dataclass(frozen=True)
class Delivery:
    """What one POST got: the HTTP status (None: no answer) and, when it failed, why."""

    status: int | None
    error: str | None = None
    answer: str = ""  # the start of the answer's body

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@cache
def _opener() -> Any:
    """urllib's opener without redirects: a redirect is an answer (a failed delivery), never followed,
    as following it would drop or resend the body. Built on first use (a deployment without a
    webhook never imports urllib.request)."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirects)


def post_event(url: str, secret: str, event: dict[str, Any], *, timeout_s: float,
               clock: Callable[[], float] = time.time) -> Delivery:
    """POST ``event`` to ``url``, signed now; never raises for a failed delivery."""
    import http.client
    import urllib.error
    import urllib.request

    body = body_of(event)
    headers = {"Content-Type": "application/json", "User-Agent": "video-snapshot-pipeline-webhooks/1",
               SIGNATURE_HEADER: signature(secret, int(clock()), body)}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener().open(request, timeout=timeout_s) as answer:
            return Delivery(answer.status, answer=_excerpt(answer))
    except urllib.error.HTTPError as exc:
        return Delivery(exc.code, f"HTTP {exc.code}", _excerpt(exc))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # refused, reset, timed out, no such host; or an answer that is not HTTP (a bad status line, a
        # body cut short): a failed attempt, so the outbox counts it instead of the writer failing
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return Delivery(None, f"{type(reason).__name__}: {reason}")


def _excerpt(answer: Any) -> str:
    """The start of an answer's body, or "" when the connection fails while it is read: the status
    has come, and it decides (an error raised here would escape the ``except`` it is read in)."""
    import http.client

    try:
        data = answer.read(ANSWER_EXCERPT)
    except (OSError, http.client.HTTPException):
        return ""
    return str(data.decode("utf-8", "replace"))
