"""Backfill: one job for every video already in a bucket, as if each had just been uploaded.

The same skip rules and the same claims as the submit function (:class:`.submit.Submitter`), so a
rerun, or the OSS trigger at the same time, never makes a second job for an upload. The listing is
streamed to a bounded pool of worker threads (the per-object checks are a few requests each: run
one after the other, their latency, not ``--rate``, would bound the pace); submissions are paced by
one shared :class:`RateLimiter`. The first Ctrl-C finishes the objects in hand and stops; a
:class:`.checkpoint.Checkpoint` beside the claims lets the rerun start after what is settled.
Used by ``snapshots backfill``.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from .checkpoint import Checkpoint, SettledFrontier
from .claims import Claim, ClaimBusy, ClaimLost
from .domain import ClaimState, JobStatus, ObjectInfo, OssLocation, Outcome, OutcomeKind, Upload
from .index import names_version, profile_result
from .ports import IceError, ObjectStore, ObjectStoreError
from .submit import Submitter, existing_object_event

#: A backfill stops after this many failures in a row (the service or the credentials are broken).
MAX_CONSECUTIVE_ERRORS = 5
#: Objects examined at once by default (the checks and submissions of each are a few requests).
DEFAULT_CONCURRENCY = 8
#: The checkpoint is written each time this many more objects are settled (and when the run ends).
CHECKPOINT_EVERY = 500
#: How often (seconds) the dispatching thread wakes to look for a Ctrl-C while objects are in hand.
POLL_S = 0.5


class RateLimiter:
    """At most ``rate`` calls to :meth:`acquire` a second, whatever the number of threads: each caller
    reserves the next free slot (``1/rate`` apart) under a lock, then sleeps until it outside the lock,
    so no second ever sees more than ``rate``. Shared by the backfill's workers and the audit's."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


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
    resumed_after: str | None = None  # the checkpoint this run listed after

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
               "interrupted": self.interrupted, "aborted": self.aborted, "resumed_after": self.resumed_after,
               "jobs": self.jobs,
               "failures": self.failures}
        if self.dry_run:
            doc["would_submit"] = self.would_submit
        return doc


def already_handled(upload: Upload, index: Any, claim: Claim | None, now: float, *,
                    retry_failed: bool) -> tuple[str | None, str | None]:
    """Why ``upload`` needs no new job, or None; and, with ``retry_failed``, the failed claim to
    supersede (see :meth:`.claims.Claims.acquire`).

    Handled: an index for this version showing ``upload.profile``'s result (same version; an index
    without an etag, or without a version but with this etag, counts; a tombstone does not: the object
    was written again), unless
    ``retry_failed`` and the failure it records is the latest claim's; a settled claim (it has a job,
    or ICE refused it); a live claim. Not handled: no claim, or an expired one without a job (its
    owner crashed: :meth:`.submit.Submitter.submit_upload` takes over).
    """
    result = profile_result(index, upload.profile)
    if result is not None and names_version(index, upload):
        if retry_failed and claim is not None and _records_latest_failure(result, claim):
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


def _records_latest_failure(result: Mapping[str, Any], claim: Claim) -> bool:
    """The profile's result records a failure, and it is the latest claim's: its failed job, or ICE's refusal."""
    job = result.get("job") or {}
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


class SubmissionGate:
    """Lets at most as many submissions be in flight as refusals could still come before the
    :class:`RefusalStreak` stops the backfill, so with any concurrency a prefix ICE refuses whole
    gets exactly :data:`MAX_CONSECUTIVE_ERRORS` refusals and the rest is not submitted."""

    def __init__(self) -> None:
        self._streak = RefusalStreak()
        self._in_flight = 0
        self._changed = threading.Condition()
        self.aborted: str | None = None

    def enter(self) -> bool:
        """Wait for room to submit; False once the backfill stopped (submit nothing)."""
        with self._changed:
            self._changed.wait_for(lambda: self.aborted is not None
                                   or self._in_flight < MAX_CONSECUTIVE_ERRORS - self._streak.count)
            if self.aborted is not None:
                return False
            self._in_flight += 1
            return True

    def leave(self, outcome: Outcome | None, *, failed: bool = False) -> None:
        """One submission done: its ``outcome`` (None: none, e.g. a claim busy), or ``failed`` with an
        error, which neither lengthens nor ends a streak of refusals."""
        with self._changed:
            self._in_flight -= 1
            if not failed:
                self.aborted = self.aborted or self._streak.add(outcome)
            self._changed.notify_all()

    def stop(self, reason: str) -> None:
        """Submit nothing more (the backfill stopped for ``reason``)."""
        with self._changed:
            self.aborted = self.aborted or reason
            self._changed.notify_all()


class GracefulInterrupt:
    """First Ctrl-C: :attr:`requested` turns true, so the loop finishes the objects in hand (never
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


#: Skip reasons that may change without anything of ours happening (another attempt's live claim):
#: an object skipped for one of them is examined again by the next run.
_UNSETTLED_SKIPS = frozenset({"claimed by another attempt"})


@dataclass(frozen=True)
class Examined:
    """What a worker found for one object: a skip reason, a dry run's plan, a submission's outcome,
    or the error that stopped it. ``stopped``: the backfill stopped before it was submitted."""

    info: ObjectInfo
    profile: str | None = None
    skipped: str | None = None
    would_submit: bool = False
    upload: Upload | None = None
    outcome: Outcome | None = None
    error: Exception | None = None
    stopped: bool = False

    @property
    def settled(self) -> bool:
        """Nothing is left to do for this object: a rerun need not examine it again."""
        if self.error is not None or self.stopped or self.would_submit:
            return False
        if self.outcome is not None:
            return self.outcome.outcome != OutcomeKind.RETRY
        return self.skipped not in _UNSETTLED_SKIPS


class Backfill:
    """Submit every video under a prefix that has neither an index nor a claim.

    ``submitters()`` gives the Submitter for the next object, with a retry budget of its own (a long
    backfill is many operations); ``store`` lists the prefix. ``on_examined(report, outcome)`` is
    called after each object (outcome None when nothing was submitted), e.g. to draw progress, in
    the thread that called :meth:`run`. ``concurrency`` objects are in hand at most; ``checkpoint``
    (none for a dry run) records how far the listing is settled, for a rerun to start after it.
    """

    def __init__(self, submitters: Callable[[], Submitter], store: ObjectStore, limiter: RateLimiter, *,
                 owner: str, on_examined: Callable[[BackfillReport, Outcome | None], None] = _ignore,
                 retry_failed: bool = False, concurrency: int = DEFAULT_CONCURRENCY,
                 checkpoint: Checkpoint | None = None):
        self.submitters = submitters
        self.store = store
        self.limiter = limiter
        self.owner = owner
        self.on_examined = on_examined
        self.retry_failed = retry_failed
        self.concurrency = concurrency
        self.checkpoint = checkpoint

    def run(self, source: OssLocation, *, dry_run: bool, restart: bool = False) -> BackfillReport:
        """Examine every object under ``source`` (after the checkpoint, unless ``restart``)."""
        report = BackfillReport(source.uri, dry_run)
        checkpoint = None if dry_run else self.checkpoint
        if checkpoint is not None and not restart:
            report.resumed_after = checkpoint.load()
        objects = self.store.list(source.bucket, source.key, start_after=report.resumed_after or "")
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="backfill")
        run = _Run(self, source.bucket, report, checkpoint, dry_run)
        with GracefulInterrupt() as interrupt:
            try:
                run.each(pool, objects, interrupt)
            except KeyboardInterrupt:
                report.interrupted = True
                run.keep_checkpoint(final=True)  # what is settled so far; the objects in hand are not
            finally:
                pool.shutdown(wait=not report.interrupted, cancel_futures=True)
        return report

    def examine(self, bucket: str, info: ObjectInfo, gate: SubmissionGate, dry_run: bool) -> list[Examined]:
        """One object, in a worker thread: the skip rules, then (unless a dry run) its submission, for
        each profile that applies to it (the submitter's: one, with ``--profile``)."""
        submitter = self.submitters()
        event = existing_object_event(bucket, info)
        reason = submitter.skip_reason(event)
        profiles = submitter.profiles_for(info.key) if reason is None else ()
        if reason is not None or not profiles:
            return [Examined(info, skipped=reason or "no profile applies to this key")]
        try:
            _, index = submitter.publisher.current_index(OssLocation(bucket, info.key))  # one read for every profile
        except ObjectStoreError as exc:
            return [Examined(info, error=exc)]
        examined = []
        for profile in profiles:
            try:
                examined.append(self._examine(submitter, bucket, info, profile.name, index, gate, dry_run))
            except (IceError, ObjectStoreError, ClaimLost) as exc:
                examined.append(Examined(info, profile.name, error=exc))
        return examined

    def _already_handled(self, submitter: Submitter, upload: Upload, index: Any) -> tuple[str | None, str | None]:
        claim = submitter.claims(upload).latest(upload)
        return already_handled(upload, index, claim, submitter.clock(), retry_failed=self.retry_failed)

    def _examine(self, submitter: Submitter, bucket: str, info: ObjectInfo, profile: str, index: Any,
                 gate: SubmissionGate, dry_run: bool) -> Examined:
        """One profile of one object (the skip rules passed; ``index``: the object's): already handled, or
        submitted now."""
        listed = Upload.of_object(bucket, info).for_profile(profile)
        reason, supersede = self._already_handled(submitter, listed, index)
        if reason is not None:
            return Examined(info, profile, skipped=reason)
        if dry_run:
            return Examined(info, profile, would_submit=True)
        upload, reason = submitter.resolve(existing_object_event(bucket, info))
        if upload is None:
            return Examined(info, profile, skipped=reason or "not found")
        if not gate.enter():
            return Examined(info, profile, stopped=True)
        try:
            self.limiter.acquire()
            outcome = submitter.submit_upload(upload.for_profile(profile), self.owner, supersede=supersede)
        except ClaimBusy:
            gate.leave(None)
            return Examined(info, profile, skipped="claimed by another attempt")
        except BaseException:
            gate.leave(None, failed=True)
            raise
        gate.leave(outcome)
        return Examined(info, profile, upload=upload, outcome=outcome)


class _Run:
    """One run of a :class:`Backfill`: hands listed objects to the pool, at most ``concurrency`` in
    hand, and folds what the workers found into the report, in this (the calling) thread."""

    def __init__(self, backfill: Backfill, bucket: str, report: BackfillReport, checkpoint: Checkpoint | None,
                 dry_run: bool):
        self.backfill = backfill
        self.bucket = bucket
        self.report = report
        self.checkpoint = checkpoint
        self.dry_run = dry_run
        self.gate = SubmissionGate()
        self.frontier = SettledFrontier()
        self.saved_through = report.resumed_after
        self.examined_at_save = 0
        self.listed_all = False
        self.consecutive_errors = 0

    def each(self, pool: ThreadPoolExecutor, objects: Iterator[ObjectInfo], interrupt: GracefulInterrupt) -> None:
        in_hand: set[Future[list[Examined]]] = set()
        while True:
            stopping = interrupt.requested or self.report.aborted is not None
            while not stopping and not self.listed_all and len(in_hand) < self.backfill.concurrency:
                info = next(objects, None)
                if info is None:
                    self.listed_all = True
                    break
                self.report.listed += 1
                self.frontier.start(info.key)
                in_hand.add(pool.submit(self.backfill.examine, self.bucket, info, self.gate, self.dry_run))
            if not in_hand:
                break
            done, in_hand = wait(in_hand, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                self._fold_object(future.result())
            self.keep_checkpoint(final=False)
        self.report.interrupted = self.report.interrupted or interrupt.requested
        self.keep_checkpoint(final=True)

    def _fold_object(self, examined: list[Examined]) -> None:
        """What the workers found for one object: settled once every profile of it is."""
        self.frontier.finish(examined[0].info.key, settled=all(e.settled for e in examined))
        for each in examined:
            self._fold(each)

    def _fold(self, examined: Examined) -> None:
        report = self.report
        if examined.stopped:
            return
        if examined.error is not None:
            report.errors += 1
            report.failures.append({"key": examined.info.key, "error": _one_line(examined.error)})
            self.consecutive_errors += 1
            if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS and not report.aborted:
                report.aborted = f"{self.consecutive_errors} failures in a row, the last: {_one_line(examined.error)}"
                self.gate.stop(report.aborted)
        else:
            self.consecutive_errors = 0
            _count(report, examined)
            report.aborted = report.aborted or self.gate.aborted
        report.examined += 1
        self.backfill.on_examined(report, examined.outcome)

    def keep_checkpoint(self, *, final: bool) -> None:
        """Save the settled frontier each :data:`CHECKPOINT_EVERY` objects and when the run ends;
        clear the checkpoint once the whole listing is settled (a later backfill checks it all)."""
        if self.checkpoint is None:
            return
        if final and self.listed_all and not self.frontier.blocked and not self.report.interrupted:
            if self.saved_through is not None:
                self.checkpoint.clear()
            return
        through = self.frontier.through
        due = final or self.report.examined - self.examined_at_save >= CHECKPOINT_EVERY
        if due and through is not None and through != self.saved_through:
            self.checkpoint.save(through)
            self.saved_through, self.examined_at_save = through, self.report.examined


def _count(report: BackfillReport, examined: Examined) -> None:
    outcome, upload = examined.outcome, examined.upload
    if examined.skipped is not None:
        report.skipped[examined.skipped] += 1
    elif examined.would_submit:
        report.would_submit.append({"key": examined.info.key, "size": examined.info.size})
    elif outcome is None or upload is None:
        return
    elif outcome.outcome == OutcomeKind.SUBMITTED:
        report.submitted += 1
        report.jobs.append({"key": upload.key, "profile": examined.profile, "job_id": outcome.job_id})
    elif outcome.outcome == OutcomeKind.DUPLICATE:
        report.already_submitted += 1
    else:
        report.rejected += 1
        report.failures.append({"key": upload.key, "error": outcome.reason})
