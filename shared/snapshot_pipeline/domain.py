"""The pipeline's vocabulary: locations, uploads, jobs, URLs, states and outcomes.

Plain frozen values shared by the logic (submit, callback, reconciler, backfill) and the adapters
(:mod:`.ice`, :mod:`.store`): nothing here does I/O or imports an SDK. States are enums, so a
misspelt state is an error rather than a silent mismatch.

ICE fields: https://www.alibabacloud.com/help/en/ims/developer-reference/api-ice-2020-11-09-getsnapshotjob
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import urlsplit


class StrEnum(str, Enum):
    """``enum.StrEnum`` for Python 3.10: members are their values (``JobStatus.SUCCESS == "Success"``)."""

    def __str__(self) -> str:
        return str(self.value)


class SnapshotType(StrEnum):
    """TemplateConfig ``Type``: stills, sprite sheets, or a WebVTT storyboard."""

    NORMAL = "Normal"
    SPRITE = "Sprite"
    WEBVTT = "WebVtt"


class JobStatus(StrEnum):
    """A snapshot job's ``Status``. ICE documents Init, Success and Fail; anything else it might send
    is kept as UNKNOWN (treated as not finished) rather than failing the parse."""

    INIT = "Init"
    SUCCESS = "Success"
    FAIL = "Fail"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: Any) -> JobStatus:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.FAIL)


class ClaimState(StrEnum):
    """Where an upload's claim stands (see :mod:`.claims`)."""

    CLAIMED = "claimed"  # an attempt owns the upload and has not submitted yet
    SUBMITTED = "submitted"  # the job exists; its JobId is in the claim
    FAILED = "failed"  # ICE refused the job, or the source vanished: the failure is indexed


class OutcomeKind(StrEnum):
    """What happened to one uploaded object."""

    SUBMITTED = "submitted"  # a job was created for it
    DUPLICATE = "duplicate"  # an earlier attempt already settled it
    SKIPPED = "skipped"  # not a whole, new video (the reason says why)
    INVALID = "invalid"  # the event record itself was malformed
    REJECTED = "rejected"  # ICE refused the job; a failure index records it
    DELETED = "deleted"  # the object was deleted; its index is a tombstone
    RETRY = "retry"  # not settled now; the platform retries the invocation


def iso(ts: float) -> str:
    """An epoch time as ICE and the index write it: ``2026-11-24T03:00:00Z``."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_template_config(raw: Any) -> dict[str, Any]:
    """A TemplateConfig as ICE returns it (a JSON string, or already an object) as a dict; ``{}`` if unreadable."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    return raw if isinstance(raw, dict) else {}


@dataclass(frozen=True)
class OssLocation:
    bucket: str
    key: str  # for a job's output: the pattern, e.g. ".../{Count}.jpg"

    @property
    def uri(self) -> str:
        return f"oss://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, media: str, oss_file: Mapping[str, Any] | None = None) -> OssLocation | None:
        """``oss://bucket/key``, ``http(s)://bucket.oss-<region>.aliyuncs.com/key`` or an ``OssFile``
        object (``{"Bucket", "Object"}``) as a location; None when it names no OSS object."""
        if oss_file and oss_file.get("Bucket") and oss_file.get("Object"):
            return cls(oss_file["Bucket"], oss_file["Object"])
        if media.startswith("oss://"):
            bucket, _, key = media[len("oss://"):].partition("/")
            return cls(bucket, key) if bucket and key else None
        parts = urlsplit(media)
        host = parts.hostname or ""
        if parts.scheme in ("http", "https") and ".oss-" in host:
            return cls(host.split(".", 1)[0], parts.path.lstrip("/"))
        return None


@dataclass(frozen=True)
class ObjectInfo:
    """An object as HEAD or a listing describes it."""

    key: str
    size: int
    etag: str
    last_modified: float  # epoch seconds
    #: ``x-oss-meta-*`` as HEAD reports them (names without the prefix, lower case); empty from a listing.
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


#: The profile today's single-template settings are (see :mod:`.profiles`); it keeps the single-job names.
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Upload:
    """One uploaded version of a video, for one profile: the unit that gets exactly one job.

    A version is what HEAD says of the object: its ETag and its Last-Modified second. The same bytes
    written again (after a deletion, or copied over the key) are a new version with fresh snapshots.
    ``etag`` is empty and ``last_modified`` None when a job's UserData did not carry them (a source
    key too long for UserData; a job submitted before versions were recorded). ``profile`` names the
    output (:mod:`.profiles`) the job is for: it is part of the id (claims, pending markers) but not of
    the version (:meth:`same_version`); HEAD describes a version for the profile ``default``.
    """

    bucket: str
    key: str
    etag: str
    size: int | None = None
    last_modified: float | None = None  # epoch seconds, whole
    profile: str = DEFAULT_PROFILE
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> str:
        """The version's name: ``20261201T112104Z-<etag>``. Names sort by the time they were written."""
        if self.last_modified is None:
            return f"legacy-{self.etag.lower() or 'unknown'}"
        stamp = datetime.fromtimestamp(int(self.last_modified), timezone.utc).strftime(VERSION_TIME_FORMAT)
        return f"{stamp}-{self.etag.lower()}"

    @property
    def id(self) -> str:
        identity = f"{self.bucket}\n{self.key}\n{self.etag}"
        if self.last_modified is not None:
            identity += f"\n{int(self.last_modified)}"
        if self.profile != DEFAULT_PROFILE:  # the default profile keeps the ids claims had before profiles
            identity += f"\nprofile={self.profile}"
        return hashlib.sha256(identity.encode()).hexdigest()

    @property
    def location(self) -> OssLocation:
        return OssLocation(self.bucket, self.key)

    def for_profile(self, profile: str) -> Upload:
        """This version, as the unit of ``profile``'s job."""
        return replace(self, profile=profile)

    def same_version(self, other: Upload) -> bool:
        """Whether ``other`` is this version; a side that does not know its time compares by ETag only."""
        if self.etag != other.etag:
            return False
        return self.last_modified is None or other.last_modified is None or \
            int(self.last_modified) == int(other.last_modified)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "etag": self.etag or None}
        if self.last_modified is not None:
            doc["version"] = self.version
            doc["last_modified"] = iso(self.last_modified)
        if self.profile != DEFAULT_PROFILE:
            doc["profile"] = self.profile
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], *, bucket: str | None = None, key: str | None = None) -> Upload | None:
        """The upload a ``to_doc`` document names (``bucket``/``key`` fill in what it leaves out); None
        when it names no object."""
        bucket = doc.get("bucket") if isinstance(doc.get("bucket"), str) and doc.get("bucket") else bucket
        key = doc.get("key") if isinstance(doc.get("key"), str) and doc.get("key") else key
        if not bucket or not key:
            return None
        etag = doc["etag"] if isinstance(doc.get("etag"), str) else ""
        profile = doc["profile"] if isinstance(doc.get("profile"), str) and doc["profile"] else DEFAULT_PROFILE
        return cls(bucket, key, etag, last_modified=_version_time(doc.get("version")), profile=profile)

    @classmethod
    def of_object(cls, bucket: str, info: ObjectInfo) -> Upload:
        """The version of ``bucket``'s object that HEAD or a listing describes."""
        return cls(bucket, info.key, info.etag, info.size, float(int(info.last_modified)), metadata=info.metadata)


VERSION_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def _version_time(version: Any) -> float | None:
    """The Last-Modified time a version name carries, or None."""
    if not isinstance(version, str) or "-" not in version:
        return None
    try:
        return datetime.strptime(version.split("-", 1)[0], VERSION_TIME_FORMAT).replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class SnapshotJob:
    """A snapshot job as GetSnapshotJob (or, with fewer fields, ListSnapshotJobs) reports it."""

    job_id: str
    status: JobStatus
    type: str | None
    name: str | None
    code: str | None
    message: str | None
    template_id: str | None
    template_config: Mapping[str, Any]
    user_data: str | None
    input: OssLocation | None
    output: OssLocation | None
    count: int | None
    create_time: str | None
    submit_time: str | None
    finish_time: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @classmethod
    def from_map(cls, m: Mapping[str, Any]) -> SnapshotJob:
        inp, out = m.get("Input") or {}, m.get("Output") or {}
        return cls(
            job_id=m.get("JobId", ""),
            status=JobStatus.parse(m.get("Status")),
            type=m.get("Type"),
            name=m.get("Name"),
            code=m.get("Code") or None,
            message=m.get("Message") or None,
            template_id=m.get("TemplateId"),
            template_config=parse_template_config(m.get("TemplateConfig")),
            user_data=m.get("UserData"),
            input=OssLocation.parse(inp.get("Media", ""), inp.get("OssFile")),
            output=OssLocation.parse(out.get("Media", ""), out.get("OssFile")),
            count=m.get("Count"),
            create_time=m.get("CreateTime"),
            submit_time=m.get("SubmitTime"),
            finish_time=m.get("FinishTime"),
            raw=dict(m),
        )

    def source(self) -> Upload:
        """Where the video came from: the UserData the submitter wrote, else the job's Input."""
        src = self.user_data_doc().get("source")
        src = src if isinstance(src, Mapping) else {}
        upload = Upload.from_doc(src, bucket=self.input.bucket if self.input else None,
                                 key=self.input.key if self.input else None)
        if upload is None:
            raise ValueError(f"job {self.job_id} names no source: no UserData.source and no OSS Input")
        return upload

    def user_data_doc(self) -> Mapping[str, Any]:
        """The job's UserData as a JSON object; empty when it is not one."""
        try:
            data = json.loads(self.user_data or "")
        except (json.JSONDecodeError, RecursionError, ValueError):
            return {}
        return data if isinstance(data, Mapping) else {}


@dataclass(frozen=True)
class SnapshotUrls:
    total: int
    urls: tuple[str, ...]
    webvtt_url: str | None


@dataclass(frozen=True)
class SnapshotJobPage:
    jobs: tuple[SnapshotJob, ...]
    next_page_token: str | None


@dataclass(frozen=True)
class EventCallback:
    """The region's event-callback setting (GetEventCallback). The AuthKey is a secret: kept out of
    ``repr`` so it never reaches a log, and only ever compared, never shown."""

    callback_type: str | None  # HTTP | MNS, None when nothing is set
    callback_url: str | None
    callback_queue_name: str | None
    event_types: tuple[str, ...]  # empty: every event type
    auth_switch: str | None  # on | off
    auth_key: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Outcome:
    """The result of handling one object: what happened, to which object, and why."""

    bucket: str | None
    key: str | None
    outcome: OutcomeKind
    job_id: str | None = None
    reason: str | None = None
    profile: str | None = None  # the profile whose job this is about (None: the record as a whole)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(self).items() if v is not None}
