"""Where a video's outputs live: one rule, used by submit, callback, reconciler and CLI.

Each source object ``oss://<bucket>/<key>`` has one folder, ``<OUTPUT_PREFIX><bucket>/<key>/``:

- ``index.json`` there is the object's current index: one stable path a reader can always find;
- each uploaded version writes its snapshots under ``<version>/`` in that folder (see
  :attr:`.domain.Upload.version`: the time it was written and its ETag), so no two versions or
  buckets ever share an object name, and an output URL never changes content;
- in a version's folder, each profile's outputs are under ``<profile>/`` (the profile ``default``'s
  directly in it, as before profiles), and each profile's result under ``_results/<profile>.json``:
  what the index is composed from (:mod:`.compose`).

OSS keys are at most 1023 bytes: when the folder would not leave room for the version and the
longest output name, or when the key has segments a URL client normalises away (``.``, ``..``,
an empty one from ``//`` or a leading ``/``), the folder is ``<OUTPUT_PREFIX>_by-hash/<sha256 of
bucket/key>/`` instead (the index records the source, so it stays findable).

Indexes written before versioned outputs sat at ``<OUTPUT_PREFIX><key>/index.json`` beside
their snapshots: :func:`legacy_index_key` finds them, so they stay readable.
"""
from __future__ import annotations

import hashlib

from .domain import DEFAULT_PROFILE, OssLocation, Upload

MAX_KEY_BYTES = 1023
OUTPUT_FILE = {"Normal": "{Count}.jpg", "Sprite": "sprite-{TileCount}.jpg", "WebVtt": "storyboard.vtt"}
INDEX_FILE = "index.json"
HASHED_DIR = "_by-hash/"
RESULTS_DIR = "_results/"
#: Room for ``<version>/`` (a 16-byte time, an ETag of up to 32 hex digits plus a multipart suffix)
#: and the longest file a job writes in it (engine names included).
_LONGEST_SUFFIX = 64 + 40 + 33  # and a profile's folder
_UNSAFE_SEGMENTS = ("", ".", "..")


def output_bucket(configured: str | None, source_bucket: str) -> str:
    """Where a source's outputs, index and claims go: ``OUTPUT_BUCKET`` when set, else the source's bucket."""
    return configured or source_bucket


def _url_safe(key: str) -> bool:
    return not any(segment in _UNSAFE_SEGMENTS for segment in key.split("/"))


def object_dir(output_prefix: str, source: OssLocation) -> str:
    """The folder of one source object: its index and every version's outputs."""
    natural = f"{output_prefix}{source.bucket}/{source.key}/"
    if _url_safe(source.key) and len(natural.encode("utf-8")) + _LONGEST_SUFFIX <= MAX_KEY_BYTES:
        return natural
    digest = hashlib.sha256(f"{source.bucket}/{source.key}".encode()).hexdigest()
    return f"{output_prefix}{HASHED_DIR}{digest}/"


def index_key(output_prefix: str, source: OssLocation) -> str:
    """The stable key of a source object's current index."""
    return object_dir(output_prefix, source) + INDEX_FILE


def index_location(configured_bucket: str | None, output_prefix: str, source: OssLocation) -> OssLocation:
    """The index of the video ``source``, by this layout."""
    return OssLocation(output_bucket(configured_bucket, source.bucket), index_key(output_prefix, source))


def version_dir(output_prefix: str, upload: Upload) -> str:
    """The folder of one uploaded version's outputs (never shared, never rewritten with other content)."""
    return object_dir(output_prefix, upload.location) + upload.version + "/"


def profile_dir(output_prefix: str, upload: Upload) -> str:
    """The folder of ``upload.profile``'s outputs in the version's folder (the version's own for ``default``)."""
    own = "" if upload.profile == DEFAULT_PROFILE else upload.profile + "/"
    return version_dir(output_prefix, upload) + own


def output_location(output_bucket: str, output_prefix: str, snapshot_type: str, upload: Upload) -> OssLocation:
    """The Output pattern of the job for ``upload`` (its version, its profile)."""
    return OssLocation(output_bucket, profile_dir(output_prefix, upload) + OUTPUT_FILE[snapshot_type])


def results_dir(output_prefix: str, upload: Upload) -> str:
    """The folder of the profiles' results of ``upload``'s version (one LIST lists them all)."""
    return version_dir(output_prefix, upload) + RESULTS_DIR


def result_key(output_prefix: str, upload: Upload) -> str:
    """Where ``upload.profile``'s result for ``upload``'s version is written."""
    return results_dir(output_prefix, upload) + upload.profile + ".json"


def version_of_dir_entry(object_folder: str, key: str) -> str | None:
    """The version whose outputs ``key`` (listed under ``object_folder``) is one of; None for the index."""
    rest = key[len(object_folder):]
    version, slash, _ = rest.partition("/")
    return version if slash else None


def profile_of_output(object_folder: str, key: str) -> str:
    """The profile whose output (pattern) ``key`` under ``object_folder`` is: the folder between the
    version and the file, or ``default`` for a file directly in the version's folder."""
    rest = key[len(object_folder):].split("/")
    return rest[1] if len(rest) == 3 else DEFAULT_PROFILE


def legacy_index_key(output_prefix: str, source: OssLocation) -> str:
    """Where an index written before versioned outputs sits (``<OUTPUT_PREFIX><key>/index.json``)."""
    natural = f"{output_prefix}{source.key}/"
    if len(natural.encode("utf-8")) + 40 <= MAX_KEY_BYTES:
        return natural + INDEX_FILE
    digest = hashlib.sha256(f"{source.bucket}/{source.key}".encode()).hexdigest()
    return f"{output_prefix}{HASHED_DIR}{digest}/{INDEX_FILE}"
