"""Settings: one frozen object built once from the environment.

No other module reads ``os.environ``. Every missing or malformed variable is reported
in one error, so a misconfigured deployment fails on its first invocation with a message
that names everything to fix.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_VIDEO_SUFFIXES = (
    ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mts", ".m2ts",
    ".mpg", ".mpeg", ".wmv", ".3gp",
)
SNAPSHOT_TYPES = ("Normal", "Sprite", "WebVtt")


class SettingsError(ValueError):
    """The environment does not describe a usable configuration; the message names every problem."""


@dataclass(frozen=True)
class Settings:
    region: str
    ice_endpoint: str
    ice_protocol: str
    oss_endpoint: str
    output_bucket: str | None
    output_prefix: str
    template_id: str | None
    snapshot_type: str
    overwrite_params: Mapping[str, object]
    pipeline_id: str | None
    callback_url: str | None
    callback_auth_key: str | None = field(repr=False)
    callback_auth_key_previous: str | None = field(repr=False)
    video_suffixes: tuple[str, ...]
    url_timeout_s: int
    reconcile_window_s: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        problems: list[str] = []

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "")
            value = value.strip()
            return value if value else default

        region = get("REGION") or get("FC_REGION") or get("ALIBABA_CLOUD_REGION_ID")
        if not region:
            problems.append("REGION is not set (the Alibaba Cloud region, e.g. cn-shanghai)")
            region = ""

        protocol = (get("ICE_PROTOCOL", "https") or "https").lower()
        if protocol not in ("http", "https"):
            problems.append(f"ICE_PROTOCOL must be http or https, not {protocol!r}")

        prefix = get("OUTPUT_PREFIX", "snapshots/") or "snapshots/"
        if prefix.startswith("/"):
            problems.append(f"OUTPUT_PREFIX must not start with '/': {prefix!r}")
        if not prefix.endswith("/"):
            prefix += "/"

        snapshot_type = get("SNAPSHOT_TYPE", "Normal")
        if snapshot_type not in SNAPSHOT_TYPES:
            problems.append(f"SNAPSHOT_TYPE must be one of {', '.join(SNAPSHOT_TYPES)}, not {snapshot_type!r}")

        overwrite: dict = {}
        raw_overwrite = get("SNAPSHOT_OVERWRITE_PARAMS")
        if raw_overwrite:
            try:
                overwrite = json.loads(raw_overwrite)
            except json.JSONDecodeError as exc:
                problems.append(f"SNAPSHOT_OVERWRITE_PARAMS is not valid JSON: {exc}")
            else:
                if not isinstance(overwrite, dict):
                    problems.append("SNAPSHOT_OVERWRITE_PARAMS must be a JSON object")
                    overwrite = {}

        suffixes = DEFAULT_VIDEO_SUFFIXES
        raw_suffixes = get("VIDEO_SUFFIXES")
        if raw_suffixes:
            suffixes = tuple(
                s if s.startswith(".") else "." + s
                for s in (part.strip().lower() for part in raw_suffixes.split(","))
                if s
            )
            if not suffixes:
                problems.append("VIDEO_SUFFIXES lists no suffix")

        url_timeout = 3600
        raw_timeout = get("SNAPSHOT_URL_TIMEOUT")
        if raw_timeout:
            try:
                url_timeout = int(raw_timeout)
            except ValueError:
                problems.append(f"SNAPSHOT_URL_TIMEOUT must be an integer, not {raw_timeout!r}")
            else:
                if not 1 <= url_timeout <= 129600:
                    problems.append("SNAPSHOT_URL_TIMEOUT must be between 1 and 129600 seconds")

        window = 86400
        raw_window = get("RECONCILE_WINDOW_HOURS")
        if raw_window:
            try:
                window = int(float(raw_window) * 3600)
            except ValueError:
                problems.append(f"RECONCILE_WINDOW_HOURS must be a number, not {raw_window!r}")
            else:
                if window <= 0:
                    problems.append("RECONCILE_WINDOW_HOURS must be positive")

        callback_url = get("CALLBACK_URL")
        if callback_url and not callback_url.startswith(("http://", "https://")):
            problems.append(f"CALLBACK_URL must be an http(s) URL, not {callback_url!r}")

        if problems:
            raise SettingsError("invalid configuration: " + "; ".join(problems))

        return cls(
            region=region,
            ice_endpoint=get("ICE_ENDPOINT") or f"ice.{region}.aliyuncs.com",
            ice_protocol=protocol,
            oss_endpoint=get("OSS_ENDPOINT") or f"https://oss-{region}-internal.aliyuncs.com",
            output_bucket=get("OUTPUT_BUCKET"),
            output_prefix=prefix,
            template_id=get("SNAPSHOT_TEMPLATE_ID"),
            snapshot_type=snapshot_type,
            overwrite_params=overwrite,
            pipeline_id=get("PIPELINE_ID"),
            callback_url=callback_url,
            callback_auth_key=get("ICE_CALLBACK_AUTH_KEY"),
            callback_auth_key_previous=get("ICE_CALLBACK_AUTH_KEY_PREVIOUS"),
            video_suffixes=suffixes,
            url_timeout_s=url_timeout,
            reconcile_window_s=window,
        )

    def require(self, *names: str) -> "Settings":
        """Fail with one message naming every setting a code path needs but does not have."""
        env_names = {
            "template_id": "SNAPSHOT_TEMPLATE_ID",
            "callback_url": "CALLBACK_URL",
            "callback_auth_key": "ICE_CALLBACK_AUTH_KEY",
            "output_bucket": "OUTPUT_BUCKET",
        }
        missing = [env_names.get(n, n) for n in names if not getattr(self, n)]
        if missing:
            raise SettingsError("missing required setting(s): " + ", ".join(missing))
        return self
