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

from .events import HttpRequest, http_response
from .index import Indexer
from .log import log, seconds_since
from .ports import Ice, IceError, ObjectStore
from .settings import Settings

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
        except json.JSONDecodeError:
            message = None
    if isinstance(message, Mapping):
        candidates += [message.get("JobId"), message.get("jobId")]
    candidates += [body.get("JobId"), body.get("jobId")]
    return next((c for c in candidates if isinstance(c, str) and c), None)


def handle_callback(request: HttpRequest, settings: Settings, ice: Ice, store: ObjectStore,
                    clock: Callable[[], float] = time.time) -> dict[str, Any]:
    trusted = settings.callback()
    started = time.monotonic()
    fields: dict[str, Any] = {}

    def answer(status: int, outcome: str, payload: dict[str, Any]) -> dict[str, Any]:
        log("callback", **fields, outcome=outcome, http_status=status, duration_s=seconds_since(started))
        return http_response(status, payload)

    if request.method != "POST":
        return answer(405, "method_not_allowed", {"error": "only POST is accepted"})
    problem = verify(request, trusted.callback_url, trusted.auth_keys, now=clock())
    if problem:
        fields["reason"] = problem
        return answer(401, "unauthorized", {"error": f"invalid ICE callback: {problem}"})
    try:
        body = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return answer(400, "bad_request", {"error": "callback body is not JSON"})
    job_id = job_id_of(body)
    if not job_id:
        return answer(400, "bad_request", {"error": "callback body names no JobId (MessageBody.JobId or JobId)"})
    fields["job_id"] = job_id
    try:
        job = ice.get_snapshot_job(job_id)
    except IceError as exc:
        if exc.not_found:
            return answer(404, "unknown_job", {"error": f"job {job_id} not found"})
        raise
    if not job.finished:
        return answer(202, "not_finished", {"job_id": job_id, "status": job.status.value})
    bucket, key, doc = Indexer(settings, ice, store, clock).write(job)
    fields.update(bucket=bucket, key=key, job_status=job.status.value, snapshots=len(doc["snapshots"]))
    return answer(200, "indexed", {"job_id": job_id, "status": job.status.value, "index": f"oss://{bucket}/{key}"})
