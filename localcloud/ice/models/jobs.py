"""Snapshot jobs: SubmitSnapshotJob, the job's life (Init, then Success or Fail), and its snapshot URLs.

Assumptions (the docs are silent; the conservative reading is taken):
* SubmitSnapshotJob validates synchronously: unknown ``TemplateConfig.TemplateId`` answers
  ``ResourceNotFound`` (404) naming "Template"; the merged config (``OverwriteParams`` deep-merged over
  the template's config, one level into ``SpriteSnapshotConfig``) and the Output placeholders answer
  ``InvalidParameter``. ``Type=Media`` references name a registered media asset (``media.py``): an
  unknown MediaId answers ``ResourceNotFound`` naming the field. An Input asset is read from its OSS
  object; an Output asset puts the images in that asset's bucket, under
  ``snapshots/<MediaId>/<JobId>/`` (``snapshot-{Count}.jpg``, ``sprite-{TileCount}.jpg`` or
  ``snapshot.vtt``): the docs do not say where ICE puts them, and this never overwrites an object
  of the caller's, not even the asset's own. An
  ``http(s)://bucket.oss-<region>[-internal].aliyuncs.com/key`` URL must name the service's region;
  its object part is percent-decoded; an ``oss://bucket/key`` object is taken verbatim.
* ``UserData`` is limited to 512 bytes (documented for transcode/produce jobs, unconfirmed for
  snapshot jobs). ``ScheduleConfig.PipelineId`` is echoed, not checked (there are no pipelines).
* Job ``Input``/``Output.Media`` echo the URL as submitted; ``OssFile`` gives Bucket, Location
  (``oss-<region>``) and Object. ``TemplateConfig`` is the effective config as compact JSON.
  ``Count`` is the requested count while ``Init`` and the number actually produced once finished.
* Job not found: ``JobNotFound`` (404), as the ICE operation pages list it. Template not found:
  ``ResourceNotFound`` (404) with ICE's job-level wording ``The specified resource for "Template"
  could not be found.``
* ListSnapshotJobs: ``NextPageToken`` is an opaque token (the next job's id), absent on the last
  page; ``StartOfCreateTime``/``EndOfCreateTime`` are inclusive; PageSize 1..100 (default 20). Jobs
  are ordered by (CreateTime, creation order); a page costs O(log jobs + the page and the jobs the
  Status filter skips), not O(all jobs), so paging stays fast at 100,000 jobs
  (:meth:`JobsBackend.bulk_load_jobs` holds that many).
* GetSnapshotUrls on a job that is not ``Success`` answers ``InvalidParameter`` naming "JobId"
  rather than an empty list (a caller must not mistake "not yet" for "no snapshots"). Default order
  ``Asc``; a page past the end is empty.
"""

from __future__ import annotations

import bisect
import copy
import re
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from localcloud.ice import engine
from localcloud.ice.models.base import (
    invalid_parameter,
    job_not_found,
    missing_parameter,
    one_of,
    page_bounds,
    resource_not_found,
    up_to,
)
from localcloud.ice.models.templates import TemplatesBackend

JOB_STATUSES = ("Init", "Success", "Fail")
USER_DATA_MAX_BYTES = 512
URLS_PAGE_SIZE_MAX = 30
URLS_TIMEOUT_DEFAULT_S = 3600
URLS_TIMEOUT_MAX_S = 129600
JOBS_PAGE_SIZE_DEFAULT = 20
JOBS_PAGE_SIZE_MAX = 100
MEDIA_OUTPUT_NAMES = {"Normal": "snapshot-{Count}.jpg", "Sprite": "sprite-{TileCount}.jpg", "WebVtt": "snapshot.vtt"}

_BUCKET_RE = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
_OSS_URI = re.compile(rf"^oss://(?P<bucket>{_BUCKET_RE})/(?P<key>.+)$")
_OSS_HTTP = re.compile(
    rf"^https?://(?P<bucket>{_BUCKET_RE})\.oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com/(?P<key>.+)$")


@dataclass(frozen=True)
class OssLocation:
    """An ICE media reference of ``Type=OSS``, as submitted (``media``) and parsed."""

    type: str
    media: str
    bucket: str
    object: str
    location: str


@dataclass
class SnapshotJob:
    job_id: str
    name: str | None
    type: str
    input: OssLocation
    output: OssLocation
    template_id: str
    params: engine.SnapshotParams
    pipeline_id: str | None
    user_data: str | None
    create_time: datetime
    seq: int
    status: str = "Init"
    count: int = 0
    code: str | None = None
    message: str | None = None
    finish_time: datetime | None = None
    modified_time: datetime | None = None
    snapshot_keys: list[str] = field(default_factory=list)
    vtt_key: str | None = None
    trigger_source: str = "API"
    async_: bool = True

    @property
    def submit_time(self) -> datetime:
        return self.create_time

    @property
    def template_config(self) -> dict[str, Any]:
        return self.params.to_config()


@dataclass(frozen=True)
class UrlPage:
    bucket: str
    keys: list[str]
    total: int
    vtt_key: str | None
    timeout_s: int


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class JobsBackend(TemplatesBackend):
    """The snapshot jobs of one account in one region; a job is built from one of its templates."""

    _jobs: dict[str, SnapshotJob]
    _by_time: list[tuple[datetime, int, str]]  # (create_time, seq, job_id), sorted: ListSnapshotJobs' order

    def parse_oss_media(self, field_name: str, value: Any) -> OssLocation:
        """Parse an ICE ``{"Type": "OSS", "Media": url}`` reference; errors name ``field_name``."""
        media_type, media = _media_reference(field_name, value)
        if media_type != "OSS":
            raise invalid_parameter(f"{field_name}.Type", "must be OSS here.")
        return self.parse_oss_url(f"{field_name}.Media", media)

    def parse_oss_url(self, field_name: str, media: str) -> OssLocation:
        """Parse ``oss://bucket/key`` or an OSS ``http(s)`` URL of this region; errors name ``field_name``."""
        match = _OSS_URI.match(media)
        if match:
            bucket, key = match["bucket"], match["key"]
        else:
            bucket, key = self._bucket_and_key_of_url(field_name, media)
        return OssLocation(type="OSS", media=media, bucket=bucket, object=key, location=f"oss-{self.region}")

    def media_location(self, field_name: str, media_id: str) -> OssLocation:
        """The OSS object of a registered media asset (``Type=Media``); the media part overrides it."""
        raise resource_not_found(field_name, f"No media asset {media_id!r} is registered.")

    def _bucket_and_key_of_url(self, field_name: str, media: str) -> tuple[str, str]:
        match = _OSS_HTTP.match(media)
        if not match:
            raise invalid_parameter(
                field_name,
                f"must be oss://bucket/object or http(s)://bucket.oss-{self.region}.aliyuncs.com/object, "
                f"got {media!r}.")
        if match["region"] != self.region:
            raise invalid_parameter(
                field_name,
                f"the bucket is in region {match['region']}, not in the job's region {self.region}.")
        return match["bucket"], unquote(match["key"])

    def submit_snapshot_job(self, *, input: Any, output: Any, template_config: Any, name: str | None = None,
                            user_data: str | None = None, schedule_config: Any = None) -> SnapshotJob:
        for required, value in (("Input", input), ("Output", output), ("TemplateConfig", template_config)):
            if value is None:
                raise missing_parameter(required)
        job_id = uuid.uuid4().hex
        source = self._job_input(input)
        output_type, output_media = _media_reference("Output", output)
        target = self.parse_oss_url("Output.Media", output_media) if output_type == "OSS" else None
        template_id, overwrite = _template_reference(template_config)
        pipeline_id = _pipeline_id(schedule_config)
        if user_data is not None and len(user_data.encode("utf-8")) > USER_DATA_MAX_BYTES:
            raise invalid_parameter("UserData", f"must be at most {USER_DATA_MAX_BYTES} bytes.")
        with self._lock:
            config = _deep_merge(self._template(template_id).config, overwrite)
            target = target or self._media_output(output_media, job_id, config.get("Type"))
            params = _job_params(config, overwrite, target)
            now = self._clock()
            job = SnapshotJob(job_id=job_id, name=name, type=params.type, input=source,
                              output=target, template_id=template_id, params=params, pipeline_id=pipeline_id,
                              user_data=user_data, create_time=now, modified_time=now, seq=self._next_seq(),
                              count=params.count or 0)
            self._add_job(job)
            return replace(job)

    def _job_input(self, value: Any) -> OssLocation:
        media_type, media = _media_reference("Input", value)
        if media_type == "OSS":
            return self.parse_oss_url("Input.Media", media)
        return replace(self.media_location("Input.Media", media), type="Media", media=media)

    def _media_output(self, media_id: str, job_id: str, snapshot_type: Any) -> OssLocation:
        """Where ``Output.Type=Media`` puts a job's images: beside nothing of the caller's (see above)."""
        asset = self.media_location("Output.Media", media_id)
        name = MEDIA_OUTPUT_NAMES.get(snapshot_type, MEDIA_OUTPUT_NAMES["Normal"])
        return replace(asset, type="Media", media=media_id, object=f"snapshots/{media_id}/{job_id}/{name}")

    def _add_job(self, job: SnapshotJob) -> None:
        self._jobs[job.job_id] = job
        bisect.insort(self._by_time, (job.create_time, job.seq, job.job_id))

    def bulk_load_jobs(self, jobs: list[dict[str, Any]], *, template_id: str) -> list[str]:
        """Admin: add finished jobs at once, without running the engine (a history for scale tests).

        Each dict has ``Input`` and ``Output`` (``oss://`` URLs), ``CreateTime`` (an aware datetime)
        and optionally ``Name``, ``UserData``, ``Status`` (default ``Success``), ``SnapshotKeys``
        (the objects GetSnapshotUrls lists). Jobs use ``template_id``'s config. Their ids, in order.
        """
        with self._lock:
            params = engine.SnapshotParams.from_config(self._template(template_id).config)
            ids = []
            for spec in jobs:
                created = spec["CreateTime"]
                job = SnapshotJob(job_id=uuid.uuid4().hex, name=spec.get("Name"), type=params.type,
                                  input=self.parse_oss_media("Input", {"Type": "OSS", "Media": spec["Input"]}),
                                  output=self.parse_oss_media("Output", {"Type": "OSS", "Media": spec["Output"]}),
                                  template_id=template_id, params=params, pipeline_id=None,
                                  user_data=spec.get("UserData"), create_time=created, seq=self._next_seq(),
                                  status=spec.get("Status", "Success"), finish_time=created, modified_time=created,
                                  snapshot_keys=list(spec.get("SnapshotKeys", [])))
                job.count = len(job.snapshot_keys)
                self._add_job(job)
                ids.append(job.job_id)
            return ids

    def _job(self, job_id: str | None) -> SnapshotJob:
        if not job_id:
            raise missing_parameter("JobId")
        job = self._jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    def get_job(self, job_id: str | None) -> SnapshotJob:
        with self._lock:
            return replace(self._job(job_id))

    def list_jobs(self, *, job_id: str | None = None, status: str | None = None, order_by: str | None = None,
                  page_size: int | None = None, next_page_token: str | None = None,
                  start_of_create_time: datetime | None = None,
                  end_of_create_time: datetime | None = None) -> tuple[list[SnapshotJob], str | None]:
        if status is not None and status not in JOB_STATUSES:
            raise invalid_parameter("Status", f"must be one of {', '.join(JOB_STATUSES)}, got {status!r}.")
        order_by = one_of("OrderBy", order_by, ("CreateTimeDesc", "CreateTimeAsc"))
        _, size = page_bounds(None, page_size, default_size=JOBS_PAGE_SIZE_DEFAULT, max_size=JOBS_PAGE_SIZE_MAX)
        with self._lock:
            lo = 0 if start_of_create_time is None else bisect.bisect_left(self._by_time, (start_of_create_time,))
            hi = len(self._by_time) if end_of_create_time is None else \
                bisect.bisect_right(self._by_time, (end_of_create_time, float("inf")))
            descending = order_by == "CreateTimeDesc"
            first = self._page_start(next_page_token, lo, hi) if next_page_token else (hi - 1 if descending else lo)
            positions = range(first, lo - 1, -1) if descending else range(first, hi)
            page: list[SnapshotJob] = []
            token = None
            for position in positions:
                job = self._jobs[self._by_time[position][2]]
                if (job_id and job.job_id != job_id) or (status is not None and job.status != status):
                    continue
                if len(page) == size:
                    token = job.job_id
                    break
                page.append(replace(job))
            return page, token

    def _page_start(self, token: str, lo: int, hi: int) -> int:
        """Where the page a NextPageToken (the id of the page's first job) names starts, within [lo, hi)."""
        job = self._jobs.get(token)
        if job is not None:
            at = bisect.bisect_left(self._by_time, (job.create_time, job.seq, job.job_id))
            if lo <= at < hi:
                return at
        raise invalid_parameter("NextPageToken", "is unknown or no longer valid for these filters.")

    def find_job(self, job_id: str) -> SnapshotJob | None:
        """A copy of the job, or None when there is none (e.g. after a reset)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return replace(job) if job else None

    def _running_job(self, job_id: str) -> SnapshotJob | None:
        """The job while still ``Init``: a job finishes once, so a second run of it (resumed after a
        restart, or resumed twice) neither overwrites its outcome nor gets a second callback."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.status == "Init" else None

    def complete_job(self, job_id: str, *, snapshot_keys: list[str], count: int,
                     vtt_key: str | None, message: str | None = None) -> SnapshotJob | None:
        """``message``: a successful job's remark, e.g. fewer snapshots than Count (GetSnapshotJob's Message).
        None when there is no such job or it finished already (see :meth:`_running_job`)."""
        with self._lock:
            job = self._running_job(job_id)
            if job is None:
                return None
            now = self._clock()
            job.status, job.snapshot_keys, job.count, job.vtt_key = "Success", list(snapshot_keys), count, vtt_key
            job.message = message
            job.finish_time = job.modified_time = now
            return replace(job)

    def fail_job(self, job_id: str, *, code: str, message: str) -> SnapshotJob | None:
        with self._lock:
            job = self._running_job(job_id)
            if job is None:
                return None
            now = self._clock()
            job.status, job.code, job.message, job.count = "Fail", code, message, 0
            job.finish_time = job.modified_time = now
            return replace(job)

    def snapshot_urls(self, *, job_id: str | None, page_number: int | None = None, page_size: int | None = None,
                      order_by: str | None = None, timeout: int | None = None) -> UrlPage:
        order_by = one_of("OrderBy", order_by, ("Asc", "Desc"))
        timeout = up_to("Timeout", timeout, default=URLS_TIMEOUT_DEFAULT_S, maximum=URLS_TIMEOUT_MAX_S,
                        unit=" seconds")
        start, size = page_bounds(page_number, page_size, default_size=10, max_size=URLS_PAGE_SIZE_MAX)
        with self._lock:
            job = self._job(job_id)
            if job.status != "Success":
                raise invalid_parameter("JobId", f"the job is in status {job.status}; snapshot URLs exist only "
                                                 "for jobs in status Success.")
            keys = job.snapshot_keys if order_by == "Asc" else job.snapshot_keys[::-1]
            return UrlPage(bucket=job.output.bucket, keys=keys[start:start + size], total=len(keys),
                           vtt_key=job.vtt_key, timeout_s=timeout)


    def unfinished_job_ids(self) -> list[str]:
        """The jobs still ``Init``, oldest first (after a restore: the ones that were running)."""
        with self._lock:
            return [job_id for _, _, job_id in self._by_time if self._jobs[job_id].status == "Init"]

    def _jobs_state(self) -> list[dict[str, Any]]:
        """The jobs as JSON-able records, oldest first (see :meth:`IceModel.state`)."""
        return [_job_record(self._jobs[job_id]) for _, _, job_id in self._by_time]

    def _restore_jobs(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._add_job(_job_from_record(record))


_JOB_TIMES = ("create_time", "finish_time", "modified_time")


def _job_record(job: SnapshotJob) -> dict[str, Any]:
    record = {f.name: getattr(job, f.name) for f in fields(job)}
    record.update({name: value.isoformat() if value else None for name, value in
                   ((name, getattr(job, name)) for name in _JOB_TIMES)})
    record.update(input=asdict(job.input), output=asdict(job.output), params=job.params.to_config(),
                  snapshot_keys=list(job.snapshot_keys))
    return record


def _job_from_record(record: dict[str, Any]) -> SnapshotJob:
    values = dict(record)
    values.update({name: datetime.fromisoformat(record[name]) if record[name] else None for name in _JOB_TIMES})
    values.update(input=OssLocation(**record["input"]), output=OssLocation(**record["output"]),
                  params=engine.SnapshotParams.from_config(record["params"]))
    return SnapshotJob(**values)


def _media_reference(field_name: str, value: Any) -> tuple[str, str]:
    """(Type, Media) of a ``{"Type": "OSS"|"Media", "Media": url or MediaId}`` reference, checked as ICE does."""
    if value is None:
        raise missing_parameter(field_name)
    if not isinstance(value, dict):
        raise invalid_parameter(field_name, 'must be a JSON object {"Type": "OSS", "Media": "oss://bucket/object"}.')
    media_type, media = value.get("Type"), value.get("Media")
    if not media_type:
        raise missing_parameter(f"{field_name}.Type")
    if not media:
        raise missing_parameter(f"{field_name}.Media")
    if media_type not in ("OSS", "Media"):
        raise invalid_parameter(f"{field_name}.Type", f"must be OSS or Media, got {media_type!r}.")
    if not isinstance(media, str):
        raise invalid_parameter(f"{field_name}.Media", "must be a string.")
    return media_type, media


def _template_reference(template_config: Any) -> tuple[str, dict[str, Any]]:
    """(TemplateId, OverwriteParams) of a job's TemplateConfig."""
    if not isinstance(template_config, dict):
        raise invalid_parameter("TemplateConfig",
                                'must be a JSON object {"TemplateId": "...", "OverwriteParams": {...}}.')
    template_id = template_config.get("TemplateId")
    if not template_id:
        raise missing_parameter("TemplateConfig.TemplateId")
    overwrite = template_config.get("OverwriteParams") or {}
    if not isinstance(overwrite, dict):
        raise invalid_parameter("TemplateConfig.OverwriteParams", "must be a JSON object.")
    return template_id, overwrite


def _pipeline_id(schedule_config: Any) -> str | None:
    if schedule_config is None:
        return None
    if not isinstance(schedule_config, dict):
        raise invalid_parameter("ScheduleConfig", 'must be a JSON object {"PipelineId": "..."}.')
    return schedule_config.get("PipelineId")


def _job_params(config: dict[str, Any], overwrite: dict[str, Any], target: OssLocation) -> engine.SnapshotParams:
    """The merged config (OverwriteParams over the template's), validated, and the Output checked against it."""
    try:
        params = engine.SnapshotParams.from_config(config)
    except engine.ParamError as exc:  # name the field where the caller wrote it
        field_name = exc.field or "TemplateConfig"
        parts = field_name.split(".")
        if parts[0] == "TemplateConfig" and len(parts) > 1 and parts[1] in overwrite:
            field_name = ".".join(["TemplateConfig", "OverwriteParams", *parts[1:]])
        raise invalid_parameter(field_name, exc.message) from None
    try:
        engine.validate_output(params, target.object)
    except engine.ParamError as exc:
        raise invalid_parameter("Output", exc.message) from None
    return params
