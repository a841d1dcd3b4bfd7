"""A backfill's checkpoint: the key up to which every object of its listing is settled.

Kept beside the claims (``<OUTPUT_PREFIX>_backfill/<sha256 of the source and options>.json``), so a
rerun after an interrupt lists from there (ListObjectsV2 ``start-after``) instead of repeating the
per-object checks of what it already settled. Objects are examined concurrently and finish in any
order: :class:`SettledFrontier` gives the highest key such that every key listed before it is settled.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .domain import OssLocation, iso
from .ports import ObjectStore

CHECKPOINT_SCHEMA = "snapshot-backfill-checkpoint/1"


def checkpoint_key(output_prefix: str, source: OssLocation, options: Mapping[str, Any]) -> str:
    """Where the checkpoint of a backfill of ``source`` with ``options`` lives: one per source and
    options that change what counts as settled (e.g. ``retry_failed``)."""
    identity = json.dumps({"source": source.uri, **options}, sort_keys=True)
    return f"{output_prefix}_backfill/{hashlib.sha256(identity.encode('utf-8')).hexdigest()}.json"


class Checkpoint:
    """The checkpoint object of one backfill: :meth:`load` it, :meth:`save` progress, :meth:`clear` it
    once a run has settled the whole listing (a later backfill checks every object again)."""

    def __init__(self, store: ObjectStore, bucket: str, key: str, source: OssLocation, *,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.bucket = bucket
        self.key = key
        self.source = source
        self.clock = clock

    def load(self) -> str | None:
        """The key up to which the last run settled everything, or None (no checkpoint)."""
        doc = self.store.get_json(self.bucket, self.key)
        if not isinstance(doc, dict) or doc.get("source") != self.source.uri:
            return None
        settled_through = doc.get("settled_through")
        return settled_through if isinstance(settled_through, str) and settled_through else None

    def save(self, settled_through: str) -> None:
        self.store.put_json(self.bucket, self.key, {"schema": CHECKPOINT_SCHEMA, "source": self.source.uri,
                                                    "settled_through": settled_through,
                                                    "updated_at": iso(self.clock())})

    def clear(self) -> None:
        self.store.delete_many(self.bucket, [self.key])


class SettledFrontier:
    """Keys started in listing order and finished in any order; :attr:`through` is the highest key
    such that it and every key started before it finished settled. Holds only the keys in flight
    (and those finished after the oldest one still in flight); once a key finishes unsettled the
    frontier stops there for good and forgets the rest."""

    def __init__(self) -> None:
        self._started: deque[str] = deque()
        self._finished: dict[str, bool] = {}
        self.through: str | None = None
        self.blocked = False

    def start(self, key: str) -> None:
        if not self.blocked:
            self._started.append(key)

    def finish(self, key: str, *, settled: bool) -> None:
        if self.blocked:
            return
        self._finished[key] = settled
        while self._started and self._started[0] in self._finished:
            oldest = self._started.popleft()
            if not self._finished.pop(oldest):
                self.blocked = True
                self._started.clear()
                self._finished.clear()
                return
            self.through = oldest
