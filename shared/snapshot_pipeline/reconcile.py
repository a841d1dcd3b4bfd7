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
from .domain import ObjectInfo, OutcomeKind, SnapshotJob, Upload, iso
from .log import current_request_id, log, request_context, seconds_since
from .ports import Ice, ObjectStore
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


def index_is_current(job: SnapshotJob, existing: Any) -> bool:
    """The index describes this job in its final state, or a newer job of the same video."""
    if not isinstance(existing, dict):
        return False
    indexed = existing.get("job") or {}
    if indexed.get("id") == job.job_id:
        return bool(indexed.get("status") == job.status.value)
    if indexed.get("id") and indexed.get("created") and job.create_time:
        return bool(indexed["created"] > job.create_time)
    return False


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
        self.indexer = self.submitter.indexer

    def _time_left(self) -> bool:
        return self.deadline.remaining() > STOP_MARGIN_S

    # --- jobs ------------------------------------------------------------------------------------
    def _ours(self, job: SnapshotJob) -> bool:
        return bool(job.output and job.output.key.startswith(self.settings.output_prefix))

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
        if not self._ours(job):
            report.jobs_foreign += 1
            return True
        if not self._time_left():
            return False
        bucket, key = self.indexer.location(job)
        if index_is_current(job, self.store.get_json(bucket, key)):
            report.indexes_current += 1
            return True
        try:
            self.indexer.write(self.ice.get_snapshot_job(job.job_id))
        except Exception as exc:  # one job's trouble must not stop the others; reported below
            report.errors.append(f"job {job.job_id}: {type(exc).__name__}: {exc}")
            return True
        report.indexes_written += 1
        log("reconcile.index", job_id=job.job_id, bucket=bucket, key=key, outcome="written")
        return True

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
        """An abandoned claim: submit its upload if the claimed version is still there, else record that."""
        upload = claim.upload
        info = self.store.head(upload.bucket, upload.key)
        if info is None or (upload.etag and info.etag != upload.etag):
            self._source_gone(claims, claim, owner, info)
            report.claims_source_gone += 1
            return
        outcome = self.submitter.submit_upload(Upload(upload.bucket, upload.key, info.etag, info.size), owner)
        if outcome.outcome in (OutcomeKind.SUBMITTED, OutcomeKind.REJECTED):
            report.claims_resubmitted += 1
        log("reconcile.claim", bucket=upload.bucket, key=upload.key, job_id=outcome.job_id,
            outcome=outcome.outcome.value, reason=outcome.reason)

    def _source_gone(self, claims: Claims, claim: Claim, owner: str, info: ObjectInfo | None) -> None:
        """The claimed version no longer exists: record that, durably, instead of submitting.

        A deleted object's index records the failure. A replaced one's index belongs to the newer
        version (its own upload, claim and job): only this version's claim is closed, so a late sweep
        never overwrites the current index with an old version's failure.
        """
        fresh = claims.acquire(claim.upload, owner)
        if fresh.settled:
            return
        if info is not None:
            claims.record_failure(fresh, "SourceReplaced", f"the object was replaced (etag {info.etag}) "
                                                           "before this version was processed")
            return
        self.indexer.record_failure(claims, fresh, "SourceNotFound", "the uploaded object no longer exists",
                                    template_id=self.submitter.settings.template_id)

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
