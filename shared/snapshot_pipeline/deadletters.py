"""Dead letters: OSS events whose submit invocation ran out of Function Compute's async retries.

The submit function's ``asyncInvokeConfig.destinationConfig.onFailure`` invokes the dead-letter
function with FC's destination event (``timestamp``, ``requestContext{requestId, functionArn,
condition, approximateInvokeCount}``, ``requestPayload``: the original event as a string,
``responseContext{statusCode, functionError}``, ``responsePayload``; see
https://www.alibabacloud.com/help/en/fc/user-guide/result-callback). :meth:`DeadLetters.record` keeps
it in the output bucket at ``<OUTPUT_PREFIX>_deadletters/<YYYYMMDD>/<recorded_at_ms>-<request id>.json``::

    {"schema": "snapshot-deadletter/1", "recorded_at": "<iso>", "request_id": ..., "function": ...,
     "error": {"type": ..., "message": ...}, "attempts": n, "event": <the original event, verbatim JSON>,
     "records": [{"bucket", "key", "etag", "event_name"}]}

A payload that cannot be read is kept all the same, as text (``"raw_payload"``, with
``"parse_error"`` saying why), so nothing is lost. :meth:`DeadLetters.replay` runs each letter's
records through the submit path (its claims make a replay of a settled upload a duplicate, never a
second job); a letter whose records all settle is removed, one older than :data:`DEAD_LETTER_TTL_S`
is removed with a ``deadletter.expired`` log line.
"""
from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from .domain import Outcome, OutcomeKind
from .events import EventError, parse_oss_event, parse_oss_record
from .log import log
from .ports import ObjectStore
from .retry import Deadline

SCHEMA = "snapshot-deadletter/1"
DEAD_LETTERS_DIR = "_deadletters/"
DEAD_LETTER_TTL_S = 7 * 86400
#: A replay stops taking new letters when less than this is left of its deadline.
REPLAY_MARGIN_S = 10.0

RecordRef = tuple[str, str, str, str]  # (bucket, key, etag, event_name)


class RecordHandler(Protocol):
    """What replay needs of :class:`.submit.Submitter`: one raw OSS record through the claim protocol."""

    def handle_record(self, raw_record: Any, owner: str, *, abandoned_by: str | None = None) -> list[Outcome]: ...


@dataclass(frozen=True)
class DeadLetter:
    key: str
    recorded_at: float  # epoch seconds
    error: Mapping[str, Any]
    records: tuple[RecordRef, ...]
    event: Any  # the original event (None when the payload could not be read)
    request_id: str | None = None  # the invocation Function Compute gave up on: it owns no claim any more


@dataclass
class ReplayReport:
    replayed: int = 0  # letters whose records all settled, removed
    kept: int = 0  # letters with a record that must be retried later
    expired: int = 0  # letters older than the TTL, removed unreplayed
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = True  # False when the deadline stopped it before the last letter

    def to_dict(self) -> dict[str, Any]:
        return {"replayed": self.replayed, "kept": self.kept, "expired": self.expired, "complete": self.complete,
                "outcomes": [o.to_dict() for o in self.outcomes], "errors": self.errors}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_iso(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _json_or_text(value: Any) -> Any:
    """``requestPayload``/``responsePayload`` are strings holding JSON (or not): decoded when they are."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _record_refs(event: Any) -> list[dict[str, str]]:
    """(bucket, key, etag, event name) of each record that can be read; the event keeps them all."""
    refs = []
    for raw in parse_oss_event(event):
        try:
            record = parse_oss_record(raw)
        except EventError:
            continue
        refs.append({"bucket": record.bucket, "key": record.key, "etag": record.etag,
                     "event_name": record.event_name})
    return refs


def letter_doc(payload: Any, recorded_at: float) -> dict[str, Any]:
    """The dead-letter document for a destination payload; raises EventError naming what is unreadable."""
    doc = _json_or_text(payload)
    if not isinstance(doc, Mapping):
        raise EventError("the destination payload is not a JSON object")
    context, response = doc.get("requestContext"), doc.get("responseContext")
    if not isinstance(context, Mapping):
        raise EventError("the destination payload lacks 'requestContext'")
    if "requestPayload" not in doc:
        raise EventError("the destination payload lacks 'requestPayload'")
    event = _json_or_text(doc["requestPayload"])
    records = _record_refs(event)
    function_arn = str(context.get("functionArn") or "")
    error = _json_or_text(doc.get("responsePayload"))
    error_type = (response.get("functionError") if isinstance(response, Mapping) else None) or context.get("condition")
    message = error.get("errorMessage") if isinstance(error, Mapping) else error
    return {"schema": SCHEMA, "recorded_at": _iso(recorded_at), "request_id": context.get("requestId"),
            "function": function_arn.rpartition("functions/")[2] or None,
            "error": {"type": error_type, "message": message}, "attempts": context.get("approximateInvokeCount"),
            "event": event, "records": records}


def dead_letter_bucket(configured: str | None, payload: Any) -> str:
    """Where a payload's letter goes: ``OUTPUT_BUCKET``, else its first record's bucket. With neither,
    the payload is logged whole (so it is still not lost) and EventError says why nothing is stored."""
    if configured:
        return configured
    try:
        records = letter_doc(payload, 0)["records"]
    except EventError:
        records = []
    if records:
        return str(records[0]["bucket"])
    log("deadletter.unrecorded", reason="no OUTPUT_BUCKET and no record names a bucket",
        raw_payload=_as_text(payload))
    raise EventError("no OUTPUT_BUCKET is set and no record of the payload names a bucket")


class DeadLetters:
    """The dead letters kept under ``<output_prefix>_deadletters/`` in ``bucket``."""

    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.bucket = bucket
        self.root = f"{output_prefix}{DEAD_LETTERS_DIR}"
        self.clock = clock

    def record(self, destination_payload: Any) -> str:
        """Keep one destination payload as a dead letter; its key. An unreadable payload is kept as text."""
        now = self.clock()
        try:
            doc = letter_doc(destination_payload, now)
        except EventError as exc:
            doc = {"schema": SCHEMA, "recorded_at": _iso(now), "request_id": None, "function": None,
                   "error": {"type": None, "message": None}, "attempts": None, "event": None, "records": [],
                   "raw_payload": _as_text(destination_payload), "parse_error": str(exc)}
            log("deadletter.unreadable", reason=str(exc))
        request_id = str(doc.get("request_id") or uuid.uuid4().hex)
        key = (f"{self.root}{time.strftime('%Y%m%d', time.gmtime(now))}/"
               f"{int(now * 1000)}-{_safe_name(request_id)}.json")
        self.store.put_json(self.bucket, key, doc)
        log("deadletter.recorded", key=key, records=len(doc["records"]), error_type=doc["error"]["type"],
            attempts=doc["attempts"])
        return key

    def list(self) -> Iterator[DeadLetter]:
        for info in self.store.list(self.bucket, self.root):
            if info.key.endswith(".json"):
                letter = self._load(info.key)
                if letter is not None:
                    yield letter

    def _load(self, key: str) -> DeadLetter | None:
        doc = self.store.get_json(self.bucket, key)
        if not isinstance(doc, Mapping):
            return None
        recorded_at = _parse_iso(doc.get("recorded_at")) or _recorded_at_of_key(key)
        refs = tuple((str(r.get("bucket")), str(r.get("key")), str(r.get("etag")), str(r.get("event_name")))
                     for r in doc.get("records") or [] if isinstance(r, Mapping))
        error = doc.get("error")
        request_id = doc.get("request_id") if isinstance(doc.get("request_id"), str) else None
        return DeadLetter(key, recorded_at, error if isinstance(error, Mapping) else {}, refs, doc.get("event"),
                          request_id)

    def for_object(self, bucket: str, key: str) -> builtins.list[DeadLetter]:
        return [letter for letter in self.list() if any(r[0] == bucket and r[1] == key for r in letter.records)]

    def remove(self, letter: DeadLetter) -> None:
        self.store.delete_many(self.bucket, [letter.key])

    def replay(self, submitter: RecordHandler, owner: str, deadline: Deadline) -> ReplayReport:
        """Each letter's records through ``submitter``; settled letters and expired ones are removed."""
        report = ReplayReport()
        for letter in self.list():
            if deadline.remaining() < REPLAY_MARGIN_S:
                report.complete = False
                break
            if self.clock() - letter.recorded_at > DEAD_LETTER_TTL_S:
                self.remove(letter)
                report.expired += 1
                log("deadletter.expired", key=letter.key, recorded_at=_iso(letter.recorded_at),
                    records=[f"oss://{r[0]}/{r[1]}" for r in letter.records])
                continue
            if self._replay_letter(letter, submitter, owner, report):
                self.remove(letter)
                report.replayed += 1
            else:
                report.kept += 1
        return report

    def _replay_letter(self, letter: DeadLetter, submitter: RecordHandler, owner: str,
                       report: ReplayReport) -> bool:
        """Whether every record of ``letter`` settled (none to retry, none raised)."""
        try:
            raw_records = parse_oss_event(letter.event) if letter.event is not None else None
        except EventError:
            raw_records = None
        if raw_records is None:  # kept as it is for an operator to read, until it expires
            log("deadletter.unreplayable", key=letter.key)
            return False
        settled = True
        for raw in raw_records:
            try:
                outcomes = submitter.handle_record(raw, owner, abandoned_by=letter.request_id)
            except Exception as exc:  # retried by a later replay; the other records go on
                report.errors.append(f"{letter.key}: {type(exc).__name__}: {exc}")
                settled = False
                continue
            report.outcomes += outcomes
            settled = settled and all(outcome.outcome != OutcomeKind.RETRY for outcome in outcomes)
        log("deadletter.replayed", key=letter.key, settled=settled, records=len(raw_records))
        return settled


def _as_text(payload: Any) -> str:
    if isinstance(payload, (bytes, bytearray)):
        return payload.decode("utf-8", "replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(payload)


def _safe_name(request_id: str) -> str:
    """A request id as one key segment: no slashes or control characters, bounded length."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in request_id)[:128]


def _recorded_at_of_key(key: str) -> float:
    """``.../<recorded_at_ms>-<request id>.json`` -> its time; 0 when the name does not say."""
    millis = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(millis) / 1000 if millis.isdigit() else 0.0
