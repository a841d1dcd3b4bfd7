"""Where a video's outputs live: one rule, used by submit, callback, reconciler and CLI.

``<OUTPUT_PREFIX><source key>/`` holds the snapshots and ``index.json``. OSS keys are at
most 1023 bytes: when that directory would not leave room for the longest output name, the
directory is ``<OUTPUT_PREFIX>_by-hash/<sha256 of bucket/key>/`` instead (the index records
the source key, so it stays findable).
"""
from __future__ import annotations

import hashlib

from .domain import OssLocation

MAX_KEY_BYTES = 1023
OUTPUT_FILE = {"Normal": "{Count}.jpg", "Sprite": "sprite-{TileCount}.jpg", "WebVtt": "storyboard.vtt"}
INDEX_FILE = "index.json"
_LONGEST_NAME = 40  # room for the longest file a job writes in the directory (engine names included)


def output_bucket(configured: str | None, source_bucket: str) -> str:
    """Where a source's outputs, index and claims go: ``OUTPUT_BUCKET`` when set, else the source's bucket."""
    return configured or source_bucket


def index_location(configured_bucket: str | None, output_prefix: str, source: OssLocation) -> OssLocation:
    """The index of the video ``source``, by this layout."""
    return OssLocation(output_bucket(configured_bucket, source.bucket),
                       index_key(output_prefix, source.bucket, source.key))


def output_dir(output_prefix: str, source_bucket: str, source_key: str) -> str:
    natural = f"{output_prefix}{source_key}/"
    if len(natural.encode("utf-8")) + _LONGEST_NAME <= MAX_KEY_BYTES:
        return natural
    digest = hashlib.sha256(f"{source_bucket}/{source_key}".encode()).hexdigest()
    return f"{output_prefix}_by-hash/{digest}/"


def output_location(output_bucket: str, output_prefix: str, snapshot_type: str, source_bucket: str,
                    source_key: str) -> OssLocation:
    return OssLocation(output_bucket, output_dir(output_prefix, source_bucket, source_key) + OUTPUT_FILE[snapshot_type])


def index_key(output_prefix: str, source_bucket: str, source_key: str) -> str:
    return output_dir(output_prefix, source_bucket, source_key) + INDEX_FILE
