"""Publishing indexes: only this pipeline's jobs, only forward, and what happens to the rest.

One home for every write of a source object's ``index.json`` (callback, reconciler, submitter,
deletions), so one set of rules holds whatever order events arrive in:

- **Only this pipeline's jobs.** A job is ours when its UserData names a source, its Input names
  the same object, that object is a video this deployment watches, and its Output is exactly where
  the layout puts that version's outputs. Anything else is :attr:`Published.FOREIGN` and nothing
  is written: ICE's event callback is account-wide.
- **The index only moves forward.** The writer HEADs the source (it must still be the job's
  version), writes, and HEADs again. A job of a version that is no longer current is
  :attr:`Published.SUPERSEDED`: recorded in the log, its own outputs removed, never published. If
  the source changed between the write and the re-check, the current version's finished job is
  published again (or the tombstone, if the source is gone), so a slow writer never leaves an
  older version in place. (OSS reads are strongly consistent, which is what makes this work.)
- **Deletion is followed.** A deleted source's index becomes a tombstone (``deleted``) and its
  outputs are removed; a job finishing after the deletion only removes its outputs.
- **Transient failures are retried** (:func:`.claims.transient_failure`): the next attempt is
  scheduled in the claim instead of indexing a failure; after :data:`.claims.MAX_JOB_ATTEMPTS`
  the failure is final and indexed.
- **Profiles fill in, never lose one another.** Each job's result is written to its own object and
  the index is composed from all results of the version (:mod:`.compose`), so concurrent callbacks
  of a version's profiles converge on an index that shows all of them.
- Once a version's index is written, the outputs of older versions are removed.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import layout, outbox
from .claims import MAX_JOB_ATTEMPTS, Claim, Claims, job_name, transient_failure
from .compose import MAX_COMPOSITIONS, IndexComposer, converged
from .domain import JobStatus, OssLocation, SnapshotJob, StrEnum, Upload
from .index import build_result, compose_index, failure_result, indexed_source, is_tombstone, tombstone_index
from .log import log
from .pending import PendingMarkers
from .ports import Ice, ObjectStore
from .profiles import is_profile_name
from .settings import Settings
from .storyboards import public_url, write_player_files
from .webhooks import ChangeKind, IndexChange

#: How many times a publisher follows a source that changed under it before leaving it to the next writer.
MAX_REPAIRS = 3
#: ``index_now`` when the caller has not read the index (None is "read, and there is none").
UNREAD: Any = object()
#: The lease of the claims a publisher reads and schedules retries in (it never submits).
_CLAIM_LEASE_S = 60.0


class Published(StrEnum):
    """What publishing a job (or a deletion, or a refusal) did."""

    INDEXED = "indexed"  # the index now describes this version
    SUPERSEDED = "superseded"  # a newer version (or a later attempt) owns the index; recorded, not published
    DELETED = "deleted"  # the source is gone: the index is a tombstone
    RETRYING = "retrying"  # the job failed transiently; the next attempt is scheduled
    FOREIGN = "foreign"  # not a job of this pipeline: nothing written


@dataclass(frozen=True)
class Publication:
    kind: Published
    index: OssLocation | None = None
    upload: Upload | None = None
    reason: str | None = None
    doc: dict[str, Any] | None = None  # the profile's result this publication wrote


def unwatched_reason(key: str, output_prefix: str, video_suffixes: tuple[str, ...]) -> str | None:
    """Why the object ``key`` is not a video this pipeline handles, or None when it is."""
    if key.endswith("/"):
        return "folder marker"
    if key.startswith(output_prefix):
        return f"key is under the output prefix {output_prefix!r}"
    if not key.lower().endswith(video_suffixes):
        return "not a video suffix"
    return None


class Publisher:
    def __init__(self, settings: Settings, ice: Ice, store: ObjectStore, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.ice = ice
        self.store = store
        self.clock = clock

    def on_index_written(self, change: IndexChange) -> None:
        """Called after each index write, before it counts as done (before the pending marker is
        settled): the change's webhook event goes in the outbox and is sent (:mod:`.outbox`)."""
        outbox.notify(self.settings, self.store, change, clock=self.clock)

    def _index_change(self, kind: ChangeKind, unit: Upload) -> IndexChange:
        """The change a write made to ``unit``'s index: its profile's result, or (a deletion) the source's."""
        source, version = unit.location, unit.version
        profile = None if kind == ChangeKind.SOURCE_DELETED else unit.profile
        index_key = self.index_location(source).key
        base = self.settings.public_base_url  # where browsers (and the app) read the output bucket
        return IndexChange(source.uri, version or None, kind, profile, index_key,
                           public_url(base, index_key) if base else None)

    # --- where ------------------------------------------------------------------------------------
    def output_bucket(self, source: OssLocation) -> str:
        return layout.output_bucket(self.settings.output_bucket, source.bucket)

    def index_location(self, source: OssLocation) -> OssLocation:
        """The stable place of ``source``'s index."""
        return layout.index_location(self.settings.output_bucket, self.settings.output_prefix, source)

    def stable_index(self, source: OssLocation) -> tuple[OssLocation, Any]:
        """The index at ``source``'s stable place (one GET), or None there. What the writers compare
        with: an index of the unversioned layout never names a version, so it never decides anything."""
        location = self.index_location(source)
        return location, self.store.get_json(location.bucket, location.key)

    def current_index(self, source: OssLocation) -> tuple[OssLocation, Any]:
        """The index of ``source`` and where it is, for readers: the stable place, else where an index
        written before versioned outputs sits (only if it names this very source)."""
        location, doc = self.stable_index(source)
        if doc is not None:
            return location, doc
        legacy = OssLocation(location.bucket, layout.legacy_index_key(self.settings.output_prefix, source))
        doc = self.store.get_json(legacy.bucket, legacy.key)
        named = indexed_source(doc)
        if named is not None and named.location == source:
            return legacy, doc
        return location, None

    def pending(self, source: OssLocation) -> PendingMarkers:
        return PendingMarkers(self.store, self.output_bucket(source), self.settings.output_prefix, self.clock)

    def composer(self, source: OssLocation) -> IndexComposer:
        return IndexComposer(self.store, self.output_bucket(source), self.settings.output_prefix)

    def claims(self, source: OssLocation) -> Claims:
        return Claims(self.store, self.output_bucket(source), self.settings.output_prefix,
                      lease_s=_CLAIM_LEASE_S, clock=self.clock)

    # --- whose ------------------------------------------------------------------------------------
    def upload_of(self, job: SnapshotJob) -> Upload | str:
        """The upload ``job`` was submitted for by this pipeline, or the reason it is not ours."""
        source = job.user_data_doc().get("source")
        if not isinstance(source, dict) or not source:
            return "its UserData names no source"
        if job.input is None:
            return "its Input names no OSS object"
        upload = Upload.from_doc(source, bucket=job.input.bucket, key=job.input.key)
        if upload is None or upload.location != job.input:
            return f"its UserData names a source other than its Input {job.input.uri}"
        unwatched = unwatched_reason(upload.key, self.settings.output_prefix, self.settings.video_suffixes)
        if unwatched:
            return f"its source is not a watched video ({unwatched})"
        if job.output is None or job.output not in self._expected_outputs(upload):
            where = job.output.uri if job.output else "nowhere"
            return f"its Output {where} is not where this pipeline puts {upload.location.uri}'s snapshots"
        return upload

    def upload_of_listed(self, job: SnapshotJob) -> Upload | None:
        """The upload a *listed* job (no UserData in ListSnapshotJobs) would be for, judged on its Input
        and Output alone: the version and the profile are read from the Output's folders. None when it
        cannot be ours. :meth:`upload_of` still judges the job in full before anything is written."""
        if job.input is None or job.output is None:
            return None
        folder = layout.object_dir(self.settings.output_prefix, job.input)
        if job.output.bucket != self.output_bucket(job.input) or not job.output.key.startswith(folder):
            return None
        version = layout.version_of_dir_entry(folder, job.output.key)
        stamp, _, etag = (version or "").partition("-")
        profile = layout.profile_of_output(folder, job.output.key)
        upload = Upload.from_doc({"etag": etag.upper(), "version": version, "profile": profile},
                                 bucket=job.input.bucket, key=job.input.key)
        return upload if upload is not None and upload.last_modified is not None else None

    def discard(self, upload: Upload) -> None:
        """Remove the outputs of a version (all its profiles') that will never be published (a newer one is)."""
        self._delete_versions(upload.location, lambda version: version == upload.version)

    def _expected_outputs(self, upload: Upload) -> list[OssLocation]:
        bucket, prefix = self.output_bucket(upload.location), self.settings.output_prefix
        expected = [layout.output_location(bucket, prefix, t, upload) for t in layout.OUTPUT_FILE]
        if upload.last_modified is None:  # submitted before versioned outputs: the old folder
            folder = layout.legacy_index_key(prefix, upload.location)[:-len(layout.INDEX_FILE)]
            expected += [OssLocation(bucket, folder + name) for name in layout.OUTPUT_FILE.values()]
        return expected

    # --- publishing -------------------------------------------------------------------------------
    def publish(self, job: SnapshotJob, *, repairs: int = 0, index_now: Any = UNREAD) -> Publication:
        """Write the index of a finished job, if it is ours and its version is current. ``index_now``:
        the document at the stable place, when the caller has just read it (saves a GET)."""
        upload = self.upload_of(job)
        if isinstance(upload, str):
            log("publish.foreign", job_id=job.job_id, reason=upload)
            return Publication(Published.FOREIGN, reason=f"not a job of this pipeline: {upload}")
        later = self._later_attempt(upload, job)
        if later is not None:  # the next attempt writes the same folder: its outputs stay
            log("publish.superseded", job_id=job.job_id, bucket=upload.bucket, key=upload.key, reason=later)
            return Publication(Published.RETRYING, self.index_location(upload.location), upload, later)
        current = self.version_now(upload.location)
        if current is None:
            return self.record_deletion(upload.location, deleted_at=self.clock(), job_id=job.job_id, known=upload)
        if not current.same_version(upload):
            return self._superseded(upload, job.job_id, f"the source is now version {current.version}")
        result = build_result(job, self._urls(job), now=self.clock(), url_timeout_s=self.settings.url_timeout_s,
                              source_size=current.size, read=self.store.get_head_bytes)
        result.update(write_player_files(self.store, job, result, public_base_url=self.settings.public_base_url))
        return self._write_forward(replace(upload, size=current.size), result, repairs=repairs, job_id=job.job_id,
                                   index_now=index_now)

    def _urls(self, job: SnapshotJob) -> Any:
        if job.status != JobStatus.SUCCESS:
            return None
        return self.ice.get_all_snapshot_urls(job.job_id, timeout_s=self.settings.url_timeout_s)

    def _later_attempt(self, upload: Upload, job: SnapshotJob) -> str | None:
        """Why a failed job is not the final word on its upload: a retry is (now) scheduled, or a
        later attempt exists. None when its failure is to be indexed."""
        if job.status != JobStatus.FAIL:
            return None
        claims = self.claims(upload.location)
        claim = claims.latest(upload)
        if claim is None or not _submitted_by(claim, job):
            return "a later attempt owns the upload" if claim is not None and claim.attempt > 1 else None
        if not transient_failure(job.code) or claim.attempt >= MAX_JOB_ATTEMPTS:
            return None
        retry = claims.schedule_retry(claim, job.job_id, job.code)
        log("publish.retry_scheduled", job_id=job.job_id, code=job.code, attempt=claim.attempt + 1,
            scheduled=retry is not None, retry_at=retry.expires_at if retry else None)
        return "retrying"

    def record_failure(self, claims: Claims, claim: Claim, code: str, message: str, *,
                       template_id: str | None) -> Claim:
        """An upload that will get no job: the failure goes in its index first (by the same forward
        rule), then closes its claim (so a crash between the two leaves a claim that is retried, never
        a failure nobody can read)."""
        upload = claim.upload
        if upload.last_modified is None:  # no version folder to keep results in: the index alone
            result = failure_result(upload, code, message, template_id=template_id, now=self.clock(), size=upload.size)
            index = compose_index(result["source"], {upload.profile: result}, now=self.clock())
            self._put_index(upload.location, index)
            self.on_index_written(self._index_change(ChangeKind.PROFILE_FAILED, upload))
        else:
            current = self.version_now(upload.location)
            if current is not None and current.same_version(upload):
                sized = replace(upload, size=current.size)
                self._write_forward(sized, failure_result(sized, code, message, template_id=template_id,
                                                          now=self.clock(), size=current.size))
        closed = claims.record_failure(claim, code, message)
        self.pending(upload.location).settle(upload)
        return closed

    def _write_forward(self, upload: Upload, result: dict[str, Any], *, repairs: int = 0,
                       job_id: str | None = None, index_now: Any = UNREAD) -> Publication:
        """Write ``result`` as ``upload.profile``'s result and compose the version's index from all its
        results (its version was current just before), then make sure it still is: if not, follow the
        source to its current state. The one place a profile's result is written."""
        self.composer(upload.location).write_result(upload, result)
        change = ChangeKind.PROFILE_FAILED if result["job"]["status"] == JobStatus.FAIL else ChangeKind.PROFILE_INDEXED
        return replace(self._index_forward(upload, repairs, job_id, index_now, settles=upload, change=change),
                       doc=result)

    def _compose(self, upload: Upload, index_now: Any) -> tuple[OssLocation, Upload | None]:
        """Write the version's index from its results until it shows every one there is (:mod:`.compose`);
        returns where, and the version the index showed before (read just before the first write, unless
        the caller read it: ``index_now``), whose outputs go once this one is confirmed current."""
        composer = self.composer(upload.location)
        composed = composer.compose(upload, upload.size, self.clock())
        replaced = indexed_source(self.stable_index(upload.location)[1] if index_now is UNREAD else index_now)
        for attempt in range(MAX_COMPOSITIONS):
            location = self._put_index(upload.location, composed.doc)
            if converged(composer, upload, composed, attempt):
                break
            composed = composer.compose(upload, upload.size, self.clock())
        return location, replaced

    def _index_forward(self, upload: Upload, repairs: int, job_id: str | None, index_now: Any, *,
                       settles: Upload | None, change: ChangeKind | None = None) -> Publication:
        """Compose ``upload``'s version's index, then HEAD: follow the source if it changed meanwhile.
        ``settles``: the unit whose pending marker this write settles (None when only following);
        ``change``: what its profile's result was, told (webhooks) before the marker is settled."""
        location, replaced = self._compose(upload, index_now)
        after = self.version_now(upload.location)
        if after is None:
            return self.record_deletion(upload.location, deleted_at=self.clock(), job_id=job_id, known=settles)
        if not after.same_version(upload):
            self._settle(settles)
            self._follow(after, repairs)
            return Publication(Published.SUPERSEDED, location, upload,
                               f"the source became version {after.version} while indexing")
        self._remove_older_versions(upload, replaced)
        if change is not None:
            self.on_index_written(self._index_change(change, upload))
        self._settle(settles)
        return Publication(Published.INDEXED, location, upload)

    def _settle(self, unit: Upload | None) -> None:
        if unit is not None:
            self.pending(unit.location).settle(unit)

    def _follow(self, current: Upload, repairs: int) -> None:
        """The source changed under a writer: compose the current version's index again from the
        results its profiles wrote (their writers may have come and gone); with none yet, its first
        writer composes it."""
        if repairs >= MAX_REPAIRS:
            log("publish.repair_abandoned", bucket=current.bucket, key=current.key, version=current.version)
            return
        if self.composer(current.location).listing(current):
            self._index_forward(current, repairs + 1, None, UNREAD, settles=None)

    def _superseded(self, upload: Upload, job_id: str, reason: str) -> Publication:
        """A job whose version (or attempt) is not the current one: log it and remove its outputs,
        unless the current index still shows them (a newer version's job has not finished yet)."""
        location, doc = self.stable_index(upload.location)
        shown = indexed_source(doc)
        if shown is None or shown.version != upload.version:
            self.discard(upload)
        self.pending(upload.location).settle(upload)
        log("publish.superseded", job_id=job_id, bucket=upload.bucket, key=upload.key, version=upload.version,
            reason=reason)
        return Publication(Published.SUPERSEDED, location, upload, reason)

    # --- deletion ---------------------------------------------------------------------------------
    def record_deletion(self, source: OssLocation, *, deleted_at: float, job_id: str | None = None,
                        known: Upload | None = None) -> Publication:
        """The source is gone: its index becomes a tombstone and the outputs of every version written
        up to ``deleted_at`` are removed. If the object exists again, nothing is recorded (its new
        version has its own upload); if it reappears while recording, its index is restored.
        ``known``: the version the caller knows existed, named in the tombstone when no index names one."""
        now_there = self.version_now(source)
        if now_there is not None:
            return Publication(Published.SUPERSEDED, self.index_location(source), now_there,
                               "the object exists again")
        _, previous = self.current_index(source)
        shown = indexed_source(previous)
        upload = next((u for u in (shown, known) if u is not None and u.location == source),
                      Upload(source.bucket, source.key, ""))
        if not is_tombstone(previous):
            self._put_index(source, tombstone_index(upload, deleted_at=deleted_at, now=self.clock()))
        after = self.version_now(source)
        if after is not None:
            self._follow(after, 0)
            return Publication(Published.SUPERSEDED, self.index_location(source), after, "the object exists again")
        self.on_index_written(self._index_change(ChangeKind.SOURCE_DELETED, upload))
        self._delete_versions(source, lambda version: _written_by(version, deleted_at))
        if known is not None:
            self.pending(source).settle(known)
        log("publish.deleted", bucket=source.bucket, key=source.key, job_id=job_id)
        return Publication(Published.DELETED, self.index_location(source), upload, "the source object was deleted")

    # --- storage ----------------------------------------------------------------------------------
    def version_now(self, source: OssLocation) -> Upload | None:
        """The version of ``source`` HEAD reports now; None when it does not exist."""
        info = self.store.head(source.bucket, source.key)
        return None if info is None else Upload.of_object(source.bucket, info)

    def _put_index(self, source: OssLocation, doc: dict[str, Any]) -> OssLocation:
        location = self.index_location(source)
        self.store.put_json(location.bucket, location.key, doc)
        return location

    def _remove_older_versions(self, upload: Upload, replaced: Upload | None) -> None:
        """Remove the outputs of the versions before ``upload`` (current when its index was written):
        those written at least a second before it, and the one whose index it replaced (older, as
        the index only moves forward, even when written in the same second)."""
        if upload.last_modified is None:
            return
        previous = replaced.version if replaced is not None and replaced.version != upload.version else None
        self._delete_versions(upload.location,
                              lambda version: version == previous or _written_by(version, upload.last_modified, 1))

    def _delete_versions(self, source: OssLocation, doomed: Callable[[str], bool]) -> None:
        """Delete the outputs of the versions ``doomed`` names: the direct children of their folders and of
        their results' and profiles' subfolders (deeper keys may be another source's, nested under it)."""
        bucket, folder = self.output_bucket(source), layout.object_dir(self.settings.output_prefix, source)
        keys = []
        for version_folder in self.store.list_folders(bucket, folder):  # the versions, not their outputs
            version = version_folder[len(folder):].rstrip("/")
            if doomed(version):
                keys += [obj.key for obj in self.store.list(bucket, version_folder)
                         if _version_output(obj.key[len(version_folder):])]
        if keys:
            self.store.delete_many(bucket, keys)
            log("publish.outputs_removed", bucket=bucket, folder=folder, objects=len(keys))


def _version_output(name: str) -> bool:
    """Whether ``name`` (a key relative to a version folder) is one of that version's outputs: a file in
    it, or in its results' folder or a profile's (a profile name has no ``/``)."""
    folder, slash, _ = name.rpartition("/")
    return not slash or folder + "/" == layout.RESULTS_DIR or is_profile_name(folder)


def _submitted_by(claim: Claim, job: SnapshotJob) -> bool:
    """Whether ``job`` is the one ``claim``'s attempt submitted: the JobId it records or, before its
    owner has recorded it (ICE may call back first, e.g. for a job that fails at once), the job that
    bears the attempt's deterministic Name."""
    if claim.job_id is not None:
        return claim.job_id == job.job_id
    return job.name == job_name(claim.upload, claim.attempt)


def _written_by(version: str, moment: float | None, margin_s: float = 0.0) -> bool:
    """Whether the version named ``version`` was written at least ``margin_s`` before ``moment``
    (False if either is unknown). Versions name whole seconds: a margin of 1 spares a version
    written in the same second as ``moment``, whose order is unknown."""
    upload = Upload.from_doc({"bucket": "-", "key": "-", "version": version})
    return (moment is not None and upload is not None and upload.last_modified is not None
            and upload.last_modified <= moment - margin_s)
