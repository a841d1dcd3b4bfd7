"""Callback: ICE says a snapshot job finished; confirm it and write the index.

The callback body is a hint only (its exact shape for snapshot jobs is undocumented and the
signature does not cover it): the JobId it names is confirmed with GetSnapshotJob, and the
snapshots come from GetSnapshotUrls.

Signature (https://www.alibabacloud.com/help/en/ims/user-guide/callback-authentication):
``X-ICE-SIGNATURE = md5("<callback URL>|<X-ICE-TIMESTAMP>|<AuthKey>")`` in lower-case hex,
compared in constant time; during a key rotation the previous key is accepted too.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from .domain import SnapshotJob
from .events import HttpRequest, http_response
from .log import log, seconds_since
from .ports import Ice, IceError, ObjectStore
from .publish import Publication, Published, Publisher
from .settings import CallbackSettings, Settings

MAX_SKEW_S = 300
MAX_BODY_BYTES = 64 * 1024


def signature(callback_url: str, timestamp: str, auth_key: str) -> str:
    return hashlib.md5(f"{callback_url}|{timestamp}|{auth_key}".encode()).hexdigest()


def verify(request: HttpRequest, callback_url: str, auth_keys: tuple[str, ...] | str, *, now: float) -> str | None:
    """None when the request carries a valid ICE signature, else the reason it does not."""
    keys = (auth_keys,) if isinstance(auth_keys, str) else auth_keys
    if len(request.body) > MAX_BODY_BYTES:
        return f"body exceeds {MAX_BODY_BYTES} bytes"
    ts, sig = request.header("x-ice-timestamp"), request.header("x-ice-signature")
    if not ts or not sig:
        return "missing X-ICE-TIMESTAMP or X-ICE-SIGNATURE"
    problem = _timestamp_problem(ts, now)
    if problem:
        return problem
    given = sig.strip().lower().encode("ascii", "replace")
    matches = [hmac.compare_digest(signature(callback_url, ts, key).encode("ascii"), given) for key in keys if key]
    return None if any(matches) else "signature mismatch"


def _timestamp_problem(ts: str, now: float) -> str | None:
    try:
        ts_value = int(ts)
    except ValueError:
        return "X-ICE-TIMESTAMP is not an integer"
    if abs(now - ts_value) > MAX_SKEW_S:
        return "X-ICE-TIMESTAMP is outside the accepted window"
    return None


def job_id_of(body: Any) -> str | None:
    """Find the JobId defensively: the IMS envelope's MessageBody first, then the top level."""
    if not isinstance(body, Mapping):
        return None
    candidates: list[Any] = []
    message = body.get("MessageBody")
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except (json.JSONDecodeError, RecursionError, ValueError):
            message = None
    if isinstance(message, Mapping):
        candidates += [message.get("JobId"), message.get("jobId")]
    candidates += [body.get("JobId"), body.get("jobId")]
    return next((c for c in candidates if isinstance(c, str) and c), None)


class _Answer(Exception):
    """Ends handling with an HTTP answer (status, what the log calls it, JSON payload)."""

    def __init__(self, status: int, outcome: str, payload: dict[str, Any], reason: str | None = None):
        super().__init__(outcome)
        self.status, self.outcome, self.payload, self.reason = status, outcome, payload, reason


def _parse_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Answer(400, "bad_request", {"error": "callback body is not JSON"}) from None
    except (RecursionError, ValueError) as exc:  # nested too deep, or a number too long to convert
        raise _Answer(400, "bad_request", {"error": "callback body is JSON this service does not accept "
                                                    "(nested too deeply, or a number too long)"},
                      reason=type(exc).__name__) from None


def _trusted_job_id(request: HttpRequest, trusted: CallbackSettings, now: float) -> str:
    """The JobId a validly signed POST names; raises _Answer otherwise."""
    if request.method != "POST":
        raise _Answer(405, "method_not_allowed", {"error": "only POST is accepted"})
    problem = verify(request, trusted.callback_url, trusted.auth_keys, now=now)
    if problem:
        raise _Answer(401, "unauthorized", {"error": f"invalid ICE callback: {problem}"}, reason=problem)
    job_id = job_id_of(_parse_body(request.body))
    if not job_id:
        raise _Answer(400, "bad_request", {"error": "callback body names no JobId (MessageBody.JobId or JobId)"})
    return job_id


def _published_answer(job: SnapshotJob, published: Publication, fields: dict[str, Any]) -> _Answer:
    fields.update(job_status=job.status.value, reason=published.reason)
    if published.kind == Published.FOREIGN:
        return _Answer(404, "foreign_job", {"error": f"job {job.job_id} is {published.reason}"})
    payload: dict[str, Any] = {"job_id": job.job_id, "status": job.status.value, "outcome": published.kind.value}
    if published.index is not None:
        fields.update(bucket=published.index.bucket, key=published.index.key)
        payload["index"] = published.index.uri
    if published.doc is not None:
        fields["snapshots"] = len(published.doc["snapshots"])
    if published.reason:
        payload["reason"] = published.reason
    return _Answer(200, published.kind.value, payload)


def _confirmed_job(ice: Ice, job_id: str) -> SnapshotJob:
    """The finished job GetSnapshotJob confirms; raises _Answer when it is unknown or not finished."""
    try:
        job = ice.get_snapshot_job(job_id)
    except IceError as exc:
        if exc.not_found:
            raise _Answer(404, "unknown_job", {"error": f"job {job_id} not found"}) from None
        raise
    if not job.finished:
        raise _Answer(202, "not_finished", {"job_id": job_id, "status": job.status.value})
    return job


def handle_callback(request: HttpRequest, settings: Settings, ice: Ice, store: ObjectStore,
                    clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Verify, confirm the job with GetSnapshotJob, publish its index; one log line per call. The first
    GetSnapshotUrls page is fetched beside GetSnapshotJob (both need only the JobId).
    Errors of ICE or OSS other than an unknown job propagate (a 5xx: ICE delivers again)."""
    started = time.monotonic()
    fields: dict[str, Any] = {}
    try:
        job_id = fields["job_id"] = _trusted_job_id(request, settings.callback(), clock())
        with ice.first_urls_page_ahead(job_id, timeout_s=settings.url_timeout_s) as ice_ahead:
            job = _confirmed_job(ice_ahead, job_id)
            result = _published_answer(job, Publisher(settings, ice_ahead, store, clock).publish(job), fields)
    except _Answer as answer:
        result = answer
        if answer.reason:
            fields["reason"] = answer.reason
    log("callback", **fields, outcome=result.outcome, http_status=result.status, duration_s=seconds_since(started))
    return http_response(result.status, result.payload)
