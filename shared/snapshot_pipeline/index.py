"""The index.json document: the durable record of a video's snapshots.

Object keys are the durable reference; the signed URLs are a convenience that expires
(``url_expires_at``). Schema: ``schemas/snapshot-index-1.json``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from .ice import SnapshotJob, SnapshotUrls

SCHEMA = "snapshot-index/1"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_of_url(url: str, bucket: str) -> tuple[str, str]:
    """The (bucket, key) a signed OSS URL points at: virtual-hosted or path-style."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    host = parts.hostname or ""
    if host.startswith(bucket + "."):
        return bucket, path.lstrip("/")
    first, _, rest = path.lstrip("/").partition("/")
    return first, rest


def url_expiry(url: str, now: float, timeout_s: int) -> str:
    """When a signed URL stops working: V1 ``Expires``, V4 ``x-oss-date`` + ``x-oss-expires``."""
    query = parse_qs(urlsplit(url).query)
    if "Expires" in query:
        return iso(int(query["Expires"][0]))
    if "x-oss-expires" in query and "x-oss-date" in query:
        start = datetime.strptime(query["x-oss-date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        return iso(start.timestamp() + int(query["x-oss-expires"][0]))
    return iso(now + timeout_s)


def source_of(job: SnapshotJob) -> dict[str, Any]:
    """Where the video came from: the UserData the submitter wrote, else the job's Input."""
    try:
        data = json.loads(job.user_data or "")
    except json.JSONDecodeError:
        data = None
    src = data.get("source") if isinstance(data, Mapping) else None
    if isinstance(src, Mapping) and src.get("bucket") and src.get("key"):
        return {"bucket": src["bucket"], "key": src["key"], "etag": src.get("etag")}
    if job.input:
        return {"bucket": job.input.bucket, "key": job.input.key, "etag": None}
    raise ValueError(f"job {job.job_id} names no source: no UserData.source and no OSS Input")


def build_index(job: SnapshotJob, urls: SnapshotUrls | None, *, now: float, url_timeout_s: int) -> dict:
    source = source_of(job)
    out_bucket = job.output.bucket if job.output else source["bucket"]
    snapshots = []
    for i, url in enumerate(urls.urls if urls else (), start=1):
        bucket, key = object_of_url(url, out_bucket)
        snapshots.append({"index": i, "bucket": bucket, "key": key, "url": url,
                          "url_expires_at": url_expiry(url, now, url_timeout_s)})
    job_doc: dict[str, Any] = {
        "id": job.job_id, "status": job.status, "type": job.type, "template_id": job.template_id,
        "created": job.create_time, "finished": job.finish_time,
    }
    if job.status == "Fail":
        job_doc["error"] = {"code": job.code, "message": job.message}
    return {"schema": SCHEMA, "source": source, "job": job_doc, "snapshots": snapshots,
            "generated_at": iso(now)}
