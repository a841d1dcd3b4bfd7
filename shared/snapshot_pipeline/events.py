"""Parse Function Compute events at the boundary into frozen values.

After parsing nothing indexes raw dicts. A malformed event raises :class:`EventError`
naming the field that is wrong.

Sources: the native OSS trigger event and the FC 3.0 HTTP trigger event
(https://www.alibabacloud.com/help/en/functioncompute/fc/user-guide/http-trigger-invoking-function).
"""
from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class EventError(ValueError):
    """The event is not of the expected shape; the message names the field."""


@dataclass(frozen=True)
class ObjectEvent:
    """One OSS object notification record."""

    event_name: str  # e.g. "ObjectCreated:PutObject" (no "oss:" prefix, as OSS sends it)
    bucket: str
    key: str  # as OSS sent it: raw, not URL-decoded (see README: "Object keys in events")
    etag: str
    size: int
    region: str | None
    request_id: str | None
    event_time: float | None = None  # epoch seconds, from eventTime

    @property
    def is_object_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def is_object_removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved:")


def _load_json(raw: bytes | str | Mapping, what: str) -> Any:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"{what} is not UTF-8 text: {exc}") from None
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise EventError(f"{what} is not JSON: {exc}") from None


def _field(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise EventError(f"OSS event record is missing field {path!r}")
        cur = cur[part]
    return cur


def parse_oss_record(record: Any) -> ObjectEvent:
    """Parse one native OSS record (an element of ``{"events": [...]}``)."""
    if not isinstance(record, Mapping):
        raise EventError("OSS event record is not a JSON object")
    name = _field(record, "eventName")
    bucket = _field(record, "oss.bucket.name")
    key = _field(record, "oss.object.key")
    for fname, value in (("eventName", name), ("oss.bucket.name", bucket), ("oss.object.key", key)):
        if not isinstance(value, str) or not value:
            raise EventError(f"OSS event record field {fname!r} must be a non-empty string")
    obj = record["oss"]["object"]
    etag = obj.get("eTag") or obj.get("etag") or ""
    size = obj.get("size", 0)
    if not isinstance(etag, str):
        raise EventError("OSS event record field 'oss.object.eTag' must be a string")
    if not isinstance(size, int) or isinstance(size, bool):
        raise EventError("OSS event record field 'oss.object.size' must be an integer")
    response = record.get("responseElements") or {}
    return ObjectEvent(
        event_name=name[len("oss:"):] if name.startswith("oss:") else name,
        bucket=bucket,
        key=key,
        etag=etag.strip('"').upper(),
        size=size,
        region=record.get("region"),
        request_id=response.get("requestId") if isinstance(response, Mapping) else None,
        event_time=_epoch(record.get("eventTime")),
    )


def _epoch(value: Any) -> float | None:
    """An ISO 8601 ``eventTime`` (``2026-12-01T11:21:04.000Z``) as epoch seconds; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _from_cloudevent(doc: Mapping) -> Any:
    """An EventBridge (CloudEvents) OSS event: ``data`` holds an OSS record; the event name is
    taken from ``type`` (``oss:ObjectCreated:PutObject``) when the record lacks one."""
    data = doc.get("data")
    if isinstance(data, str):
        data = _load_json(data, "EventBridge event field 'data'")
    if not isinstance(data, Mapping):
        raise EventError("EventBridge event field 'data' must be a JSON object")
    if "eventName" not in data and isinstance(doc.get("type"), str):
        data = dict(data, eventName=doc["type"])
    return data


def parse_oss_event(raw: bytes | str | Mapping) -> list[Any]:
    """Return the raw records of an OSS event, to be parsed one by one.

    Accepts the native OSS trigger shape ``{"events": [record, ...]}`` and the EventBridge
    shape (one CloudEvent ``{"source": "acs.oss", "type", "data": record}``, or a list of them).
    Records are returned unparsed so that one bad record can be reported on its own without
    stopping the others.
    """
    doc = _load_json(raw, "OSS trigger event")
    if isinstance(doc, list) and doc and all(isinstance(d, Mapping) and "data" in d for d in doc):
        return [_from_cloudevent(d) for d in doc]
    if isinstance(doc, Mapping) and "data" in doc and ("specversion" in doc or "source" in doc):
        return [_from_cloudevent(doc)]
    if not isinstance(doc, Mapping) or "events" not in doc:
        raise EventError("OSS trigger event must be a JSON object with an 'events' list "
                         "(native OSS trigger) or a CloudEvent with 'data' (EventBridge)")
    records = doc["events"]
    if not isinstance(records, list):
        raise EventError("OSS trigger event field 'events' must be a list")
    return records


@dataclass(frozen=True)
class HttpRequest:
    """An FC 3.0 HTTP-trigger request. Header names are lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    request_id: str | None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_http_event(raw: bytes | str | Mapping) -> HttpRequest:
    doc = _load_json(raw, "HTTP trigger event")
    if not isinstance(doc, Mapping):
        raise EventError("HTTP trigger event is not a JSON object")
    ctx = doc.get("requestContext")
    if not isinstance(ctx, Mapping) or not isinstance(ctx.get("http"), Mapping):
        raise EventError("HTTP trigger event is missing field 'requestContext.http'")
    method = ctx["http"].get("method")
    if not isinstance(method, str):
        raise EventError("HTTP trigger event is missing field 'requestContext.http.method'")
    headers = doc.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise EventError("HTTP trigger event field 'headers' must be an object")
    body = doc.get("body") or ""
    if not isinstance(body, str):
        raise EventError("HTTP trigger event field 'body' must be a string")
    if doc.get("isBase64Encoded"):
        try:
            body_bytes = base64.b64decode(body, validate=True)
        except ValueError:
            raise EventError("HTTP trigger event field 'body' is not valid base64") from None
    else:
        body_bytes = body.encode("utf-8")
    return HttpRequest(
        method=method.upper(),
        path=ctx["http"].get("path") or doc.get("rawPath") or "/",
        headers={str(k).lower(): str(v) for k, v in headers.items()},
        query={str(k): str(v) for k, v in (doc.get("queryParameters") or {}).items()},
        body=body_bytes,
        request_id=ctx.get("requestId"),
    )


def http_response(status: int, payload: Any) -> dict:
    """The dict FC 3.0 maps to an HTTP response: always the full shape with a string body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "isBase64Encoded": False,
        "body": json.dumps(payload, ensure_ascii=False),
    }
