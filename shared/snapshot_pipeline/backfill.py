"""Backfill: one job for every video already in a bucket, as if each had just been uploaded.

The same skip rules and the same claims as the submit function (:class:`.submit.Submitter`), so a
rerun, or the OSS trigger at the same time, never makes a second job for an upload. Submissions
are paced by a :class:`RateLimiter`; the first Ctrl-C finishes the object at hand and stops, so an
interrupted backfill is continued by running it again. Used by ``snapshots backfill``.
"""
from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from .claims import Claim, ClaimBusy, ClaimLost
from .domain import ClaimState, JobStatus, ObjectInfo, OssLocation, Outcome, OutcomeKind, Upload
from .index import indexed_source, is_tombstone
from .ports import IceError, ObjectStore, ObjectStoreError
from .submit import Submitter, existing_object_event

#: A backfill stops after this many failures in a row (the service or the credentials are broken).
MAX_CONSECUTIVE_ERRORS = 5


class RateLimiter:
    """A token bucket holding one token, refilled ``rate`` times a second: calls to :meth:`acquire`
    are spaced at least ``1/rate`` seconds apart, so no second ever sees more than ``rate``."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next: float | None = None

    def acquire(self) -> None:
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass
class BackfillReport:
    source: str
    dry_run: bool
    listed: int = 0
    examined: int = 0
    submitted: int = 0
    already_submitted: int = 0
    rejected: int = 0
    errors: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> objects
    jobs: list[dict[str, Any]] = field(default_factory=list)  # submitted: key, job_id
    would_submit: list[dict[str, Any]] = field(default_factory=list)  # dry run: key, size
    failures: list[dict[str, Any]] = field(default_factory=list)  # key, error
    interrupted: bool = False
    aborted: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.rejected or self.aborted)

    def note(self) -> str:
        """One line of progress."""
        done = "would submit" if self.dry_run else "submitted"
        count = len(self.would_submit) if self.dry_run else self.submitted
        return f"{done} {count}, skipped {sum(self.skipped.values()) + self.already_submitted}, errors {self.errors}"

    def to_dict(self) -> dict[str, Any]:
        doc = {"source": self.source, "dry_run": self.dry_run, "listed": self.listed, "examined": self.examined,
               "submitted": self.submitted, "already_submitted": self.already_submitted,
               "rejected": self.rejected, "errors": self.errors, "skipped": dict(self.skipped),
               "interrupted": self.interrupted, "aborted": self.aborted, "jobs": self.jobs,
               "failures": self.failures}
        if self.dry_run:
            doc["would_submit"] = self.would_submit
        return doc


def already_handled(upload: Upload, index: Any, claim: Claim | None, now: float, *,
                    retry_failed: bool) -> tuple[str | None, str | None]:
    """Why ``upload`` needs no new job, or None; and, with ``retry_failed``, the failed claim to
    supersede (see :meth:`.claims.Claims.acquire`).

    Handled: an index for this version (same version; an index without an etag, or without a
    version but with this etag, counts; a tombstone does not: the object was written again), unless
    ``retry_failed`` and the failure it records is the latest claim's; a settled claim (it has a job,
    or ICE refused it); a live claim. Not handled: no claim, or an expired one without a job (its
    owner crashed: :meth:`.submit.Submitter.submit_upload` takes over).
    """
    shown = indexed_source(index)
    if shown is not None and not is_tombstone(index) and (not shown.etag or shown.same_version(upload)):
        if retry_failed and claim is not None and _records_latest_failure(index, claim):
            return None, claim.object_key
        return "already indexed", None
    if claim is None:
        return None, None
    if claim.settled:
        return ("refused by ICE earlier (see its index)" if claim.state == ClaimState.FAILED and not claim.job_id
                else "already submitted (claim has a job)"), None
    if claim.live(now):
        return "claimed by another attempt", None
    return None, None


def _records_latest_failure(index: Mapping[str, Any], claim: Claim) -> bool:
    """The index records a failure, and it is the latest claim's: its failed job, or ICE's refusal."""
    job = index.get("job") or {}
    if job.get("status") != JobStatus.FAIL:
        return False
    if claim.job_id:
        return bool(claim.job_id == job.get("id"))
    return claim.state == ClaimState.FAILED and job.get("id") is None


class RefusalStreak:
    """ICE refusing object after object for the same reason (a missing template, an unregistered
    bucket) is a configuration problem, not a property of each video: after
    :data:`MAX_CONSECUTIVE_ERRORS` refusals in a row with one code the backfill stops, rather than
    record a failure for every video under the prefix."""

    def __init__(self) -> None:
        self.code: str | None = None
        self.count = 0

    def add(self, outcome: Outcome | None) -> str | None:
        """Count one object's outcome; the reason to stop, once the streak is long enough."""
        if outcome is None or outcome.outcome != OutcomeKind.REJECTED:
            self.code, self.count = None, 0
            return None
        code = (outcome.reason or "").split(":", 1)[0]
        self.count = self.count + 1 if code == self.code else 1
        self.code = code
        if self.count < MAX_CONSECUTIVE_ERRORS:
            return None
        return (f"ICE refused {self.count} objects in a row with {code}: the rest were not submitted "
                f"(fix the cause, then run again; the last: {outcome.reason})")


class GracefulInterrupt:
    """First Ctrl-C: :attr:`requested` turns true, so the loop finishes the object at hand (never
    leaving a job unrecorded) and stops. Second Ctrl-C: KeyboardInterrupt, at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulInterrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        except ValueError:  # not the main thread: Ctrl-C cannot reach us anyway
            pass
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _ignore(report: BackfillReport, outcome: Outcome | None) -> None:
    pass


class Backfill:
    """Submit every video under a prefix that has neither an index nor a claim.

    ``submitters()`` gives the Submitter for the next object, with a retry budget of its own (a long
    backfill is many operations); ``store`` lists the prefix. ``on_examined(report, outcome)`` is
    called after each object (outcome None when nothing was submitted), e.g. to draw progress.
    """

    def __init__(self, submitters: Callable[[], Submitter], store: ObjectStore, limiter: RateLimiter, *,
                 owner: str, on_examined: Callable[[BackfillReport, Outcome | None], None] = _ignore,
                 retry_failed: bool = False):
        self.submitters = submitters
        self.store = store
        self.limiter = limiter
        self.owner = owner
        self.on_examined = on_examined
        self.retry_failed = retry_failed

    def run(self, source: OssLocation, *, dry_run: bool) -> BackfillReport:
        report = BackfillReport(source.uri, dry_run)
        objects: list[ObjectInfo] = list(self.store.list(source.bucket, source.key))
        report.listed = len(objects)
        with GracefulInterrupt() as interrupt:
            try:
                self._each(source.bucket, objects, report, interrupt, dry_run)
            except KeyboardInterrupt:
                report.interrupted = True
        return report

    def _each(self, bucket: str, objects: list[ObjectInfo], report: BackfillReport, interrupt: GracefulInterrupt,
              dry_run: bool) -> None:
        consecutive_errors = 0
        refusals = RefusalStreak()
        for info in objects:
            if interrupt.requested:
                report.interrupted = True
                return
            outcome = None
            try:
                outcome = self._one(self.submitters(), bucket, info, report, dry_run)
            except (IceError, ObjectStoreError, ClaimLost) as exc:
                report.errors += 1
                report.failures.append({"key": info.key, "error": _one_line(exc)})
                consecutive_errors += 1
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                    report.aborted = f"{consecutive_errors} failures in a row, the last: {_one_line(exc)}"
                    return
            else:
                consecutive_errors = 0
                report.aborted = refusals.add(outcome)
            report.examined += 1
            self.on_examined(report, outcome)
            if report.aborted:
                return

    def _already_handled(self, submitter: Submitter, upload: Upload) -> tuple[str | None, str | None]:
        _, index = submitter.publisher.current_index(upload.location)
        claim = submitter.claims(upload).latest(upload)
        return already_handled(upload, index, claim, submitter.clock(), retry_failed=self.retry_failed)

    def _one(self, submitter: Submitter, bucket: str, info: ObjectInfo, report: BackfillReport,
             dry_run: bool) -> Outcome | None:
        event = existing_object_event(bucket, info)
        reason, supersede = submitter.skip_reason(event), None
        if reason is None:
            reason, supersede = self._already_handled(submitter, Upload.of_object(bucket, info))
        if reason is not None:
            report.skipped[reason] += 1
            return None
        if dry_run:
            report.would_submit.append({"key": info.key, "size": info.size})
            return None
        upload, reason = submitter.resolve(event)
        if upload is None:
            report.skipped[reason or "not found"] += 1
            return None
        self.limiter.acquire()
        try:
            outcome = submitter.submit_upload(upload, self.owner, supersede=supersede)
        except ClaimBusy:
            report.skipped["claimed by another attempt"] += 1
            return None
        _count(report, upload, outcome)
        return outcome


def _count(report: BackfillReport, upload: Upload, outcome: Outcome) -> None:
    if outcome.outcome == OutcomeKind.SUBMITTED:
        report.submitted += 1
        report.jobs.append({"key": upload.key, "job_id": outcome.job_id})
    elif outcome.outcome == OutcomeKind.DUPLICATE:
        report.already_submitted += 1
    else:
        report.rejected += 1
        report.failures.append({"key": upload.key, "error": outcome.reason})
