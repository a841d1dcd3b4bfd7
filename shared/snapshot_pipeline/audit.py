"""Audit: the state of every video under a prefix, for the version of it there now.

For each object the listing shows (the submit function's skip rules apply) the audit reads what the
pipeline wrote for that version: its index, its latest claim, the job the claim names, the dead
letters, and says which :class:`State` it is in (:func:`judge`). Index folders under the prefix
whose object is no longer listed are reported too: deleted (a tombstone) or orphaned (a deletion
never recorded). Objects are judged by a pool of threads, every read paced by one
:class:`RateLimiter`; the listing is streamed and only what is not indexed is kept (plus the
listed keys, to tell deleted objects from listed ones). With a :class:`Fixer`, missing and stale
videos go to the submitter exactly as a backfill's do. Used by ``snapshots audit``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from . import layout
from .backfill import GracefulInterrupt, RateLimiter
from .claims import Claim, ClaimBusy, ClaimLost, ClaimState
from .deadletters import DeadLetters
from .domain import DEFAULT_PROFILE, JobStatus, ObjectInfo, OssLocation, StrEnum, Upload, iso
from .index import indexed_source, is_tombstone, names_version, profile_result
from .outbox import DeliveryReport, Outbox, delivery_report
from .ports import Ice, IceError, ObjectStore, ObjectStoreError
from .publish import Publisher, unwatched_reason
from .retry import Deadline
from .settings import Settings
from .submit import Submitter, existing_object_event

#: Where the dead-letter function records failed events (format ``snapshot-deadletter/1``).
#: Time the replay of dead letters (``--fix``) may take.
REPLAY_BUDGET_S = 300.0


class State(StrEnum):
    """Where one video (its current version) stands."""

    INDEXED = "indexed"  # the index describes this version's successful job
    FAILED = "failed"  # the index records this version's final failure; its code says why
    PENDING = "pending"  # claimed, its job running or finished but not yet indexed, or a retry scheduled
    DEAD_LETTERED = "dead-lettered"  # its upload event ran out of retries and waits as a dead letter
    STALE = "stale"  # the index shows an older version (or its deletion); nothing is under way for this one
    MISSING = "missing"  # no index, no claim at work, no dead letter: nothing will happen by itself
    DELETED = "deleted"  # no longer listed, and its index is a tombstone
    ORPHANED = "orphaned"  # no longer listed, yet its index still shows snapshots: the deletion was lost
    ERROR = "error"  # could not be judged (ICE or OSS failed)


#: What exit code 0 requires of everything the audit finds.
SETTLED = frozenset({State.INDEXED, State.FAILED, State.DELETED})
#: What ``--fix`` acts on object by object: missing and stale videos get a claim and a job, as in a
#: backfill; orphaned indexes their deletion. Dead letters are replayed together, at the end.
FIXABLE = frozenset({State.MISSING, State.STALE, State.ORPHANED})


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str | None = None
    code: str | None = None  # a failure's error code
    job_id: str | None = None


@dataclass(frozen=True)
class DeadLetterRef:
    """One record of a dead letter: the event of one object that ran out of retries."""

    key: str  # the dead letter's object
    etag: str
    event_name: str
    error: str

    def names(self, upload: Upload) -> bool:
        """Whether this record is ``upload``'s creation (a removal, or another version's, is not)."""
        return not self.event_name.startswith("ObjectRemoved") and \
            (not self.etag or self.etag.upper() == upload.etag.upper())


def judge(upload: Upload, index: Any, claim: Callable[[], Claim | None], job_status: Callable[[str], JobStatus],
          dead_letters: Sequence[DeadLetterRef], now: float) -> Verdict:
    """The state of ``upload`` (an object's current version) from what the pipeline wrote for it: the
    object's ``index``, its latest ``claim()`` and ``job_status(job_id)`` (looked up only when the
    decision needs them: an indexed video costs its index alone), the dead letters naming the object.
    ``upload.profile`` says whose result is judged."""
    result = profile_result(index, upload.profile)
    if names_version(index, upload) and result is not None:
        return _indexed(result, claim, job_status, now)
    latest = claim()
    under_way = _under_way(latest, job_status, now)
    if under_way is not None:
        return under_way
    letters = [d for d in dead_letters if d.names(upload)]
    if letters:
        return Verdict(State.DEAD_LETTERED, f"its upload event is in dead letter {letters[-1].key} "
                                            f"({letters[-1].error})")
    shown = indexed_source(index)
    if shown is not None and names_version(index, upload):
        return Verdict(State.MISSING, f"the index shows this version without profile {upload.profile}: "
                                      + _missing_reason(latest))
    if shown is not None:
        what = "the deletion of version" if is_tombstone(index) else "version"
        return Verdict(State.STALE, f"the index shows {what} {shown.version}, not {upload.version}")
    return Verdict(State.MISSING, _missing_reason(latest))


def _indexed(result: Mapping[str, Any], claim: Callable[[], Claim | None], job_status: Callable[[str], JobStatus],
             now: float) -> Verdict:
    """The index shows the profile's result for this version: indexed, or failed unless a later attempt
    is under way."""
    job = result.get("job") or {}
    if job.get("status") == JobStatus.SUCCESS:
        return Verdict(State.INDEXED, job_id=job.get("id"))
    latest = claim()
    if latest is not None and latest.job_id != job.get("id"):  # e.g. a backfill --retry-failed
        under_way = _under_way(latest, job_status, now)
        if under_way is not None:
            return under_way
    error = job.get("error") or {}
    return Verdict(State.FAILED, error.get("message"), code=error.get("code"), job_id=job.get("id"))


def _under_way(claim: Claim | None, job_status: Callable[[str], JobStatus], now: float) -> Verdict | None:
    """Pending, if ``claim`` says something will still happen by itself (the callback, the reconciler)."""
    if claim is None:
        return None
    if claim.job_id is not None:
        status = job_status(claim.job_id)
        reason = (f"job {claim.job_id} finished ({status}); its index is not written yet (the callback or the "
                  f"reconciler writes it)") if status.finished else f"job {claim.job_id} is {status}"
        return Verdict(State.PENDING, reason, job_id=claim.job_id)
    retry = claim.doc.get("retry_of")
    if isinstance(retry, Mapping) and not claim.settled:
        return Verdict(State.PENDING, f"attempt {claim.attempt} is due at {iso(claim.expires_at)} (job "
                                      f"{retry.get('job_id')} failed with {retry.get('code')})")
    if claim.live(now):
        return Verdict(State.PENDING, f"claimed by {claim.owner} until {iso(claim.expires_at)}")
    return None


def _missing_reason(claim: Claim | None) -> str:
    if claim is None:
        return "no index, no claim: never submitted"
    if claim.state == ClaimState.FAILED:
        code = (claim.doc.get("error") or {}).get("code")
        return f"its claim records a failure ({code}) that no index shows"
    return f"its claim (by {claim.owner}) expired at {iso(claim.expires_at)} without a job: abandoned"


def read_dead_letters(store: ObjectStore, bucket: str, output_prefix: str) -> dict[tuple[str, str],
                                                                                   list[DeadLetterRef]]:
    """Every dead letter's records, by the (bucket, key) they name: one listing, one GET per letter."""
    by_object: dict[tuple[str, str], list[DeadLetterRef]] = defaultdict(list)
    for letter in DeadLetters(store, bucket, output_prefix).list():
        error = letter.error
        message = " ".join(f"{error.get('type') or 'error'}: {error.get('message') or ''}".split())
        for record_bucket, key, etag, event_name in letter.records:
            by_object[(record_bucket, key)].append(DeadLetterRef(letter.key, etag, event_name, message))
    return dict(by_object)


class Paced:
    """An adapter (ICE or OSS) whose every call first waits its turn at ``pacer`` (a listing counts once)."""

    def __init__(self, target: Any, pacer: RateLimiter):
        self._target = target
        self._pacer = pacer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def paced(*args: Any, **kwargs: Any) -> Any:
            self._pacer.acquire()
            return attribute(*args, **kwargs)

        return paced


@dataclass
class AuditReport:
    source: str
    listed: int = 0
    judged: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # state -> objects
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> objects not videos
    objects: list[dict[str, Any]] = field(default_factory=list)  # those not indexed (every one with list_all)
    fixed: list[dict[str, Any]] = field(default_factory=list)  # what --fix did: key, state, action, outcome...
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    webhooks: DeliveryReport = field(default_factory=DeliveryReport)  # the outbox's events for these sources

    @property
    def settled(self) -> bool:
        """Every video indexed or failed with a recorded reason (and the audit ran to its end)."""
        return not self.interrupted and all(state in SETTLED for state, n in self.counts.items() if n)

    @property
    def done(self) -> int:
        """Objects dealt with: judged or skipped."""
        return self.judged + sum(self.skipped.values())

    def note(self) -> str:
        """One line of progress."""
        return ", ".join(f"{state} {n}" for state, n in sorted(self.counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "listed": self.listed, "judged": self.judged,
                "summary": {str(s): self.counts.get(s, 0) for s in State}, "skipped": dict(self.skipped),
                "settled": self.settled, "interrupted": self.interrupted, "objects": self.objects,
                "fixed": self.fixed, "notes": self.notes, "webhooks": self.webhooks.to_dict()}


class Fixer:
    """Hands what an audit found to the paths that settle it: missing and stale videos to the
    submitter (claim, job, as a backfill does), orphaned indexes to the publisher's deletion rule,
    dead letters to their replay (when this version has one)."""

    def __init__(self, submitters: Callable[[], Submitter], owner: str, clock: Callable[[], float] = time.time):
        self.submitters = submitters
        self.owner = owner
        self.clock = clock

    def fix(self, bucket: str, key: str, info: ObjectInfo | None, state: State,
            profile: str = DEFAULT_PROFILE) -> dict[str, Any] | None:
        """What was done for ``profile`` of the object ``key`` found in ``state`` (one of :data:`FIXABLE`)."""
        done: dict[str, Any] = {"key": key, "state": str(state)}
        if state == State.ORPHANED:
            published = self.submitters().publisher.record_deletion(OssLocation(bucket, key),
                                                                     deleted_at=self.clock())
            return dict(done, action="recorded the deletion", outcome=str(published.kind), reason=published.reason)
        if info is None:
            return None
        submitter = self.submitters()
        upload, reason = submitter.resolve(existing_object_event(bucket, info))
        if upload is None:
            return dict(done, action="none", reason=reason)
        done["profile"] = profile
        try:
            outcome = submitter.submit_upload(upload.for_profile(profile), self.owner)
        except (ClaimBusy, ClaimLost) as exc:
            return dict(done, action="none", reason=str(exc))
        return dict(done, action="submitted", outcome=str(outcome.outcome), job_id=outcome.job_id,
                    reason=outcome.reason)

    def replay_dead_letters(self, bucket: str, output_prefix: str) -> str:
        """Replay the recorded dead letters through the claim protocol, as the reconciler does."""
        submitter = self.submitters()
        replayed = DeadLetters(submitter.store, bucket, output_prefix).replay(
            submitter, self.owner, Deadline.after(REPLAY_BUDGET_S))
        return f"dead letters replayed: {replayed.replayed}, kept: {replayed.kept}, expired: {replayed.expired}"


class Audit:
    """One audit of a prefix. ``adapters()`` gives ICE and OSS for the next object (each with a retry
    budget of its own); ``on_judged(report)`` is called after each object, e.g. to draw progress."""

    def __init__(self, settings: Settings, adapters: Callable[[], tuple[Ice, ObjectStore]], *,
                 pacer: RateLimiter, concurrency: int = 8, list_all: bool = False, fixer: Fixer | None = None,
                 on_judged: Callable[[AuditReport], None] = lambda report: None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.adapters = adapters
        self.pacer = pacer
        self.concurrency = concurrency
        self.list_all = list_all
        self.fixer = fixer
        self.on_judged = on_judged
        self.clock = clock
        self._lock = threading.Lock()

    def _paced(self) -> tuple[Ice, ObjectStore]:
        ice, store = self.adapters()
        return cast(Ice, Paced(ice, self.pacer)), cast(ObjectStore, Paced(store, self.pacer))

    def run(self, source: OssLocation) -> AuditReport:
        report = AuditReport(source.uri)
        out_bucket = layout.output_bucket(self.settings.output_bucket, source.bucket)
        letters = read_dead_letters(self._paced()[1], out_bucket, self.settings.output_prefix)
        listed: set[str] = set()
        with GracefulInterrupt() as interrupt, ThreadPoolExecutor(self.concurrency) as pool:
            window = _Window(pool, 2 * self.concurrency)
            try:
                for info in self._videos(source, listed, report, interrupt):
                    window.submit(self._one, source.bucket, info, letters, report)
                for key in self._unlisted_indexes(source, listed, interrupt):
                    window.submit(self._one_unlisted, source.bucket, key, report)
            except KeyboardInterrupt:
                report.interrupted = True
        if self.fixer is not None and report.counts[State.DEAD_LETTERED] and not report.interrupted:
            report.notes.append(self.fixer.replay_dead_letters(out_bucket, self.settings.output_prefix))
        if not report.interrupted:
            self._webhook_deliveries(report, source, out_bucket)
        report.objects.sort(key=lambda o: o["key"])
        report.fixed.sort(key=lambda o: o["key"])
        return report

    def _webhook_deliveries(self, report: AuditReport, source: OssLocation, out_bucket: str) -> None:
        """The outbox's events for the sources under ``source``; with ``--fix`` the dead ones are due again."""
        outbox = Outbox(self._paced()[1], out_bucket, self.settings.output_prefix, clock=self.clock)
        report.webhooks = delivery_report(outbox, source)
        if self.fixer is not None and report.webhooks.failed:
            report.notes.append(f"failed webhook deliveries made due again: {outbox.revive_failed(source)} "
                                "(the reconciler sends them)")

    def _videos(self, source: OssLocation, listed: set[str], report: AuditReport,
                interrupt: GracefulInterrupt) -> Iterator[ObjectInfo]:
        """The watched, non-empty videos under the prefix, as the listing streams them; the rest is
        counted by the reason the submit function would skip it."""
        s = self.settings
        for info in self._paced()[1].list(source.bucket, source.key):
            if interrupt.requested:
                report.interrupted = True
                return
            report.listed += 1
            if not info.key.startswith(s.output_prefix):
                listed.add(info.key)
            reason = unwatched_reason(info.key, s.output_prefix, s.video_suffixes) or \
                ("zero-size object" if info.size == 0 else None)
            if reason is None:
                yield info
            else:
                with self._lock:
                    report.skipped[reason] += 1

    def _unlisted_indexes(self, source: OssLocation, listed: set[str],
                          interrupt: GracefulInterrupt) -> Iterator[str]:
        """The source keys under the prefix that have an index folder but were not listed."""
        prefix = self.settings.output_prefix
        base = f"{prefix}{source.bucket}/"
        suffix = "/" + layout.INDEX_FILE
        out_bucket = layout.output_bucket(self.settings.output_bucket, source.bucket)
        for obj in self._paced()[1].list(out_bucket, base + source.key):
            if interrupt.requested:
                return
            key = obj.key[len(base):-len(suffix)] if obj.key.endswith(suffix) else None
            if key is None or key in listed or unwatched_reason(key, prefix, self.settings.video_suffixes):
                continue
            if layout.index_key(prefix, OssLocation(source.bucket, key)) == obj.key:
                yield key

    def _profiles(self, key: str) -> list[str]:
        """The profiles judged for ``key``: those that apply to it (``default`` without any configured)."""
        return [p.name for p in self.settings.profiles if p.applies_to(key)] if self.settings.profiles \
            else [DEFAULT_PROFILE]

    def _one(self, bucket: str, info: ObjectInfo, letters: Mapping[tuple[str, str], Sequence[DeadLetterRef]],
             report: AuditReport) -> None:
        """Each profile of one video, judged from one read of its index."""
        version = Upload.of_object(bucket, info)
        try:
            ice, store = self._paced()
            publisher = Publisher(self.settings, ice, store, self.clock)
            _, index = publisher.current_index(version.location)
        except Exception as exc:  # one object's trouble must not stop the audit, nor go unreported
            self._record(report, bucket, info.key, info, _error(exc), version.version)
            return
        for profile in self._profiles(info.key):
            try:
                verdict = self._judge(publisher, ice, version.for_profile(profile), index,
                                      letters.get((bucket, info.key), ()))
            except Exception as exc:
                verdict = _error(exc)
            self._record(report, bucket, info.key, info, verdict, version.version, profile)

    def _judge(self, publisher: Publisher, ice: Ice, upload: Upload, index: Any,
               letters: Sequence[DeadLetterRef]) -> Verdict:
        return judge(upload, index, cache(lambda: publisher.claims(upload.location).latest(upload)),
                     lambda job_id: ice.get_snapshot_job(job_id).status, letters, self.clock())

    def _one_unlisted(self, bucket: str, key: str, report: AuditReport) -> None:
        """An index folder whose object the listing did not show: deleted, orphaned, or (written since
        the listing passed it) nothing to report."""
        try:
            ice, store = self._paced()
            publisher = Publisher(self.settings, ice, store, self.clock)
            _, index = publisher.current_index(OssLocation(bucket, key))
            if is_tombstone(index):
                verdict = Verdict(State.DELETED, f"deleted at {index['deleted']}")
            elif indexed_source(index) is None or store.head(bucket, key) is not None:
                return
            else:
                verdict = Verdict(State.ORPHANED, "the object is gone but its index still shows snapshots: "
                                                  "its deletion was never recorded")
        except Exception as exc:
            verdict = _error(exc)
        self._record(report, bucket, key, None, verdict, None)

    def _record(self, report: AuditReport, bucket: str, key: str, info: ObjectInfo | None, verdict: Verdict,
                version: str | None, profile: str | None = None) -> None:
        """One judgement: of a video's profile (``profile``), or of an index whose video is gone."""
        fixed = self._fix(bucket, key, info, verdict, profile or DEFAULT_PROFILE)
        with self._lock:
            report.judged += 1
            report.counts[verdict.state] += 1
            if verdict.state != State.INDEXED or self.list_all:
                doc = {"key": key, "profile": profile, "state": str(verdict.state), "version": version,
                       "reason": verdict.reason, "code": verdict.code, "job_id": verdict.job_id}
                report.objects.append({k: v for k, v in doc.items() if v is not None})
            if fixed is not None:
                report.fixed.append(fixed)
            self.on_judged(report)

    def _fix(self, bucket: str, key: str, info: ObjectInfo | None, verdict: Verdict,
             profile: str) -> dict[str, Any] | None:
        if self.fixer is None or verdict.state not in FIXABLE:
            return None
        self.pacer.acquire()  # a fix is several requests of its own; it counts as one
        try:
            return self.fixer.fix(bucket, key, info, verdict.state, profile)
        except Exception as exc:
            return {"key": key, "state": str(verdict.state), "action": "failed", "reason": _error(exc).reason}


def _error(exc: Exception) -> Verdict:
    what = str(exc) if isinstance(exc, (IceError, ObjectStoreError)) else f"{type(exc).__name__}: {exc}"
    return Verdict(State.ERROR, " ".join(what.split()))


class _Window:
    """At most ``size`` tasks in flight on ``pool``: the listing is read only as fast as it is judged."""

    def __init__(self, pool: ThreadPoolExecutor, size: int):
        self.pool = pool
        self.slots = threading.BoundedSemaphore(size)

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        self.slots.acquire()
        future: Future[None] = self.pool.submit(task, *args)
        future.add_done_callback(lambda _: self.slots.release())
