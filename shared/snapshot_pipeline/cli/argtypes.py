"""argparse types: each turns one command-line string into a checked value, or says what is wrong."""
from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..domain import OssLocation

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _oss_location(value: str, *, key_required: bool) -> OssLocation:
    if not value.startswith("oss://"):
        raise argparse.ArgumentTypeError(f"expected oss://bucket/{'key' if key_required else 'prefix'}, got {value!r}")
    bucket, _, key = value[len("oss://"):].partition("/")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise argparse.ArgumentTypeError(f"{bucket!r} is not an OSS bucket name")
    if key_required and (not key or key.endswith("/")):
        raise argparse.ArgumentTypeError(f"{value!r} names no object (expected oss://bucket/key)")
    return OssLocation(bucket, key)


def object_uri(value: str) -> OssLocation:
    """``oss://bucket/key`` of one object."""
    return _oss_location(value, key_required=True)


def object_or_media_id(value: str) -> OssLocation | str:
    """``oss://bucket/key`` of one object, or the MediaId of an ICE media asset (letters and digits)."""
    if value.startswith("oss://"):
        return object_uri(value)
    if not _MEDIA_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected oss://bucket/key or a MediaId, got {value!r}")
    return value


def prefix_uri(value: str) -> OssLocation:
    """``oss://bucket/prefix`` (the prefix may be empty: the whole bucket)."""
    return _oss_location(value, key_required=False)


def point_in_time(value: str, *, now: Callable[[], float] = time.time) -> float:
    """A point in time: ``2026-11-24T03:00:00Z``, ``2026-11-24``, or an age such as ``90m``, ``6h``, ``7d``."""
    age = _AGE.match(value.strip())
    if age:
        return now() - float(age.group(1)) * _SECONDS_PER[age.group(2)]
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time: use 2026-11-24T03:00:00Z, 2026-11-24, or an age like 90m, 6h, 7d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (``what`` names the rule in errors)."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {number}")
        return number

    return parse


positive_int = int_at_least(1, "positive")
non_negative_int = int_at_least(0, "0 or more")


def rate(value: str) -> float:
    """Submissions per second: more than 0, at most 1000."""
    try:
        per_second = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < per_second <= 1000:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1000 per second, got {value}")
    return per_second


def json_object(value: str) -> dict[str, Any]:
    """A JSON object, e.g. a TemplateConfig or OverwriteParams."""
    try:
        doc = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return doc
