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
from typing import Any, Callable, Mapping

from .events import HttpRequest, http_response
from .ice import Ice, IceError, SnapshotJob
from .index import build_index, source_of
from .layout import INDEX_FILE, index_key
from .log import log
from .settings import Settings
from .store import ObjectStore

MAX_SKEW_S = 300
MAX_BODY_BYTES = 64 * 1024


def signature(callback_url: str, timestamp: str, auth_key: str) -> str:
    return hashlib.md5(f"{callback_url}|{timestamp}|{auth_key}".encode("utf-8")).hexdigest()


def verify(request: HttpRequest, callback_url: str, auth_keys: tuple[str, ...] | str, *, now: float) -> str | None:
    """None when the request carries a valid ICE signature, else the reason it does not."""
    keys = (auth_keys,) if isinstance(auth_keys, str) else auth_keys
    if len(request.body) > MAX_BODY_BYTES:
        return f"body exceeds {MAX_BODY_BYTES} bytes"
    ts, sig = request.header("x-ice-timestamp"), request.header("x-ice-signature")
    if not ts or not sig:
        return "missing X-ICE-TIMESTAMP or X-ICE-SIGNATURE"
    try:
        ts_value = int(ts)
    except ValueError:
        return "X-ICE-TIMESTAMP is not an integer"
    if abs(now - ts_value) > MAX_SKEW_S:
        return "X-ICE-TIMESTAMP is outside the accepted window"
    given = sig.strip().lower().encode("ascii", "replace")
    matches = [hmac.compare_digest(signature(callback_url, ts, key).encode("ascii"), given) for key in keys if key]
    return None if any(matches) else "signature mismatch"


def job_id_of(body: Any) -> str | None:
    """Find the JobId defensively: the IMS envelope's MessageBody first, then the top level."""
    if not isinstance(body, Mapping):
        return None
    candidates = []
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


class Indexer:
    """Writes a finished job's index beside its snapshots (callback and reconciler alike)."""

    def __init__(self, settings: Settings, ice: Ice, store: ObjectStore, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.ice = ice
        self.store = store
        self.clock = clock

    def location(self, job: SnapshotJob) -> tuple[str, str]:
        """The index sits beside the snapshots: in the directory of the job's output pattern."""
        if job.output and "/" in job.output.key:
            return job.output.bucket, job.output.key.rsplit("/", 1)[0] + "/" + INDEX_FILE
        source = source_of(job)
        return (self.settings.output_bucket or source["bucket"],
                index_key(self.settings.output_prefix, source["bucket"], source["key"]))

    def write(self, job: SnapshotJob) -> tuple[str, str, dict]:
        urls = (self.ice.get_all_snapshot_urls(job.job_id, timeout_s=self.settings.url_timeout_s)
                if job.status == "Success" else None)
        source = source_of(job)
        info = self.store.head(source["bucket"], source["key"])
        doc = build_index(job, urls, now=self.clock(), url_timeout_s=self.settings.url_timeout_s,
                          source_size=info.size if info else None, read=self.store.get_head_bytes)
        bucket, key = self.location(job)
        self.store.put_json(bucket, key, doc)
        return bucket, key, doc


def handle_callback(request: HttpRequest, settings: Settings, ice: Ice, store: ObjectStore,
                    clock: Callable[[], float] = time.time) -> dict:
    settings.require("callback_url", "callback_auth_key")
    started = time.monotonic()
    fields: dict[str, Any] = {"request_id": request.request_id}

    def answer(status: int, outcome: str, payload: dict) -> dict:
        log("callback", **fields, outcome=outcome, http_status=status,
            duration_s=round(time.monotonic() - started, 4))
        return http_response(status, payload)

    if request.method != "POST":
        return answer(405, "method_not_allowed", {"error": "only POST is accepted"})
    problem = verify(request, settings.callback_url,
                     (settings.callback_auth_key, settings.callback_auth_key_previous or ""), now=clock())
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
        return answer(202, "not_finished", {"job_id": job_id, "status": job.status})
    bucket, key, doc = Indexer(settings, ice, store, clock).write(job)
    fields.update(bucket=bucket, key=key, job_status=job.status, snapshots=len(doc["snapshots"]))
    return answer(200, "indexed", {"job_id": job_id, "status": job.status, "index": f"oss://{bucket}/{key}"})
