"""Settings: one frozen object built once from the environment.

No other module reads ``os.environ``. Every missing or malformed variable is reported
in one error, so a misconfigured deployment fails on its first invocation with a message
that names everything to fix. What a code path requires is asked for with a typed view
(:meth:`Settings.submission`, :meth:`Settings.callback`, :meth:`Settings.reconciliation`) whose
fields are not optional, so the type checker proves that nothing unset reaches the SDK.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .domain import SnapshotType
from .profiles import Profile, parse_profiles, single_profile

DEFAULT_VIDEO_SUFFIXES = (
    ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mts", ".m2ts",
    ".mpg", ".mpeg", ".wmv", ".3gp",
)
SNAPSHOT_TYPES = tuple(t.value for t in SnapshotType)
DEFAULT_URL_TIMEOUT_S = 3600
MAX_URL_TIMEOUT_S = 129600  # GetSnapshotUrls' maximum Timeout: 36 hours
DEFAULT_RECONCILE_WINDOW_S = 86400
#: The profiles file of a deployment that does not set SNAPSHOT_PROFILES: in the code folder, beside the
#: ``snapshot_pipeline`` package (a build's root; ``shared/`` when run from the sources).
PROFILES_FILE = Path(__file__).resolve().parent.parent / "profiles.json"

T = TypeVar("T")


class SettingsError(ValueError):
    """The environment does not describe a usable configuration; the message names every problem."""


@dataclass(frozen=True)
class SubmitSettings:
    """What submitting jobs needs: at least one profile, each with its template id."""

    profiles: tuple[Profile, ...]
    output_bucket: str | None  # None: the source bucket
    output_prefix: str
    pipeline_id: str | None
    callback_url: str | None
    video_suffixes: tuple[str, ...]


@dataclass(frozen=True)
class CallbackSettings:
    """What verifying ICE's callback needs: the URL ICE signs and the keys (current first)."""

    callback_url: str
    auth_keys: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class WebhookSettings:
    """Where index changes are POSTed and the secret that signs them (README, "Webhooks")."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class ReconcileSettings:
    """What the reconciler needs: the one output bucket it sweeps, and how to resubmit."""

    output_bucket: str
    window_s: int
    submit: SubmitSettings


class _Env:
    """Reads variables, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value if value else default

    def parsed(self, name: str, parse: Callable[[str], T], default: T) -> T:
        """``parse(value)`` of a set variable (its ValueError is the problem), else ``default``."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name} {exc}")
            return default


def _protocol(raw: str) -> str:
    if raw.lower() not in ("http", "https"):
        raise ValueError(f"must be http or https, not {raw!r}")
    return raw.lower()


def _output_prefix(raw: str) -> str:
    if raw.startswith("/"):
        raise ValueError(f"must not start with '/': {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def _snapshot_type(raw: str) -> SnapshotType:
    try:
        return SnapshotType(raw)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(SNAPSHOT_TYPES)}, not {raw!r}") from None


def _json_object(raw: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("must be a JSON object")
    return doc


def _suffixes(raw: str) -> tuple[str, ...]:
    parts = (part.strip().lower() for part in raw.split(","))
    suffixes = tuple(s if s.startswith(".") else "." + s for s in parts if s)
    if not suffixes:
        raise ValueError("lists no suffix")
    return suffixes


def _url_timeout(raw: str) -> int:
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, not {raw!r}") from None
    if not 1 <= seconds <= MAX_URL_TIMEOUT_S:
        raise ValueError(f"must be between 1 and {MAX_URL_TIMEOUT_S} seconds")
    return seconds


def _window_hours(raw: str) -> int:
    try:
        seconds = int(float(raw) * 3600)
    except ValueError:
        raise ValueError(f"must be a number, not {raw!r}") from None
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def _http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, not {raw!r}")
    return raw


def _public_base_url(raw: str) -> str:
    """A base URL the output bucket's keys are appended to: http(s), no query or fragment, ending in ``/``."""
    if not raw.startswith(("http://", "https://")) or "?" in raw or "#" in raw:
        raise ValueError(f"must be an http(s) URL without query or fragment, not {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def region_of(env: Mapping[str, str]) -> str | None:
    """The region: ``REGION``, else the one Function Compute or the credentials tooling sets."""
    for name in ("REGION", "FC_REGION", "ALIBABA_CLOUD_REGION_ID"):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class Settings:
    region: str
    ice_endpoint: str
    ice_protocol: str
    oss_endpoint: str
    output_bucket: str | None
    output_prefix: str
    template_id: str | None
    snapshot_type: SnapshotType
    overwrite_params: Mapping[str, object]
    pipeline_id: str | None
    callback_url: str | None
    callback_auth_key: str | None = field(repr=False)
    callback_auth_key_previous: str | None = field(repr=False)
    video_suffixes: tuple[str, ...]
    url_timeout_s: int
    reconcile_window_s: int
    #: A CDN or custom domain serving the output bucket: the player files' image URLs (storyboards.py).
    public_base_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    #: Every output the deployment makes (:mod:`.profiles`); empty when no template is configured.
    profiles: tuple[Profile, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, profiles_file: Path = PROFILES_FILE) -> Settings:
        e = _Env(os.environ if env is None else env)
        region = region_of(e.env) or ""
        if not region:
            e.problems.append("REGION is not set (the Alibaba Cloud region, e.g. cn-shanghai)")
        settings = cls(
            region=region,
            ice_endpoint=e.get("ICE_ENDPOINT") or f"ice.{region}.aliyuncs.com",
            ice_protocol=e.parsed("ICE_PROTOCOL", _protocol, "https"),
            oss_endpoint=e.get("OSS_ENDPOINT") or f"https://oss-{region}-internal.aliyuncs.com",
            output_bucket=e.get("OUTPUT_BUCKET"),
            output_prefix=e.parsed("OUTPUT_PREFIX", _output_prefix, "snapshots/"),
            template_id=e.get("SNAPSHOT_TEMPLATE_ID"),
            snapshot_type=e.parsed("SNAPSHOT_TYPE", _snapshot_type, SnapshotType.NORMAL),
            overwrite_params=e.parsed("SNAPSHOT_OVERWRITE_PARAMS", _json_object, {}),
            pipeline_id=e.get("PIPELINE_ID"),
            callback_url=e.parsed("CALLBACK_URL", _http_url, None),
            callback_auth_key=e.get("ICE_CALLBACK_AUTH_KEY"),
            callback_auth_key_previous=e.get("ICE_CALLBACK_AUTH_KEY_PREVIOUS"),
            video_suffixes=e.parsed("VIDEO_SUFFIXES", _suffixes, DEFAULT_VIDEO_SUFFIXES),
            url_timeout_s=e.parsed("SNAPSHOT_URL_TIMEOUT", _url_timeout, DEFAULT_URL_TIMEOUT_S),
            reconcile_window_s=e.parsed("RECONCILE_WINDOW_HOURS", _window_hours, DEFAULT_RECONCILE_WINDOW_S),
            public_base_url=e.parsed("PUBLIC_BASE_URL", _public_base_url, None),
            webhook_url=e.parsed("WEBHOOK_URL", _http_url, None),
            webhook_secret=e.get("WEBHOOK_SECRET"),
        )
        settings = replace(settings, profiles=_profiles(e, settings, profiles_file))
        if settings.webhook_url and not settings.webhook_secret:
            e.problems.append("WEBHOOK_SECRET is not set (WEBHOOK_URL is: every event is signed with it)")
        if e.problems:
            raise SettingsError("invalid configuration: " + "; ".join(e.problems))
        return settings

    # --- what each code path requires ------------------------------------------------------------
    def submission(self) -> SubmitSettings:
        """The settings a submission needs; SettingsError names SNAPSHOT_TEMPLATE_ID when it is unset
        (or the profiles whose template is not created yet)."""
        if not self.profiles:
            _required(("SNAPSHOT_TEMPLATE_ID", None))
        unresolved = [p.name for p in self.profiles if not p.template_id]
        if unresolved:
            raise SettingsError("profile(s) without a template_id: " + ", ".join(unresolved))
        return SubmitSettings(profiles=self.profiles, output_bucket=self.output_bucket,
                              output_prefix=self.output_prefix, pipeline_id=self.pipeline_id,
                              callback_url=self.callback_url, video_suffixes=self.video_suffixes)

    def callback(self) -> CallbackSettings:
        """The settings the callback needs: CALLBACK_URL and ICE_CALLBACK_AUTH_KEY are required."""
        url, key = _required(("CALLBACK_URL", self.callback_url), ("ICE_CALLBACK_AUTH_KEY", self.callback_auth_key))
        previous = (self.callback_auth_key_previous,) if self.callback_auth_key_previous else ()
        return CallbackSettings(callback_url=url, auth_keys=(key, *previous))

    def reconciliation(self) -> ReconcileSettings:
        """The settings the reconciler needs: OUTPUT_BUCKET (the bucket it sweeps) and a template."""
        bucket, *_ = _required(("OUTPUT_BUCKET", self.output_bucket),
                               *([] if self.profiles else [("SNAPSHOT_TEMPLATE_ID", None)]))
        return ReconcileSettings(output_bucket=bucket, window_s=self.reconcile_window_s, submit=self.submission())


    def webhook(self) -> WebhookSettings | None:
        """Where index changes are sent, signed; None when WEBHOOK_URL is not set (no events)."""
        if not self.webhook_url or not self.webhook_secret:
            return None
        return WebhookSettings(self.webhook_url, self.webhook_secret)


def profile_named(profiles: tuple[Profile, ...], name: str) -> Profile:
    """The profile called ``name``; SettingsError naming the ones there are."""
    for profile in profiles:
        if profile.name == name:
            return profile
    raise SettingsError(f"no profile {name!r} (profiles: {', '.join(p.name for p in profiles) or 'none'})")


def _profiles(e: _Env, single: Settings, profiles_file: Path) -> tuple[Profile, ...]:
    """SNAPSHOT_PROFILES, else the profiles file, else today's single template as the profile ``default``."""
    raw, where = e.get("SNAPSHOT_PROFILES"), "SNAPSHOT_PROFILES"
    if raw is None and profiles_file.is_file():
        raw, where = profiles_file.read_text(encoding="utf-8"), f"{profiles_file.name} (in the code folder)"
    if raw is None:
        return (single_profile(single.template_id, single.snapshot_type, single.overwrite_params),) \
            if single.template_id else ()
    single_names = [n for n in ("SNAPSHOT_TEMPLATE_ID", "SNAPSHOT_OVERWRITE_PARAMS") if e.get(n)]
    if single_names:
        e.problems.append(f"{', '.join(single_names)} must not be set with {where}: a profile says it")
    try:
        return parse_profiles(raw)
    except ValueError as exc:
        e.problems.append(f"{where} {exc}")
        return ()


def _required(*settings: tuple[str, str | None]) -> list[str]:
    """The values of ``(variable name, value)`` pairs; one SettingsError naming every unset one."""
    missing = [name for name, value in settings if not value]
    if missing:
        raise SettingsError("missing required setting(s): " + ", ".join(missing))
    return [value for _, value in settings if value]
