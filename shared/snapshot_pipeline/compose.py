"""One index from many profiles' results, under concurrent writers, without losing any.

Each (version, profile) result is written to its own object, ``<version>/_results/<profile>.json``
(:func:`.layout.result_key`), by that profile's publisher only. The index is then *composed*: every
result of the version is listed and read, and the index written from them. After writing, the writer
lists the results again and composes once more if the set it sees (keys and ETags) is not the set it
wrote. So the index converges: take the last index write; its writer's second listing came after
it and matched what it composed; any result written before that listing is in it, and a result
written after it would have been followed by its own writer's later index write, which contradicts
"last". A writer that dies between its result and its index write keeps its pending marker (settled
only after the index), so the reconciler publishes that job again. (OSS LIST and GET are strongly
consistent, which this relies on.)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import layout
from .domain import Upload
from .index import compose_index, source_doc
from .log import log
from .ports import ObjectStore

#: How often a writer composes again because results kept arriving, before leaving it to their writers.
MAX_COMPOSITIONS = 5

#: What a writer composed from: the results' (key, ETag) pairs, as listed.
Listing = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Composed:
    doc: dict[str, Any]
    listing: Listing


class IndexComposer:
    """Reads and writes one version's results, and composes its index from them."""

    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str):
        self.store = store
        self.bucket = bucket
        self.output_prefix = output_prefix

    def write_result(self, upload: Upload, result: Mapping[str, Any]) -> str:
        """Write ``upload.profile``'s result for ``upload``'s version; returns its key. The one place a
        profile's result is written (the player files and webhooks attach here)."""
        key = layout.result_key(self.output_prefix, upload)
        self.store.put_json(self.bucket, key, dict(result))
        return key

    def listing(self, upload: Upload) -> Listing:
        """The results of ``upload``'s version as they are now (one LIST)."""
        folder = layout.results_dir(self.output_prefix, upload)
        return frozenset((obj.key, obj.etag) for obj in self.store.list(self.bucket, folder)
                         if obj.key.endswith(".json") and "/" not in obj.key[len(folder):])

    def compose(self, upload: Upload, size: int | None, now: float) -> Composed:
        """The index of ``upload``'s version from every result listed now."""
        listing = self.listing(upload)
        results: dict[str, Mapping[str, Any]] = {}
        for key, _ in sorted(listing):
            doc = self.store.get_json(self.bucket, key)
            if isinstance(doc, Mapping) and isinstance(doc.get("profile"), str):
                results[doc["profile"]] = doc
        return Composed(compose_index(source_doc(upload, size), results, now=now), listing)


def converged(composer: IndexComposer, upload: Upload, composed: Composed, attempt: int) -> bool:
    """Whether the index written from ``composed`` shows every result there is now; when results keep
    changing for :data:`MAX_COMPOSITIONS` rounds, True (their own writers compose after them)."""
    if composer.listing(upload) == composed.listing:
        return True
    if attempt + 1 >= MAX_COMPOSITIONS:
        log("publish.compose_left", bucket=upload.bucket, key=upload.key, version=upload.version,
            reason="results kept changing; their writers compose again")
        return True
    return False
