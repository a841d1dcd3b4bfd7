"""Submit: each uploaded video becomes exactly one ICE snapshot job per profile that applies to it.

Per record: skip what is not a whole, new video (with a log line saying why); confirm the
object with HEAD (its etag and size, its metadata, and the key's encoding); then for each profile
(:mod:`.profiles`) claim the (version, profile) (:mod:`.claims`), submit, record the JobId in the claim.
A job ICE refuses (bad template, bucket not registered...) gets a failure result in the index at
once: nothing is lost silently. Throttling, 5xx and network errors are retried within the
invocation's time; when that is spent, or another attempt holds the claim, the handler raises so
Function Compute retries it.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, unquote_plus

from . import layout
from .claims import CLOCK_SKEW_S, Claim, ClaimLost, Claims, job_name
from .domain import ObjectInfo, OssLocation, Outcome, OutcomeKind, Upload, iso
from .events import EventError, ObjectEvent, parse_oss_event, parse_oss_record
from .log import current_request_id, log, seconds_since
from .ports import Ice, IceError, ObjectStore
from .profiles import Profile, poster_time_ms
from .publish import Published, Publisher, unwatched_reason
from .settings import Settings, profile_named

USER_DATA_MAX_BYTES = 512


class RetryLater(RuntimeError):
    """Some records could not be settled now; raised after all records were handled so that
    Function Compute retries the invocation (settled records are then skipped as duplicates)."""


def existing_object_event(bucket: str, info: ObjectInfo) -> ObjectEvent:
    """An object that already exists (found by listing or HEAD), as the OSS trigger announces a new
    one: the operator CLI runs it through the same skip rules and :meth:`Submitter.resolve`."""
    return ObjectEvent("ObjectCreated:Existing", bucket, info.key, info.etag, info.size, None, None)


class Submitter:
    """Turns uploads into jobs under the claim protocol, one per (version, profile). Needs a template:
    building one without profiles (``SNAPSHOT_PROFILES`` or ``SNAPSHOT_TEMPLATE_ID``) raises
    SettingsError before anything is claimed."""

    def __init__(self, settings: Settings, ice: Ice, store: ObjectStore, *, lease_s: float = 60,
                 clock: Callable[[], float] = time.time):
        self.settings = settings.submission()
        self.ice = ice
        self.store = store
        self.lease_s = lease_s
        self.clock = clock
        self.publisher = Publisher(settings, ice, store, clock)

    # --- naming ---------------------------------------------------------------------------------
    def output_bucket(self, upload: Upload) -> str:
        return layout.output_bucket(self.settings.output_bucket, upload.bucket)

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; SettingsError when the deployment has none of that name."""
        return profile_named(self.settings.profiles, name)

    def profiles_for(self, key: str) -> tuple[Profile, ...]:
        """The profiles whose prefix and suffix rules take uploads at ``key``."""
        return tuple(p for p in self.settings.profiles if p.applies_to(key))

    def output(self, upload: Upload) -> OssLocation:
        """Where the job of ``upload`` (its version, for its profile) writes the snapshots."""
        kind = self.profile(upload.profile).type
        return layout.output_location(self.output_bucket(upload), self.settings.output_prefix, kind, upload)

    def claims(self, upload: Upload) -> Claims:
        return Claims(self.store, self.output_bucket(upload), self.settings.output_prefix,
                      lease_s=self.lease_s, clock=self.clock)

    def user_data(self, upload: Upload) -> str:
        """UserData echoed back by GetSnapshotJob: where the video came from, and where to call back.

        ICE limits UserData to 512 bytes (documented for other job types; assumed here). A key too
        long for that is left out: the job's Input names it too.
        """
        doc: dict[str, Any] = {"source": upload.to_doc()}
        if self.settings.callback_url:
            doc["NotifyAddress"] = self.settings.callback_url
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode("utf-8")) > USER_DATA_MAX_BYTES:
            doc["source"] = {key: value for key, value in upload.to_doc().items()
                             if key in ("etag", "version", "profile")}
            text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return text

    # --- filtering ------------------------------------------------------------------------------
    def skip_reason(self, event: ObjectEvent) -> str | None:
        if not (event.is_object_created or event.is_object_removed):
            return f"event {event.event_name} neither creates nor removes an object"
        unwatched = unwatched_reason(event.key, self.settings.output_prefix, self.settings.video_suffixes)
        if unwatched:
            return unwatched
        if event.is_object_created and event.size == 0:
            return "zero-size object"
        return None

    def resolve(self, event: ObjectEvent) -> tuple[Upload | None, str | None]:
        """HEAD the object: it must exist, be the version the event names, and not be empty.

        The key is used as OSS sent it; only when no such object exists and the key looks
        URL-encoded is the decoded key tried (see README, "Object keys in events").
        """
        key, info = event.key, self.store.head(event.bucket, event.key)
        if info is None and ("%" in key or "+" in key):
            for candidate in dict.fromkeys((unquote(key), unquote_plus(key))):
                if candidate != key:
                    info = self.store.head(event.bucket, candidate)
                    if info is not None:
                        key = candidate
                        break
        if info is None:
            return None, "object no longer exists"
        if event.etag and info.etag != event.etag:
            return None, f"superseded: the object's etag is now {info.etag}, not {event.etag}"
        if info.size == 0:
            return None, "zero-size object"
        return Upload.of_object(event.bucket, replace(info, key=key)), None

    # --- submitting -----------------------------------------------------------------------------
    def submit_version(self, upload: Upload, owner: str, *, abandoned_by: str | None = None) -> list[Outcome]:
        """One job for each profile that applies to the key, for this version. Every profile is tried;
        then the first error, if any, is raised (the settled ones are duplicates when the platform retries)."""
        chosen = self.profiles_for(upload.key)
        if not chosen:
            return [Outcome(upload.bucket, upload.key, OutcomeKind.SKIPPED, reason="no profile applies to this key")]
        outcomes, errors = [], []
        for profile in chosen:
            try:
                outcomes.append(self.submit_upload(upload.for_profile(profile.name), owner, abandoned_by=abandoned_by))
            except Exception as exc:  # the other profiles first
                errors.append(exc)
        if errors:
            raise errors[0]
        return outcomes

    def submit_upload(self, upload: Upload, owner: str, *, supersede: str | None = None,
                      abandoned_by: str | None = None) -> Outcome:
        """Claim and submit one upload (a version, for ``upload.profile``). Raises ClaimBusy / retryable
        errors for a later retry. ``supersede``: the key of a failed claim an operator retries (see
        Claims.acquire)."""
        claims = self.claims(upload)
        claim = claims.acquire(upload, owner, supersede=supersede, abandoned_by=abandoned_by)
        if claim.settled:
            return Outcome(upload.bucket, upload.key, OutcomeKind.DUPLICATE, claim.job_id,
                           reason=f"already {claim.state} by an earlier delivery", profile=upload.profile)
        if not claims.usable(claim):
            raise ClaimLost("not enough of the claim's lease is left to submit safely")
        if claim.resumed or claim.generation > 1:  # an earlier attempt may have created the job
            adopted = self.find_submitted_job(upload, claim)
            if adopted is not None:
                claims.record_job(claim, adopted)
                return Outcome(upload.bucket, upload.key, OutcomeKind.SUBMITTED, adopted,
                               reason="adopted the job an earlier attempt created", profile=upload.profile)
        try:
            job_id = self._submit(upload, claim)
        except IceError as exc:
            if not exc.rejects_job:
                raise
            # ICE refused the job itself: record the failure durably, in the index and the claim.
            self.publisher.record_failure(claims, claim, exc.code, exc.message,
                                          template_id=self.profile(upload.profile).template_id)
            return Outcome(upload.bucket, upload.key, OutcomeKind.REJECTED, reason=str(exc), profile=upload.profile)
        claims.record_job(claim, job_id)
        return Outcome(upload.bucket, upload.key, OutcomeKind.SUBMITTED, job_id, profile=upload.profile)

    def _submit(self, upload: Upload, claim: Claim) -> str:
        """SubmitSnapshotJob. When its answer is lost (a timeout, a dropped connection, a 5xx) the job
        may exist anyway: it is looked for before the error goes to the platform's retry."""
        profile = self.profile(upload.profile)
        assert profile.template_id is not None  # settings.submission() requires every profile's
        try:
            return self.ice.submit_snapshot_job(
                input=upload.location, output=self.output(upload), template_id=profile.template_id,
                overwrite_params=profile.overwrite_params(self._poster_time(upload, profile)),
                user_data=self.user_data(upload), name=job_name(upload, claim.attempt),
                pipeline_id=self.settings.pipeline_id)
        except IceError as exc:
            if not exc.retryable:
                raise
            adopted = self.find_submitted_job(upload, claim)
            if adopted is None:
                raise
            log("submit.adopted", job_id=adopted, reason=f"SubmitSnapshotJob's answer was lost: {exc.code}")
            return adopted

    def _poster_time(self, upload: Upload, profile: Profile) -> int | None:
        """The uploader's poster time (``x-oss-meta-poster-time``) for a profile that takes it; a value
        that is not a time is logged and ignored."""
        if not profile.takes_poster_time:
            return None
        milliseconds, problem = poster_time_ms(upload.metadata)
        if problem:
            log("submit.poster_time_ignored", bucket=upload.bucket, key=upload.key, profile=profile.name,
                reason=problem)
        return milliseconds

    def find_submitted_job(self, upload: Upload, claim: Claim) -> str | None:
        """The job an earlier attempt under this claim's attempt number created, if any: ICE has no
        client token, but the job's Name is deterministic and its Input names the upload. Jobs are
        listed from the upload's first claim (less the clock skew) to now."""
        name, start = job_name(upload, claim.attempt), claim.first_claimed_at - CLOCK_SKEW_S
        token = None
        while True:
            page = self.ice.list_snapshot_jobs(start_of_create_time=iso(start),
                                               end_of_create_time=iso(self.clock() + CLOCK_SKEW_S),
                                               page_size=100, next_page_token=token, order_by="CreateTimeAsc")
            for job in page.jobs:
                if job.name == name and job.input == upload.location:
                    return job.job_id
            token = page.next_page_token
            if not token:
                return None

    def record_removal(self, event: ObjectEvent) -> Outcome:
        """A watched object was deleted: its index becomes a tombstone and its outputs go. The key is
        used as OSS sent it, unless only a URL-decoded form of it has an index (as in :meth:`resolve`)."""
        source = OssLocation(event.bucket, event.key)
        if "%" in event.key or "+" in event.key:
            for candidate in dict.fromkeys((event.key, unquote(event.key), unquote_plus(event.key))):
                if self.publisher.current_index(OssLocation(event.bucket, candidate))[1] is not None:
                    source = OssLocation(event.bucket, candidate)
                    break
        published = self.publisher.record_deletion(source, deleted_at=event.event_time or self.clock())
        kind = OutcomeKind.DELETED if published.kind == Published.DELETED else OutcomeKind.SKIPPED
        return Outcome(event.bucket, event.key, kind, reason=published.reason)

    def handle_record(self, raw_record: Any, owner: str, *, abandoned_by: str | None = None) -> list[Outcome]:
        """One OSS record: an outcome per profile (one for a skip or a deletion). ``abandoned_by``: an
        invocation known to be over (a dead letter's), whose claims may be taken over at once, lease or not."""
        try:
            event = parse_oss_record(raw_record)
        except EventError as exc:
            return [Outcome(None, None, OutcomeKind.INVALID, reason=str(exc))]
        reason = self.skip_reason(event)
        if reason:
            return [Outcome(event.bucket, event.key, OutcomeKind.SKIPPED, reason=reason)]
        if event.is_object_removed:
            return [self.record_removal(event)]
        upload, reason = self.resolve(event)
        if upload is None:
            return [Outcome(event.bucket, event.key, OutcomeKind.SKIPPED, reason=reason)]
        return self.submit_version(upload, owner, abandoned_by=abandoned_by)

    def handle_event(self, raw: Any, request_id: str | None = None) -> list[Outcome]:
        """Handle every record of an OSS event; raise RetryLater at the end if any must be retried.
        The claims' owner is the invocation's request id (so its own claim is recognised on a retry)."""
        owner = request_id or current_request_id() or uuid.uuid4().hex
        outcomes: list[Outcome] = []
        retry_errors: list[Exception] = []
        for raw_record in parse_oss_event(raw):
            started = time.monotonic()
            try:
                record_outcomes = self.handle_record(raw_record, owner)
            except Exception as exc:  # settle the other records first; raised below for the platform
                retry_errors.append(exc)
                bucket, key = _where(raw_record)
                record_outcomes = [Outcome(bucket, key, OutcomeKind.RETRY, reason=f"{type(exc).__name__}: {exc}")]
            for outcome in record_outcomes:
                log("submit.record", duration_s=seconds_since(started), **outcome.to_dict())
            outcomes += record_outcomes
        if retry_errors:
            raise RetryLater(f"{len(retry_errors)} of {len(outcomes)} record(s) must be retried: "
                             f"{type(retry_errors[0]).__name__}: {retry_errors[0]}") from retry_errors[0]
        return outcomes


def _where(raw_record: Any) -> tuple[str | None, str | None]:
    try:
        event = parse_oss_record(raw_record)
    except EventError:
        return None, None
    return event.bucket, event.key
