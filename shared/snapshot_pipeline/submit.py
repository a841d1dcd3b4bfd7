"""Submit: an OSS object-created record becomes one ICE snapshot job.

Output naming is deterministic, so the snapshots and the index of a video always sit at
``<output bucket>/<OUTPUT_PREFIX><source key>/``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .events import EventError, ObjectEvent, parse_oss_event, parse_oss_record
from .ice import Ice, OssLocation
from .log import log
from .settings import Settings

OUTPUT_FILE = {"Normal": "{Count}.jpg", "Sprite": "sprite-{TileCount}.jpg", "WebVtt": "storyboard.vtt"}
INDEX_FILE = "index.json"


def output_dir(settings: Settings, source_key: str) -> str:
    return f"{settings.output_prefix}{source_key}/"


def output_location(settings: Settings, source: ObjectEvent) -> OssLocation:
    bucket = settings.output_bucket or source.bucket
    return OssLocation(bucket, output_dir(settings, source.key) + OUTPUT_FILE[settings.snapshot_type])


def job_name(source: ObjectEvent) -> str:
    """A short deterministic name: the same upload always yields the same job name."""
    digest = hashlib.sha1(f"{source.bucket}/{source.key}/{source.etag}".encode("utf-8")).hexdigest()
    return f"snap-{digest[:20]}"


def user_data(settings: Settings, source: ObjectEvent) -> str:
    """UserData echoed back by GetSnapshotJob: where the video came from, and where to call back."""
    doc: dict[str, Any] = {"source": {"bucket": source.bucket, "key": source.key, "etag": source.etag}}
    if settings.callback_url:
        doc["NotifyAddress"] = settings.callback_url
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def skip_reason(settings: Settings, source: ObjectEvent) -> str | None:
    if not source.is_object_created:
        return f"event {source.event_name} is not an object creation"
    if source.key.endswith("/"):
        return "folder marker"
    if source.key.startswith(settings.output_prefix):
        return f"key is under the output prefix {settings.output_prefix!r}"
    if not source.key.lower().endswith(settings.video_suffixes):
        return "not a video suffix"
    if source.size == 0:
        return "zero-size object"
    return None


@dataclass(frozen=True)
class Outcome:
    bucket: str | None
    key: str | None
    outcome: str  # submitted | skipped | invalid
    job_id: str | None = None
    reason: str | None = None


def submit_object(settings: Settings, ice: Ice, source: ObjectEvent) -> str:
    """Submit the snapshot job for one uploaded video; return its JobId."""
    overwrite = {"Type": settings.snapshot_type, **settings.overwrite_params}
    return ice.submit_snapshot_job(
        input=OssLocation(source.bucket, source.key),
        output=output_location(settings, source),
        template_id=settings.template_id,
        overwrite_params=overwrite,
        user_data=user_data(settings, source),
        name=job_name(source),
        pipeline_id=settings.pipeline_id,
    )


def handle_oss_event(raw: Any, settings: Settings, ice: Ice, request_id: str | None = None) -> list[Outcome]:
    """Handle every record of an OSS trigger event.

    A malformed record is logged and reported as ``invalid`` without stopping the others.
    An ICE failure propagates, so Function Compute retries the invocation.
    """
    settings.require("template_id")
    outcomes = []
    for raw_record in parse_oss_event(raw):
        started = time.monotonic()
        try:
            source = parse_oss_record(raw_record)
        except EventError as exc:
            log("submit.record", request_id=request_id, outcome="invalid", reason=str(exc))
            outcomes.append(Outcome(None, None, "invalid", reason=str(exc)))
            continue
        reason = skip_reason(settings, source)
        if reason:
            outcome = Outcome(source.bucket, source.key, "skipped", reason=reason)
        else:
            job_id = submit_object(settings, ice, source)
            outcome = Outcome(source.bucket, source.key, "submitted", job_id=job_id)
        log("submit.record", request_id=request_id, bucket=outcome.bucket, key=outcome.key,
            etag=source.etag, job_id=outcome.job_id, outcome=outcome.outcome, reason=outcome.reason,
            duration_s=round(time.monotonic() - started, 4))
        outcomes.append(outcome)
    return outcomes
