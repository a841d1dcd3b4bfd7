"""ICE job-completion callbacks: the event body, its signature and one HTTP delivery attempt.

Documented (ice-fc-reference.md section 7): ICE POSTs a JSON body; with AuthSwitch on it adds
``X-ICE-TIMESTAMP`` (UNIX seconds) and ``X-ICE-SIGNATURE`` = lower-case md5 hex of
``<callback URL>|<timestamp>|<AuthKey>``, the URL exactly as configured. A delivery counts only as
HTTP 200 within 3 s; otherwise ICE tries twice more, 1 s apart, then drops the message.

UNCONFIRMED upstream: no document gives the exact body ICE sends for a job created with
SubmitSnapshotJob. This module sends the documented IMS event envelope with the only snapshot event
name in the IMS event list, ``SnapshotComplete``::

    {"EventType": "SnapshotComplete", "UserId": <account id as a JSON number>,
     "EventTime": "YYYY-MM-DDTHH:MM:SSZ",
     "MessageBody": {"JobId", "Name"?, "Status": "Success"|"Fail", "Type", "Count",
                     "Code"?, "Message"?, "UserData"?}}

A receiver should treat it as a signal, find the JobId defensively and confirm with GetSnapshotJob.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from localcloud.ice.models import SNAPSHOT_EVENT, SnapshotJob, format_time


class NothingToRedeliver(Exception):
    """The job has no completion event to post again: it is not finished, or no HTTP URL takes it."""


def snapshot_complete_event(job: SnapshotJob, account_id: str, event_time: datetime | None) -> dict[str, Any]:
    """The SnapshotComplete event ICE posts for ``job``; ``event_time`` is its finish time."""
    body = {"JobId": job.job_id, "Name": job.name, "Status": job.status, "Type": job.type, "Count": job.count,
            "Code": job.code, "Message": job.message, "UserData": job.user_data}
    return {"EventType": SNAPSHOT_EVENT, "UserId": int(account_id), "EventTime": format_time(event_time),
            "MessageBody": {k: v for k, v in body.items() if v is not None}}


def signature(url: str, timestamp: int, auth_key: str) -> str:
    return hashlib.md5(f"{url}|{timestamp}|{auth_key}".encode()).hexdigest()


def signed_headers(url: str, auth_key: str | None, now: float) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if auth_key:
        timestamp = int(now)
        headers.update({"X-ICE-TIMESTAMP": str(timestamp), "X-ICE-SIGNATURE": signature(url, timestamp, auth_key)})
    return headers


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None
    elapsed_s: float

    def succeeded(self, timeout_s: float) -> bool:
        return self.status == 200 and self.elapsed_s <= timeout_s


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    """One POST to ``url``; never raises. Any status but 200 within ``timeout_s`` is a failure."""
    started = time.monotonic()
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    if not parts.hostname:
        return Attempt(None, "the callback URL has no host", 0.0)
    connection = None
    try:
        connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = time.monotonic() - started
        error = None if response.status == 200 else f"HTTP {response.status}"
        if response.status == 200 and elapsed > timeout_s:
            error = f"answered after {elapsed:.2f} s, more than {timeout_s} s"
        return Attempt(response.status, error, elapsed)
    except (OSError, http.client.HTTPException) as exc:
        elapsed = time.monotonic() - started
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Attempt(None, reason, elapsed)
    finally:
        if connection is not None:
            connection.close()


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")
