"""The reconciler: nothing lost, even when ICE drops every callback.

Run on a timer (and on demand from the CLI), it
1. lists the snapshot jobs created in a recent window (ListSnapshotJobs, every page) and,
   for each finished job of this pipeline whose index is missing or stale, writes it
   exactly as the callback would;
2. finds claims of the same window that never got a job (their owner crashed and the
   platform's retries ran out) and, once their lease has expired, submits them through the
   same claim protocol, so a concurrent retry and the reconciler still make exactly one job.
   Claims are listed, but only those written in the window are read: a run costs one GET per
   recent upload, not per upload ever made. (A run every 10 minutes over 24 hours sees each
   stuck claim ~140 times; ``snapshots reconcile --since`` reaches further back.)
Work stops early when the invocation's time runs low; the next run picks up the rest.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .claims import Claim, ClaimBusy, ClaimLost, Claims
from .domain import JobStatus, OutcomeKind, SnapshotJob, Upload, iso
from .index import deleted_at, indexed_source, is_tombstone
from .log import current_request_id, log, request_context, seconds_since
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
    jobs_seen: int = 0
    jobs_finished: int = 0
    indexes_current: int = 0
    indexes_written: int = 0
    jobs_foreign: int = 0
    claims_seen: int = 0
    claims_pending: int = 0
    claims_resubmitted: int = 0
    claims_source_gone: int = 0
    complete: bool = True
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def index_is_current(job: SnapshotJob, upload: Upload, existing: Any) -> bool:
    """Nothing to publish for ``job`` (of ``upload``): the index describes it in its final state, or a
    newer version of the object (or the object's deletion after this version was written)."""
    if not isinstance(existing, dict):
        return False
    indexed = existing.get("job") or {}
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

    def _time_left(self) -> bool:
        return self.deadline.remaining() > STOP_MARGIN_S

    # --- jobs ------------------------------------------------------------------------------------
    def reconcile_jobs(self, since: float, until: float, report: ReconcileReport) -> None:
        token = None
        while True:
            page = self.ice.list_snapshot_jobs(start_of_create_time=iso(since), end_of_create_time=iso(until),
                                               page_size=100, next_page_token=token, order_by="CreateTimeAsc")
            for job in page.jobs:
                if not self._reconcile_job(job, report):
                    report.complete = False
                    return
            token = page.next_page_token
            if not token:
                return

    def _reconcile_job(self, job: SnapshotJob, report: ReconcileReport) -> bool:
        """Index one listed job if it is ours, finished and not indexed as such; False when out of time."""
        report.jobs_seen += 1
        if not job.finished:
            return True
        report.jobs_finished += 1
        if not self._time_left():
            return False
        try:
            self._publish_if_stale(job, report)
        except Exception as exc:  # one job's trouble must not stop the others; reported below
            report.errors.append(f"job {job.job_id}: {type(exc).__name__}: {exc}")
        return True

    def _publish_if_stale(self, job: SnapshotJob, report: ReconcileReport) -> None:
        """Judge the listed job on its Input and Output first (the listing has no UserData), so a
        job whose index is current costs one GET; only a stale one is fetched whole and published."""
        upload = self.publisher.upload_of_listed(job)
        if upload is None:
            report.jobs_foreign += 1
            return
        location, existing = self.publisher.current_index(upload.location)
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
        claims = Claims(self.store, self.config.output_bucket, self.settings.output_prefix,
                        lease_s=self.submitter.lease_s, clock=self.clock)
        owner = f"reconciler-{uuid.uuid4().hex[:12]}"
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
                self._resubmit(claims, claim, owner, report)
            except (ClaimBusy, ClaimLost):
                continue
            except Exception as exc:
                report.errors.append(f"claim {claim.object_key}: {type(exc).__name__}: {exc}")

    def _resubmit(self, claims: Claims, claim: Claim, owner: str, report: ReconcileReport) -> None:
        """An abandoned (or retry-scheduled) claim: submit its upload if the claimed version is still
        there; if it was replaced, close the claim (the new version has its own); if deleted, record it."""
        upload = claim.upload
        info = self.store.head(upload.bucket, upload.key)
        current = Upload.of_object(upload.bucket, info) if info is not None else None
        if current is None or not current.same_version(upload):
            self._source_gone(claims, claim, owner, current)
            report.claims_source_gone += 1
            return
        outcome = self.submitter.submit_upload(current, owner)
        if outcome.outcome in (OutcomeKind.SUBMITTED, OutcomeKind.REJECTED):
            report.claims_resubmitted += 1
        log("reconcile.claim", bucket=upload.bucket, key=upload.key, job_id=outcome.job_id,
            outcome=outcome.outcome.value, reason=outcome.reason)

    def _source_gone(self, claims: Claims, claim: Claim, owner: str, current: Upload | None) -> None:
        """The claimed version no longer exists: close its claim instead of submitting. A replaced
        one's index belongs to the newer version (its own upload, claim and job); a deleted one's
        index becomes a tombstone, by the same forward rule as every index write."""
        fresh = claims.acquire(claim.upload, owner)
        if fresh.settled:
            return
        if current is not None:
            claims.record_failure(fresh, "SourceReplaced", f"the object was replaced (version {current.version}) "
                                                           "before this version was processed")
            return
        self.publisher.record_deletion(claim.upload.location, deleted_at=self.clock())
        claims.record_failure(fresh, "SourceDeleted", "the uploaded object was deleted before it was processed")

    def run(self, since: float | None = None) -> ReconcileReport:
        with request_context(current_request_id() or f"reconcile-{uuid.uuid4().hex[:12]}"):
            now = self.clock()
            since = since if since is not None else now - self.config.window_s
            report = ReconcileReport(since=iso(since), until=iso(now))
            started = time.monotonic()
            self.reconcile_jobs(since, now, report)
            if report.complete:
                self.reconcile_claims(since, report)
            log("reconcile", duration_s=seconds_since(started),
                **{k: v for k, v in report.to_dict().items() if k != "errors"}, errors=len(report.errors))
            return report
