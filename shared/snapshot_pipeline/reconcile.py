"""The reconciler: nothing lost, even when ICE drops every callback.

Run on a timer (and on demand from the CLI). An **incremental** run (the timer's) costs O(new
work since the last run), whatever the history (see :mod:`.pending`):
1. every **pending marker** (an upload not settled yet): its claim says what it waits for. A
   finished job is published exactly as the callback would; a claim whose owner crashed, or whose
   transient-failure retry is due, is submitted once its lease has expired, through the same claim
   protocol (so a concurrent retry and the reconciler still make exactly one job);
2. the jobs created since the **cursor** (less an overlap): a finished job of this pipeline that no
   marker covered has its index checked (one GET) and published if stale;
3. the cursor moves to where the listing got to, so a run that ran out of time continues there;
4. the **dead letters** (events Function Compute gave up on, :mod:`.deadletters`) are replayed
   through the submit path;
5. the **webhook outbox**'s due events are sent (:mod:`.outbox`), whatever the steps before did.
A **sweep** (``run(since=T)``, ``snapshots reconcile --since``, and the first run, which has no
cursor) lists every job and every claim written in the window instead, as a repair after an
outage or an upgrade. Work stops early when the invocation's time runs low.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .claims import Claim, ClaimBusy, ClaimLost, Claims
from .deadletters import DeadLetters
from .domain import JobStatus, OutcomeKind, SnapshotJob, Upload, iso
from .index import deleted_at, indexed_source, is_tombstone, profile_result
from .log import current_request_id, log, request_context, seconds_since
from .outbox import outbox_for
from .pending import CURSOR_OVERLAP_S, Cursor, CursorStore, PendingMarkers, PendingUpload
from .ports import Ice, ObjectStore
from .publish import Published
from .retry import Deadline
from .settings import Settings
from .submit import Submitter

#: Stop starting new work when less than this is left of the invocation.
STOP_MARGIN_S = 10.0


@dataclass
class ReconcileReport:
    since: str
    until: str
    mode: str = "sweep"  # "incremental": pending markers and jobs since the cursor; "sweep": a whole window
    pending_seen: int = 0
    pending_settled: int = 0
    jobs_running: int = 0
    jobs_seen: int = 0
    jobs_finished: int = 0
    indexes_current: int = 0
    indexes_written: int = 0
    jobs_foreign: int = 0
    claims_seen: int = 0
    claims_pending: int = 0
    claims_resubmitted: int = 0
    claims_source_gone: int = 0
    dead_letters_replayed: int = 0
    dead_letters_kept: int = 0
    dead_letters_expired: int = 0
    webhooks_delivered: int = 0
    webhooks_retrying: int = 0
    webhooks_waiting: int = 0
    webhooks_failed: int = 0
    complete: bool = True
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def index_is_current(job: SnapshotJob, upload: Upload, existing: Any) -> bool:
    """Nothing to publish for ``job`` (of ``upload``, for its profile): the index shows it in its final
    state as the profile's result, or a newer version of the object (or the object's deletion after
    this version was written)."""
    if not isinstance(existing, dict):
        return False
    indexed = (profile_result(existing, upload.profile) or {}).get("job") or {}
    if indexed.get("id") == job.job_id:
        return bool(indexed.get("status") == job.status.value)
    if upload.last_modified is None:
        return False
    if is_tombstone(existing):
        return deleted_at(existing) >= upload.last_modified
    shown = indexed_source(existing)
    if shown is None or shown.last_modified is None:
        return False
    if shown.version == upload.version:  # a second job of this version: one success is the answer
        return bool(indexed.get("status") == JobStatus.SUCCESS)
    return shown.last_modified > upload.last_modified


class Reconciler:
    """One sweep of the window ``[since, now]``, bounded by ``deadline``: the invocation's (or the
    operator's) time, passed in, so the sweep stops starting work before the platform stops it."""

    def __init__(self, settings: Settings, ice: Ice, store: ObjectStore, *, deadline: Deadline,
                 lease_s: float = 60, clock: Callable[[], float] = time.time):
        self.config = settings.reconciliation()
        self.settings = settings
        self.ice = ice
        self.store = store
        self.deadline = deadline
        self.clock = clock
        self.submitter = Submitter(settings, ice, store, lease_s=lease_s, clock=clock)
        self.publisher = self.submitter.publisher
        self.owner = f"reconciler-{uuid.uuid4().hex[:12]}"

    def _time_left(self) -> bool:
        return self.deadline.remaining() > STOP_MARGIN_S

    # --- jobs ------------------------------------------------------------------------------------
    def reconcile_jobs(self, since: float, until: float, report: ReconcileReport,
                       covered: frozenset[str] = frozenset()) -> float:
        """Publish the window's finished jobs whose index is stale (those of the uploads in ``covered``
        were handled through their markers). Returns the create time up to which every job was seen."""
        token, seen_until = None, since
        while True:
            page = self.ice.list_snapshot_jobs(start_of_create_time=iso(since), end_of_create_time=iso(until),
                                               page_size=100, next_page_token=token, order_by="CreateTimeAsc")
            for job in page.jobs:
                if not self._reconcile_job(job, report, covered):
                    report.complete = False
                    return seen_until
                seen_until = max(seen_until, _epoch(job.create_time) or seen_until)
            token = page.next_page_token
            if not token:
                return until

    def _reconcile_job(self, job: SnapshotJob, report: ReconcileReport, covered: frozenset[str]) -> bool:
        """Index one listed job if it is ours, finished and not indexed as such; False when out of time."""
        report.jobs_seen += 1
        if not job.finished:
            return True
        report.jobs_finished += 1
        if not self._time_left():
            return False
        try:
            self._publish_if_stale(job, report, covered)
        except Exception as exc:  # one job's trouble must not stop the others; reported below
            report.errors.append(f"job {job.job_id}: {type(exc).__name__}: {exc}")
        return True

    def _publish_if_stale(self, job: SnapshotJob, report: ReconcileReport, covered: frozenset[str]) -> None:
        """Judge the listed job on its Input and Output first (the listing has no UserData), so a
        job whose index is current costs one GET; only a stale one is fetched whole and published."""
        upload = self.publisher.upload_of_listed(job)
        if upload is None:
            report.jobs_foreign += 1
            return
        if upload.id in covered:
            return
        location, existing = self.publisher.stable_index(upload.location)
        if index_is_current(job, upload, existing):
            report.indexes_current += 1
            shown = indexed_source(existing)
            if shown is not None and shown.version != upload.version and not is_tombstone(existing):
                self.publisher.discard(upload)  # an older version's leftovers, if its callback was lost
            return
        published = self.publisher.publish(self.ice.get_snapshot_job(job.job_id))
        if published.kind == Published.FOREIGN:
            report.jobs_foreign += 1
        elif published.kind == Published.INDEXED:
            report.indexes_written += 1
        log("reconcile.index", job_id=job.job_id, bucket=location.bucket, key=location.key,
            outcome=published.kind.value, reason=published.reason)

    # --- claims ----------------------------------------------------------------------------------
    def reconcile_claims(self, since: float, report: ReconcileReport) -> None:
        claims, owner = self._claims(), self.owner
        for claim in claims.all_latest(since):
            report.claims_seen += 1
            if claim.settled:
                continue
            report.claims_pending += 1
            if claim.live(self.clock()):
                continue  # its owner may still be working; a later run will see it
            if not self._time_left():
                report.complete = False
                return
            try:
                self._resubmit(claims, claim.upload, owner, report)
            except (ClaimBusy, ClaimLost):
                continue
            except Exception as exc:
                report.errors.append(f"claim {claim.object_key}: {type(exc).__name__}: {exc}")

    def _resubmit(self, claims: Claims, upload: Upload, owner: str, report: ReconcileReport) -> None:
        """An upload whose attempt was abandoned (a crashed owner, a due retry, a marker without a
        claim): submit it if its version is still there; if it was replaced, close its claim (the new
        version has its own); if deleted, record it."""
        current = self.publisher.version_now(upload.location)
        if current is None or not current.same_version(upload):
            self._source_gone(claims, upload, owner, current)
            report.claims_source_gone += 1
            return
        if upload.profile not in {p.name for p in self.submitter.settings.profiles}:
            self._profile_gone(claims, upload, owner)
            return
        outcome = self.submitter.submit_upload(current.for_profile(upload.profile), owner)
        if outcome.outcome in (OutcomeKind.SUBMITTED, OutcomeKind.REJECTED):
            report.claims_resubmitted += 1
        log("reconcile.claim", bucket=upload.bucket, key=upload.key, job_id=outcome.job_id,
            outcome=outcome.outcome.value, reason=outcome.reason)

    def _source_gone(self, claims: Claims, upload: Upload, owner: str, current: Upload | None) -> None:
        """The version no longer exists: close its claim instead of submitting. A replaced one's index
        belongs to the newer version (its own upload, claim and job); a deleted one's index becomes a
        tombstone, by the same forward rule as every index write."""
        fresh = claims.acquire(upload, owner)
        if fresh.settled:
            return
        if current is not None:
            claims.record_failure(fresh, "SourceReplaced", f"the object was replaced (version {current.version}) "
                                                           "before this version was processed")
        else:
            self.publisher.record_deletion(upload.location, deleted_at=self.clock(), known=upload)
            claims.record_failure(fresh, "SourceDeleted", "the uploaded object was deleted before it was processed")
        self.publisher.pending(upload.location).settle(upload)

    def _profile_gone(self, claims: Claims, upload: Upload, owner: str) -> None:
        """The upload's profile was removed from the deployment: close its claim instead of submitting."""
        fresh = claims.acquire(upload, owner)
        if not fresh.settled:
            claims.record_failure(fresh, "ProfileRemoved", f"the profile {upload.profile!r} is no longer deployed")
        self.publisher.pending(upload.location).settle(upload)
        log("reconcile.profile_removed", bucket=upload.bucket, key=upload.key, profile=upload.profile)

    # --- pending markers ---------------------------------------------------------------------------
    def reconcile_pending(self, report: ReconcileReport) -> frozenset[str]:
        """Settle what every pending marker waits for; returns the ids of the uploads looked at."""
        markers = PendingMarkers(self.store, self.config.output_bucket, self.settings.output_prefix, self.clock)
        claims = self._claims()
        seen: set[str] = set()
        for pending in markers.all():
            if not self._time_left():
                report.complete = False
                break
            seen.add(pending.upload_id)
            report.pending_seen += 1
            try:
                self._reconcile_marker(markers, claims, pending, report)
            except (ClaimBusy, ClaimLost):
                continue
            except Exception as exc:  # one upload's trouble must not stop the others; reported below
                report.errors.append(f"pending {pending.upload_id}: {type(exc).__name__}: {exc}")
        return frozenset(seen)

    def _reconcile_marker(self, markers: PendingMarkers, claims: Claims, pending: PendingUpload,
                          report: ReconcileReport) -> None:
        claim = claims.latest_by_id(pending.upload_id)
        if claim is None:
            self._unclaimed(markers, claims, pending, report)
        elif claim.job_id is not None:
            self._settle_job(markers, claim, report)
        elif claim.settled:  # refused, or its source vanished: recorded when it was closed
            markers.settle(claim.upload)
            report.pending_settled += 1
        elif not claim.live(self.clock()):
            report.claims_pending += 1
            self._resubmit(claims, claim.upload, self.owner, report)
        else:
            report.claims_pending += 1

    def _unclaimed(self, markers: PendingMarkers, claims: Claims, pending: PendingUpload,
                   report: ReconcileReport) -> None:
        """A marker without a claim: its attempt died between the two. Once it cannot be working any
        more (a lease), submit the upload as the event would have."""
        if self.clock() - pending.marked_at < claims.lease_s:
            return
        upload = markers.upload_of(pending)
        if upload is None:
            markers.settle_id(pending.upload_id)
            return
        self._resubmit(claims, upload, self.owner, report)

    def _settle_job(self, markers: PendingMarkers, claim: Claim, report: ReconcileReport) -> None:
        """The claim's job: once finished, publish it (its callback was lost, or it came and only the
        marker was left: publishing again writes the same index, and removes the marker)."""
        assert claim.job_id is not None
        job = self.ice.get_snapshot_job(claim.job_id)
        if not job.finished:
            report.jobs_running += 1
            return
        published = self.publisher.publish(job)
        report.indexes_written += published.kind == Published.INDEXED
        if published.kind == Published.FOREIGN:  # settings changed under it: nothing this pipeline will do
            markers.settle(claim.upload)
        log("reconcile.index", job_id=job.job_id, bucket=claim.upload.bucket, key=claim.upload.key,
            outcome=published.kind.value, reason=published.reason)

    # --- dead letters ------------------------------------------------------------------------------
    def replay_dead_letters(self, report: ReconcileReport) -> None:
        """Events Function Compute gave up on: through the submit path again, now that their cause
        may be gone (a letter that still fails stays for the next run)."""
        letters = DeadLetters(self.store, self.config.output_bucket, self.settings.output_prefix, self.clock)
        replay = letters.replay(self.submitter, self.owner, self.deadline)
        report.dead_letters_replayed += replay.replayed
        report.dead_letters_kept += replay.kept
        report.dead_letters_expired += replay.expired
        report.errors += replay.errors
        report.complete = report.complete and replay.complete

    # --- webhooks ---------------------------------------------------------------------------------
    def deliver_webhooks(self, report: ReconcileReport) -> None:
        """Send the outbox's due events: their writer's send failed, or the writer died before it."""
        outbox = outbox_for(self.settings, self.store, self.config.output_bucket, clock=self.clock)
        if outbox is None:  # no WEBHOOK_URL
            return
        run = outbox.deliver_due(self._time_left)
        report.webhooks_delivered += run.delivered
        report.webhooks_retrying += run.retrying
        report.webhooks_waiting += run.waiting
        report.webhooks_failed += run.failed
        report.errors += run.errors
        report.complete = report.complete and run.complete

    # --- runs ------------------------------------------------------------------------------------
    def _claims(self) -> Claims:
        return Claims(self.store, self.config.output_bucket, self.settings.output_prefix,
                      lease_s=self.submitter.lease_s, clock=self.clock)

    def _cursors(self) -> CursorStore:
        return CursorStore(self.store, self.config.output_bucket, self.settings.output_prefix)

    def run(self, since: float | None = None) -> ReconcileReport:
        """An incremental run, or (``since`` given, or no cursor yet) a sweep of ``[since, now]``."""
        with request_context(current_request_id() or f"reconcile-{uuid.uuid4().hex[:12]}"):
            now, started = self.clock(), time.monotonic()
            cursor = self._cursors().load() if since is None else None
            if cursor is not None:
                report = self._incremental(cursor, now)
            else:
                report = self._sweep(since if since is not None else now - self.config.window_s, now,
                                     save_cursor=since is None)
            if report.complete:
                self.replay_dead_letters(report)
            self.deliver_webhooks(report)
            log("reconcile", duration_s=seconds_since(started),
                **{k: v for k, v in report.to_dict().items() if k != "errors"}, errors=len(report.errors))
            return report

    def _incremental(self, cursor: Cursor, now: float) -> ReconcileReport:
        since = cursor.listed_until - CURSOR_OVERLAP_S
        report = ReconcileReport(since=iso(since), until=iso(now), mode="incremental")
        covered = self.reconcile_pending(report)
        if report.complete:
            listed_until = self.reconcile_jobs(since, now, report, covered)
            self._cursors().save(Cursor(max(cursor.listed_until, listed_until)))
        return report

    def _sweep(self, since: float, now: float, *, save_cursor: bool) -> ReconcileReport:
        report = ReconcileReport(since=iso(since), until=iso(now))
        covered = self.reconcile_pending(report)
        if report.complete:
            self.reconcile_jobs(since, now, report, covered)
        if report.complete:
            self.reconcile_claims(since, report)
        if save_cursor and report.complete:
            self._cursors().save(Cursor(now))
        return report


def _epoch(value: str | None) -> float | None:
    """ICE's ``2026-12-01T11:21:04Z`` as epoch seconds."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
