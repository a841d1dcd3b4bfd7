"""State and rules of the local ICE (IMS, API 2020-11-09) snapshot service.

Plain Python, no HTTP: templates, snapshot jobs and the event-callback setting of one account in
one region, and the rules the real service documents for them. Every rule that fails raises
:class:`IceError` carrying ICE's own error code, HTTP status and a message that names the field
(``The specified parameter "Output" is not valid: ...``). The wire format (query parameters,
JSON-string parameters, signatures, JSON bodies) lives in ``responses.py``; frame cutting lives in
``engine.py``; threads, HTTP and callbacks live in ``server.py``.

Reference: the team's ICE/FC reference (ice-fc-reference.md), sections 1-8, and the SDK models in
``alibabacloud_ice20201109`` 6.20.2 (the ground truth for field names).

Assumptions (the docs are silent; the conservative reading is taken):
* Snapshot templates only: CreateCustomTemplate accepts ``Type=2`` (Subtype 1 Normal, 2 Sprite,
  3 WebVtt); other template types answer ``InvalidParameter`` naming ``Type``. ``TemplateConfig.Type``
  must agree with ``Subtype``; without ``Subtype`` it is derived from ``TemplateConfig.Type``.
* Template descriptors: ``TypeName`` is ``SnapshotTemplate``, ``SubtypeName`` is the subtype's name,
  ``Status`` is ``Normal``. CreateCustomTemplate answers ``Subtype`` as the subtype *name* (the SDK
  types it ``str``, "the template subtype name"); Get/ListCustomTemplates answer it as the int with
  ``SubtypeName`` beside it (as the SDK types them).
* A custom template is not a default one until SetDefaultCustomTemplate marks it (one default per
  Type/Subtype); GetCustomTemplate by ``Type`` without a default answers ``ResourceNotFound`` (404).
  There are no system templates.
* ListCustomTemplates: ``Name`` and ``TemplateId`` filter by exact match; PageNumber default 1,
  PageSize default 10, range 1..100; OrderBy default ``CreationTime:Desc``.
* SubmitSnapshotJob validates synchronously: unknown ``TemplateConfig.TemplateId`` answers
  ``ResourceNotFound`` (404) naming "Template"; the merged config (``OverwriteParams`` deep-merged over
  the template's config, one level into ``SpriteSnapshotConfig``) and the Output placeholders answer
  ``InvalidParameter``. Only ``Type=OSS`` inputs/outputs (``Media`` asset IDs are not emulated). An
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
  page; ``StartOfCreateTime``/``EndOfCreateTime`` are inclusive; PageSize 1..100 (default 20).
* GetSnapshotUrls on a job that is not ``Success`` answers ``InvalidParameter`` naming "JobId"
  rather than an empty list (a caller must not mistake "not yet" for "no snapshots"). Default order
  ``Asc``; a page past the end is empty.
* SetEventCallback requires ``CallbackType``; HTTP requires ``CallbackURL`` (http/https, <= 256
  bytes); MNS requires ``CallbackQueueName`` starting ``ice-callback-``; ``AuthKey`` <= 32 chars with
  upper, lower case and digits; ``AuthSwitch=on`` needs a key. An empty ``EventTypeList`` means every
  event type.
* Callback target: ``UserData.NotifyAddress`` (http/https) first, else the SetEventCallback URL when
  its type is HTTP and its EventTypeList admits ``SnapshotComplete``. The AuthSwitch/AuthKey of the
  event-callback setting sign every HTTP callback, a per-job NotifyAddress too (with that URL).
  A NotifyAddress naming an MNS queue (``ice-callback-*``) is recorded but not delivered.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import unquote

from localcloud.ice import engine

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SNAPSHOT_TEMPLATE_TYPE = 2
SUBTYPES = {1: "Normal", 2: "Sprite", 3: "WebVtt"}
SUBTYPE_IDS = {name: number for number, name in SUBTYPES.items()}
JOB_STATUSES = ("Init", "Success", "Fail")
SNAPSHOT_EVENT = "SnapshotComplete"
USER_DATA_MAX_BYTES = 512
CALLBACK_URL_MAX_BYTES = 256
AUTH_KEY_MAX_CHARS = 32
URLS_PAGE_SIZE_MAX = 30
URLS_TIMEOUT_DEFAULT_S = 3600
URLS_TIMEOUT_MAX_S = 129600
JOBS_PAGE_SIZE_DEFAULT = 20
JOBS_PAGE_SIZE_MAX = 100
TEMPLATES_PAGE_SIZE_DEFAULT = 10
TEMPLATES_PAGE_SIZE_MAX = 100

_BUCKET_RE = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
_OSS_URI = re.compile(rf"^oss://(?P<bucket>{_BUCKET_RE})/(?P<key>.+)$")
_OSS_HTTP = re.compile(
    rf"^https?://(?P<bucket>{_BUCKET_RE})\.oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com/(?P<key>.+)$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime(TIME_FORMAT) if value else None


class IceError(Exception):
    """An ICE API error: ``code`` and ``message`` as the service answers them, with its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, recommend: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.recommend = recommend


def missing_parameter(name: str) -> IceError:
    return IceError("MissingParameter",
                    f'The input parameter "{name}" that is mandatory for processing this request is not supplied.')


def invalid_parameter(name: str, detail: str) -> IceError:
    return IceError("InvalidParameter", f'The specified parameter "{name}" is not valid: {detail}')


def resource_not_found(name: str, detail: str = "") -> IceError:
    return IceError("ResourceNotFound",
                    f'The specified resource for "{name}" could not be found.' + (f" {detail}" if detail else ""),
                    404)


def job_not_found(job_id: str) -> IceError:
    return IceError("JobNotFound", f'The specified job "{job_id}" could not be found.', 404)


@dataclass(frozen=True)
class OssLocation:
    """An ICE media reference of ``Type=OSS``, as submitted (``media``) and parsed."""

    type: str
    media: str
    bucket: str
    object: str
    location: str


@dataclass
class Template:
    template_id: str
    name: str
    subtype: int
    config: dict[str, Any]
    create_time: datetime
    modified_time: datetime
    seq: int
    is_default: bool = False
    type: int = SNAPSHOT_TEMPLATE_TYPE
    status: str = "Normal"

    @property
    def subtype_name(self) -> str:
        return SUBTYPES[self.subtype]


@dataclass
class SnapshotJob:
    job_id: str
    name: str | None
    type: str
    input: OssLocation
    output: OssLocation
    template_id: str
    params: Any  # engine.SnapshotParams
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
class EventCallback:
    callback_type: str | None = None
    callback_url: str | None = None
    callback_queue_name: str | None = None
    event_type_list: str | None = None
    auth_switch: str = "off"
    auth_key: str | None = None

    def admits(self, event_type: str) -> bool:
        names = [n.strip() for n in (self.event_type_list or "").split(",") if n.strip()]
        return not names or event_type in names


@dataclass(frozen=True)
class CallbackTarget:
    """Where a job's completion event goes: ``kind`` is ``HTTP`` or ``MNS``."""

    kind: str
    address: str
    auth_key: str | None


@dataclass(frozen=True)
class UrlPage:
    bucket: str
    keys: list[str]
    total: int
    vtt_key: str | None
    timeout_s: int


def _page_bounds(page_number: int | None, page_size: int | None, *, default_size: int, max_size: int,
                 size_name: str = "PageSize", number_name: str = "PageNumber") -> tuple[int, int]:
    size = default_size if page_size is None else page_size
    if not 1 <= size <= max_size:
        raise invalid_parameter(size_name, f"must be between 1 and {max_size}, got {size}.")
    number = 1 if page_number is None else page_number
    if number < 1:
        raise invalid_parameter(number_name, f"must be 1 or greater, got {number}.")
    return (number - 1) * size, size


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class IceModel:
    """One account's ICE snapshot state in one region. Thread-safe; :meth:`reset` empties it."""

    def __init__(self, region: str = "cn-hangzhou", account_id: str = "1000000000000001",
                 clock: Callable[[], datetime] = utcnow):
        self.region = region
        self.account_id = account_id
        self._clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._templates: dict[str, Template] = {}
            self._jobs: dict[str, SnapshotJob] = {}
            self._event_callback = EventCallback()
            self._seq = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- templates -------------------------------------------------------------------------

    def _validated_template_config(self, config: Any, subtype: int | None) -> tuple[dict[str, Any], int]:
        if not isinstance(config, dict):
            raise invalid_parameter("TemplateConfig", "must be a JSON object.")
        try:
            params = engine.SnapshotParams.from_config(config)
        except engine.ParamError as exc:  # the engine names fields "TemplateConfig.<Key>[.<SubKey>]"
            raise invalid_parameter(exc.field or "TemplateConfig", exc.message) from None
        params_type = params.to_config().get("Type")
        if params_type not in SUBTYPE_IDS:
            raise invalid_parameter("TemplateConfig.Type",
                                    f"must be one of {', '.join(SUBTYPE_IDS)}, got {params_type!r}.")
        if subtype is None:
            subtype = SUBTYPE_IDS[params_type]
        elif SUBTYPES[subtype] != params_type:
            raise invalid_parameter(
                "TemplateConfig.Type",
                f"{params_type!r} does not agree with Subtype {subtype} ({SUBTYPES[subtype]}).")
        return copy.deepcopy(config), subtype

    def create_template(self, *, name: str | None, type: int | None, subtype: int | None,
                        template_config: Any) -> Template:
        if not name:
            raise missing_parameter("Name")
        if type is None:
            raise missing_parameter("Type")
        if template_config is None:
            raise missing_parameter("TemplateConfig")
        if type != SNAPSHOT_TEMPLATE_TYPE:
            raise invalid_parameter("Type", f"the local ICE supports only snapshot templates (Type=2), got {type}.")
        if subtype is not None and subtype not in SUBTYPES:
            raise invalid_parameter("Subtype", f"must be 1 (Normal), 2 (Sprite) or 3 (WebVtt), got {subtype}.")
        config, subtype = self._validated_template_config(template_config, subtype)
        with self._lock:
            now = self._clock()
            template = Template(template_id=uuid.uuid4().hex, name=name, subtype=subtype, config=config,
                                create_time=now, modified_time=now, seq=self._next_seq())
            self._templates[template.template_id] = template
            return replace(template)

    def _template(self, template_id: str) -> Template:
        template = self._templates.get(template_id)
        if template is None:
            raise resource_not_found("Template", f"TemplateId: {template_id}")
        return template

    def get_template(self, *, template_id: str | None = None, type: int | None = None,
                     subtype: int | None = None) -> Template:
        with self._lock:
            if template_id:
                return replace(self._template(template_id))
            if type is None:
                raise missing_parameter("TemplateId")
            for template in sorted(self._templates.values(), key=lambda t: t.seq):
                if template.is_default and template.type == type and subtype in (None, template.subtype):
                    return replace(template)
            raise resource_not_found("Template", f"No default template for Type {type}"
                                     + (f" Subtype {subtype}." if subtype is not None else "."))

    def list_templates(self, *, type: int | None, subtype: int | None = None, name: str | None = None,
                       template_id: str | None = None, order_by: str | None = None,
                       page_number: int | None = None, page_size: int | None = None) -> tuple[list[Template], int]:
        if type is None:
            raise missing_parameter("Type")
        order_by = order_by or "CreationTime:Desc"
        if order_by not in ("CreationTime:Desc", "CreationTime:Asc"):
            raise invalid_parameter("OrderBy", f"must be CreationTime:Desc or CreationTime:Asc, got {order_by!r}.")
        start, size = _page_bounds(page_number, page_size, default_size=TEMPLATES_PAGE_SIZE_DEFAULT,
                                   max_size=TEMPLATES_PAGE_SIZE_MAX)
        with self._lock:
            matches = [t for t in self._templates.values()
                       if t.type == type
                       and (subtype is None or t.subtype == subtype)
                       and (not name or t.name == name)
                       and (not template_id or t.template_id == template_id)]
            matches.sort(key=lambda t: t.seq, reverse=order_by.endswith("Desc"))
            return [replace(t) for t in matches[start:start + size]], len(matches)

    def update_template(self, *, template_id: str | None, name: str | None = None,
                        template_config: Any = None) -> Template:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            template = self._template(template_id)
            config = None
            if template_config is not None:
                config, _ = self._validated_template_config(template_config, template.subtype)
            if name:
                template.name = name
            if config is not None:
                template.config = config
            template.modified_time = self._clock()
            return replace(template)

    def delete_template(self, *, template_id: str | None) -> None:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            self._template(template_id)
            del self._templates[template_id]

    def set_default_template(self, *, template_id: str | None) -> None:
        if not template_id:
            raise missing_parameter("TemplateId")
        with self._lock:
            chosen = self._template(template_id)
            for template in self._templates.values():
                if template.type == chosen.type and template.subtype == chosen.subtype:
                    template.is_default = template is chosen
            chosen.modified_time = self._clock()

    # ---- snapshot jobs ---------------------------------------------------------------------

    def parse_oss_media(self, field_name: str, value: Any) -> OssLocation:
        """Parse an ICE ``{"Type": "OSS", "Media": url}`` reference; errors name ``field_name``."""
        if value is None:
            raise missing_parameter(field_name)
        if not isinstance(value, dict):
            raise invalid_parameter(field_name, 'must be a JSON object {"Type": "OSS", "Media": "oss://bucket/object"}.')
        media_type, media = value.get("Type"), value.get("Media")
        if not media_type:
            raise missing_parameter(f"{field_name}.Type")
        if not media:
            raise missing_parameter(f"{field_name}.Media")
        if media_type == "Media":
            raise invalid_parameter(f"{field_name}.Type",
                                    "media asset IDs (Type=Media) are not emulated by the local ICE; use Type=OSS.")
        if media_type != "OSS":
            raise invalid_parameter(f"{field_name}.Type", f"must be OSS or Media, got {media_type!r}.")
        if not isinstance(media, str):
            raise invalid_parameter(f"{field_name}.Media", "must be a string.")
        match = _OSS_URI.match(media)
        if match:
            bucket, key = match["bucket"], match["key"]
        else:
            match = _OSS_HTTP.match(media)
            if not match:
                raise invalid_parameter(
                    f"{field_name}.Media",
                    f"must be oss://bucket/object or http(s)://bucket.oss-{self.region}.aliyuncs.com/object, "
                    f"got {media!r}.")
            if match["region"] != self.region:
                raise invalid_parameter(
                    f"{field_name}.Media",
                    f"the bucket is in region {match['region']}, not in the job's region {self.region}.")
            bucket, key = match["bucket"], unquote(match["key"])
        return OssLocation(type="OSS", media=media, bucket=bucket, object=key, location=f"oss-{self.region}")

    def submit_snapshot_job(self, *, input: Any, output: Any, template_config: Any, name: str | None = None,
                            user_data: str | None = None, schedule_config: Any = None) -> SnapshotJob:
        if input is None:
            raise missing_parameter("Input")
        if output is None:
            raise missing_parameter("Output")
        if template_config is None:
            raise missing_parameter("TemplateConfig")
        source = self.parse_oss_media("Input", input)
        target = self.parse_oss_media("Output", output)
        if not isinstance(template_config, dict):
            raise invalid_parameter("TemplateConfig", 'must be a JSON object {"TemplateId": "...", "OverwriteParams": {...}}.')
        template_id = template_config.get("TemplateId")
        if not template_id:
            raise missing_parameter("TemplateConfig.TemplateId")
        overwrite = template_config.get("OverwriteParams") or {}
        if not isinstance(overwrite, dict):
            raise invalid_parameter("TemplateConfig.OverwriteParams", "must be a JSON object.")
        pipeline_id = None
        if schedule_config is not None:
            if not isinstance(schedule_config, dict):
                raise invalid_parameter("ScheduleConfig", 'must be a JSON object {"PipelineId": "..."}.')
            pipeline_id = schedule_config.get("PipelineId")
        if user_data is not None and len(user_data.encode("utf-8")) > USER_DATA_MAX_BYTES:
            raise invalid_parameter("UserData", f"must be at most {USER_DATA_MAX_BYTES} bytes.")
        with self._lock:
            template = self._template(template_id)
            merged = _deep_merge(template.config, overwrite)
            try:
                params = engine.SnapshotParams.from_config(merged)
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
            effective = params.to_config()
            now = self._clock()
            job = SnapshotJob(job_id=uuid.uuid4().hex, name=name, type=effective.get("Type"), input=source,
                              output=target, template_id=template_id, params=params, pipeline_id=pipeline_id,
                              user_data=user_data, create_time=now, modified_time=now, seq=self._next_seq(),
                              count=int(effective.get("Count") or 0))
            self._jobs[job.job_id] = job
            return replace(job)

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
        order_by = order_by or "CreateTimeDesc"
        if order_by not in ("CreateTimeDesc", "CreateTimeAsc"):
            raise invalid_parameter("OrderBy", f"must be CreateTimeDesc or CreateTimeAsc, got {order_by!r}.")
        _, size = _page_bounds(None, page_size, default_size=JOBS_PAGE_SIZE_DEFAULT, max_size=JOBS_PAGE_SIZE_MAX)
        with self._lock:
            jobs = [j for j in self._jobs.values()
                    if (not job_id or j.job_id == job_id)
                    and (status is None or j.status == status)
                    and (start_of_create_time is None or j.create_time >= start_of_create_time)
                    and (end_of_create_time is None or j.create_time <= end_of_create_time)]
            jobs.sort(key=lambda j: j.seq, reverse=order_by == "CreateTimeDesc")
            start = 0
            if next_page_token:
                ids = [j.job_id for j in jobs]
                if next_page_token not in ids:
                    raise invalid_parameter("NextPageToken", "is unknown or no longer valid for these filters.")
                start = ids.index(next_page_token)
            page = jobs[start:start + size]
            token = jobs[start + size].job_id if start + size < len(jobs) else None
            return [replace(j) for j in page], token

    def find_job(self, job_id: str) -> SnapshotJob | None:
        """A copy of the job, or None when there is none (e.g. after a reset)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return replace(job) if job else None

    def complete_job(self, job_id: str, *, snapshot_keys: list[str], count: int, vtt_key: str | None) -> SnapshotJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            now = self._clock()
            job.status, job.snapshot_keys, job.count, job.vtt_key = "Success", list(snapshot_keys), count, vtt_key
            job.finish_time = job.modified_time = now
            return replace(job)

    def fail_job(self, job_id: str, *, code: str, message: str) -> SnapshotJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            now = self._clock()
            job.status, job.code, job.message, job.count = "Fail", code, message, 0
            job.finish_time = job.modified_time = now
            return replace(job)

    def snapshot_urls(self, *, job_id: str | None, page_number: int | None = None, page_size: int | None = None,
                      order_by: str | None = None, timeout: int | None = None) -> UrlPage:
        order_by = order_by or "Asc"
        if order_by not in ("Asc", "Desc"):
            raise invalid_parameter("OrderBy", f"must be Asc or Desc, got {order_by!r}.")
        timeout = URLS_TIMEOUT_DEFAULT_S if timeout is None else timeout
        if not 1 <= timeout <= URLS_TIMEOUT_MAX_S:
            raise invalid_parameter("Timeout", f"must be between 1 and {URLS_TIMEOUT_MAX_S} seconds, got {timeout}.")
        start, size = _page_bounds(page_number, page_size, default_size=10, max_size=URLS_PAGE_SIZE_MAX)
        with self._lock:
            job = self._job(job_id)
            if job.status != "Success":
                raise invalid_parameter("JobId", f"the job is in status {job.status}; snapshot URLs exist only "
                                                 "for jobs in status Success.")
            keys = job.snapshot_keys if order_by == "Asc" else job.snapshot_keys[::-1]
            return UrlPage(bucket=job.output.bucket, keys=keys[start:start + size], total=len(keys),
                           vtt_key=job.vtt_key, timeout_s=timeout)

    # ---- event callback --------------------------------------------------------------------

    def set_event_callback(self, *, callback_type: str | None, callback_url: str | None = None,
                           callback_queue_name: str | None = None, event_type_list: str | None = None,
                           auth_switch: str | None = None, auth_key: str | None = None) -> EventCallback:
        if not callback_type:
            raise missing_parameter("CallbackType")
        if callback_type not in ("HTTP", "MNS"):
            raise invalid_parameter("CallbackType", f"must be HTTP or MNS, got {callback_type!r}.")
        if callback_type == "HTTP":
            if not callback_url:
                raise missing_parameter("CallbackURL")
            if not re.match(r"^https?://[^/\s]+", callback_url):
                raise invalid_parameter("CallbackURL", "must be an http:// or https:// URL.")
            if len(callback_url.encode("utf-8")) > CALLBACK_URL_MAX_BYTES:
                raise invalid_parameter("CallbackURL", f"must be at most {CALLBACK_URL_MAX_BYTES} bytes.")
        else:
            if not callback_queue_name:
                raise missing_parameter("CallbackQueueName")
            if not callback_queue_name.startswith("ice-callback-"):
                raise invalid_parameter("CallbackQueueName", 'must start with "ice-callback-".')
        auth_switch = auth_switch or "off"
        if auth_switch not in ("on", "off"):
            raise invalid_parameter("AuthSwitch", f"must be on or off, got {auth_switch!r}.")
        if auth_key is not None:
            if not (0 < len(auth_key) <= AUTH_KEY_MAX_CHARS and re.search(r"[A-Z]", auth_key)
                    and re.search(r"[a-z]", auth_key) and re.search(r"[0-9]", auth_key)):
                raise invalid_parameter("AuthKey", f"must be 1 to {AUTH_KEY_MAX_CHARS} characters and contain "
                                                   "upper-case letters, lower-case letters and digits.")
        with self._lock:
            if auth_key is None and callback_type == "HTTP":
                auth_key = self._event_callback.auth_key
            if auth_switch == "on" and callback_type == "HTTP" and not auth_key:
                raise missing_parameter("AuthKey")
            self._event_callback = EventCallback(
                callback_type=callback_type,
                callback_url=callback_url if callback_type == "HTTP" else None,
                callback_queue_name=callback_queue_name if callback_type == "MNS" else None,
                event_type_list=event_type_list, auth_switch=auth_switch, auth_key=auth_key)
            return self._event_callback

    def get_event_callback(self) -> EventCallback:
        with self._lock:
            return self._event_callback

    def callback_target(self, job: SnapshotJob) -> CallbackTarget | None:
        """Where ``job``'s completion event goes, or None when nobody asked for one."""
        with self._lock:
            setting = self._event_callback
        auth_key = setting.auth_key if setting.callback_type == "HTTP" and setting.auth_switch == "on" else None
        notify = None
        try:
            user_data = json.loads(job.user_data) if job.user_data else None
        except ValueError:
            user_data = None
        if isinstance(user_data, dict) and isinstance(user_data.get("NotifyAddress"), str):
            notify = user_data["NotifyAddress"]
        if notify and re.match(r"^https?://", notify):
            return CallbackTarget("HTTP", notify, auth_key)
        if notify and notify.startswith("ice-callback-"):
            return CallbackTarget("MNS", notify, None)
        if setting.callback_type == "HTTP" and setting.callback_url and setting.admits(SNAPSHOT_EVENT):
            return CallbackTarget("HTTP", setting.callback_url, auth_key)
        if setting.callback_type == "MNS" and setting.callback_queue_name and setting.admits(SNAPSHOT_EVENT):
            return CallbackTarget("MNS", setting.callback_queue_name, None)
        return None
