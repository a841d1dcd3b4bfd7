"""What is not settled yet, and where the reconciler's last run stopped: so a run costs O(new work).

- **Pending markers.** ``<OUTPUT_PREFIX>_pending/<upload id>.json`` is created before an upload's
  claim (so no claim exists without one) and deleted when the version settles: its index is final
  (success or failure), it was refused, superseded or deleted. Listing ``_pending/`` finds every
  unsettled upload (claimed without a job, job not finished, retry scheduled) without listing the
  settled ones. A marker left by a redelivery of a settled upload is found settled and removed.
- **The cursor.** ``<OUTPUT_PREFIX>_reconcile/cursor.json`` records up to when jobs were listed;
  the next run lists only jobs created since then, less :data:`CURSOR_OVERLAP_S`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .domain import Upload, iso
from .ports import ObjectStore

PENDING_DIR = "_pending/"
CURSOR_KEY = "_reconcile/cursor.json"
#: Jobs are listed again this far before the cursor: ICE's create times and this clock may differ,
#: and a job submitted just before the last run's listing may have been listed only after it.
CURSOR_OVERLAP_S = 600.0


@dataclass(frozen=True)
class PendingUpload:
    """An unsettled upload as its marker names it: the upload id (which names its claims) and when marked."""

    upload_id: str
    marked_at: float


class PendingMarkers:
    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str, clock: Callable[[], float] = time.time):
        self.store = store
        self.bucket = bucket
        self.root = f"{output_prefix}{PENDING_DIR}"
        self.clock = clock

    def _key(self, upload_id: str) -> str:
        return f"{self.root}{upload_id}.json"

    def mark(self, upload: Upload) -> None:
        """Note ``upload`` as unsettled (idempotent: a marker that exists is kept)."""
        marker = {"source": upload.to_doc(), "marked_at": self.clock()}
        self.store.create_json(self.bucket, self._key(upload.id), marker)

    def settle(self, upload: Upload) -> None:
        """``upload`` needs nothing more: forget its marker (missing is no error)."""
        self.settle_id(upload.id)

    def settle_id(self, upload_id: str) -> None:
        self.store.delete_many(self.bucket, [self._key(upload_id)])

    def upload_of(self, pending: PendingUpload) -> Upload | None:
        """The upload a marker names (one GET; only needed when the upload has no claim)."""
        doc = self.store.get_json(self.bucket, self._key(pending.upload_id))
        return Upload.from_doc(doc.get("source") or {}) if isinstance(doc, dict) else None

    def all(self) -> Iterator[PendingUpload]:
        """Every unsettled upload, oldest marker key first (one LIST page per 1000)."""
        for obj in self.store.list(self.bucket, self.root):
            name = obj.key[len(self.root):]
            if name.endswith(".json") and "/" not in name:
                yield PendingUpload(name[:-len(".json")], obj.last_modified)


@dataclass(frozen=True)
class Cursor:
    """Where the last incremental run got to: jobs created before ``listed_until`` were all seen."""

    listed_until: float

    def to_doc(self) -> dict[str, Any]:
        return {"schema": "snapshot-reconcile-cursor/1", "listed_until": self.listed_until,
                "listed_until_iso": iso(self.listed_until)}


class CursorStore:
    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str):
        self.store = store
        self.bucket = bucket
        self.key = f"{output_prefix}{CURSOR_KEY}"

    def load(self) -> Cursor | None:
        doc = self.store.get_json(self.bucket, self.key)
        if not isinstance(doc, dict) or not isinstance(doc.get("listed_until"), (int, float)):
            return None
        return Cursor(float(doc["listed_until"]))

    def save(self, cursor: Cursor) -> None:
        self.store.put_json(self.bucket, self.key, cursor.to_doc())
