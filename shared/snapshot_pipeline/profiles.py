"""Profiles: the named outputs a deployment makes of every upload (a poster, thumbnails, a storyboard).

The setting is a JSON list, in ``SNAPSHOT_PROFILES`` or in ``profiles.json`` in the code folder:
``[{"name", "type", "template_id", "overrides", "prefixes", "suffixes", "poster"}]``. Each upload
version gets one job per profile that applies to its key (exactly once per version and profile: the
profile is part of the claimed unit, see :class:`.domain.Upload`). Without the setting, today's
``SNAPSHOT_TEMPLATE_ID``/``SNAPSHOT_TYPE``/``SNAPSHOT_OVERWRITE_PARAMS`` are one profile named
``default``; that profile keeps the single-job names (job Name, claim, outputs directly in the
version folder), so an upgrade neither resubmits nor moves anything.

:func:`parse_profiles` reports every problem of the list at once (as :mod:`.settings` does).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .domain import DEFAULT_PROFILE, SnapshotType

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_FIELDS = frozenset({"name", "type", "template_id", "template_config", "overrides", "prefixes", "suffixes",
                     "poster"})
#: The object metadata an uploader sets to choose the poster's time, in seconds (``x-oss-meta-poster-time``).
POSTER_TIME_METADATA = "poster-time"


@dataclass(frozen=True)
class Profile:
    """One named output. ``template_id`` is None only while ``template_config`` awaits its template
    (``python -m localcloud up --profiles`` creates it at start); a deployment's functions need ids."""

    name: str
    type: SnapshotType
    template_id: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    poster: bool = False
    template_config: Mapping[str, Any] | None = None

    def applies_to(self, key: str) -> bool:
        """Whether uploads at ``key`` get this profile's job: under one of its prefixes and ending with
        one of its suffixes (case-insensitive), each rule absent meaning every key."""
        lower = key.lower()
        return ((not self.prefixes or key.startswith(self.prefixes))
                and (not self.suffixes or lower.endswith(self.suffixes)))

    @property
    def takes_poster_time(self) -> bool:
        """Whether the uploader's poster time replaces this profile's Time: a profile marked
        ``"poster": true``, or one still (type Normal with ``"Count": 1`` in its overrides)."""
        return self.poster or (self.type == SnapshotType.NORMAL and self.overrides.get("Count") == 1)

    def overwrite_params(self, poster_time_ms: int | None) -> dict[str, Any]:
        """The job's OverwriteParams: the profile's Type and overrides, and the poster time if it takes it."""
        params: dict[str, Any] = {"Type": self.type.value, **self.overrides}
        if poster_time_ms is not None and self.takes_poster_time:
            params["Time"] = poster_time_ms
        return params

    def to_doc(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "template_id": self.template_id,
                "overrides": dict(self.overrides), "prefixes": list(self.prefixes),
                "suffixes": list(self.suffixes), "poster": self.poster}


def is_profile_name(name: str) -> bool:
    """Whether ``name`` may name a profile (and so its outputs' folder)."""
    return _NAME.match(name) is not None


def poster_time_ms(metadata: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The poster time an upload's metadata asks for, in milliseconds (TemplateConfig's unit), and why
    a value that is set cannot be used (None, None when it is not set)."""
    raw = metadata.get(POSTER_TIME_METADATA)
    if raw is None:
        return None, None
    try:
        seconds = float(raw)
    except ValueError:
        return None, f"x-oss-meta-{POSTER_TIME_METADATA} {raw!r} is not a number of seconds"
    if not math.isfinite(seconds) or seconds < 0:
        return None, f"x-oss-meta-{POSTER_TIME_METADATA} {raw!r} is not a time in the video"
    return int(round(seconds * 1000)), None


def single_profile(template_id: str | None, snapshot_type: SnapshotType,
                   overrides: Mapping[str, Any]) -> Profile:
    """Today's single-template settings as the profile ``default``."""
    return Profile(DEFAULT_PROFILE, snapshot_type, template_id, dict(overrides))


def parse_profiles(raw: str, *, require_template_ids: bool = True) -> tuple[Profile, ...]:
    """The profiles a JSON list declares; ValueError naming every problem. ``require_template_ids``:
    False where ``template_config`` may stand in (the local cloud creates those templates)."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc}") from None
    if not isinstance(doc, list) or not doc:
        raise ValueError("must be a non-empty JSON list of profiles")
    problems: list[str] = []
    profiles = [_profile(n, item, problems, require_template_ids) for n, item in enumerate(doc)]
    names = [item["name"] for item in doc if isinstance(item, dict) and isinstance(item.get("name"), str)]
    problems += [f"profile name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ValueError("has problems: " + "; ".join(problems))
    return tuple(p for p in profiles if p is not None)


def _profile(n: int, item: Any, problems: list[str], require_template_ids: bool) -> Profile | None:
    if not isinstance(item, dict):
        problems.append(f"profile {n} is not a JSON object")
        return None
    raw_name = item.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    where = f"profile {name!r}" if name else f"profile {n}"
    found: list[str] = []
    if not is_profile_name(name):
        found.append("name must be 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit")
    found += [f"unknown field {key!r}" for key in sorted(set(item) - _FIELDS)]
    kind = _type(item.get("type"), found)
    template_id, template_config = item.get("template_id"), item.get("template_config")
    if template_id is not None and template_config is not None:
        found.append("gives both template_id and template_config")
    elif template_config is not None and not isinstance(template_config, dict):
        found.append("template_config must be a JSON object (a TemplateConfig)")
    elif template_id is not None and (not isinstance(template_id, str) or not template_id):
        found.append("template_id must be a non-empty string")
    elif template_id is None and (require_template_ids or template_config is None):
        found.append("template_id is missing" + ("" if require_template_ids else " (or template_config)"))
    overrides = item.get("overrides", {})
    if not isinstance(overrides, dict):
        found.append("overrides must be a JSON object")
    prefixes, suffixes = _strings(item, "prefixes", found), _strings(item, "suffixes", found)
    poster = item.get("poster", False)
    if not isinstance(poster, bool):
        found.append("poster must be true or false")
    problems += [f"{where}: {problem}" for problem in found]
    if found or kind is None:
        return None
    return Profile(name, kind, template_id, overrides, prefixes, tuple(s.lower() for s in suffixes), poster,
                   template_config)


def _type(raw: Any, found: list[str]) -> SnapshotType | None:
    try:
        return SnapshotType(raw)
    except ValueError:
        found.append(f"type must be one of {', '.join(t.value for t in SnapshotType)}, not {raw!r}")
        return None


def _strings(item: Mapping[str, Any], name: str, found: list[str]) -> tuple[str, ...]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        found.append(f"{name} must be a list of non-empty strings")
        return ()
    return tuple(value)
