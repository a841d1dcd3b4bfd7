"""The console's JSON API: pages of uploads with their state, one video's page, its storyboard, uploads.

Every answer is built for one request from a few reads: a page of uploads is one ListObjectsV2 page
(``max-keys`` = the page size, resumed after the last key shown) and the state of each of its videos
(:func:`..audit.judge`, the rule ``snapshots audit`` applies), so 10,000 objects cost what 25 do.
Pictures and the video reach the page as short-lived signed URLs (:class:`UrlSigner`); no answer
carries a credential, an auth key or a secret.
"""
from __future__ import annotations

import mimetypes
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from .. import layout
from ..audit import DeadLetterRef, State, Verdict, judge, read_dead_letters
from ..claims import CLAIMS_DIR
from ..domain import ObjectInfo, OssLocation, Upload, iso
from ..index import indexed_source, is_tombstone, profile_result
from ..ports import Ice, ObjectStore
from ..publish import Publisher, unwatched_reason
from ..settings import Settings
from ..store import OssStore
from .results import profile_results, result_view, storyboard_vtt

#: Videos a page shows by default, and at most.
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
#: Objects one page view may read from the listing, skipped ones (outputs, other files) included.
MAX_SCANNED = 1000
#: How long the signed URLs the page gets stay valid.
URL_TTL_S = 900
#: How long the dead letters (one listing) are reused between page views.
DEAD_LETTERS_TTL_S = 10.0
#: The largest upload the console accepts (it holds the body in memory to PUT it).
MAX_UPLOAD_BYTES = 512 << 20


class ConsoleError(Exception):
    """A request the API refuses; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class UrlSigner:
    """Short-lived signed GET URLs for the objects the page shows, from the console's own OSS adapter
    (its credentials and bucket handles)."""

    def __init__(self, store: OssStore, ttl_s: int = URL_TTL_S):
        self._store = store
        self._ttl_s = ttl_s

    def __call__(self, bucket: str, key: str) -> str:
        return self._store.sign_get_url(bucket, key, self._ttl_s)


@dataclass(frozen=True)
class ConsoleConfig:
    source: OssLocation  # the bucket and prefix whose uploads the console lists
    allow_upload: bool = False


class ConsoleApi:
    """The answers of the console's API. ``adapters()`` gives ICE and OSS for one request."""

    def __init__(self, settings: Settings, adapters: Callable[[], tuple[Ice, ObjectStore]], sign: UrlSigner,
                 config: ConsoleConfig, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.adapters = adapters
        self.sign = sign
        self.config = config
        self.clock = clock
        self._letters: tuple[float, Mapping[tuple[str, str], list[DeadLetterRef]]] | None = None
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return self.config.source.bucket

    def about(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "prefix": self.config.source.key, "allow_upload": self.config.allow_upload,
                "page_size": PAGE_SIZE}

    # --- the uploads ------------------------------------------------------------------------------
    def uploads(self, query: str = "", after: str = "", limit: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the videos whose key starts with the prefix and then ``query``, after the key
        ``after``; ``next`` resumes the listing where this page stopped (None at its end)."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        prefix = self.config.source.key + query
        _, store = self.adapters()
        listing = islice(store.list(self.bucket, prefix, page_size=min(limit + 1, MAX_SCANNED),
                                    start_after=after), MAX_SCANNED)
        videos, last_scanned, more = self._page_of_videos(listing, limit)
        letters = self._dead_letters(store)
        with ThreadPoolExecutor(8) as pool:
            verdicts = list(pool.map(lambda info: self._verdict(info, letters), videos))
        items = [_row(info, verdict) for info, verdict in zip(videos, verdicts, strict=True)]
        return {"prefix": prefix, "after": after, "items": items, "next": last_scanned if more else None}

    def _page_of_videos(self, listing: Iterator[ObjectInfo], limit: int) -> tuple[list[ObjectInfo], str, bool]:
        """The first ``limit`` videos of ``listing``, the last key read, and whether anything follows."""
        s = self.settings
        videos: list[ObjectInfo] = []
        last, scanned = "", 0
        for info in listing:
            if len(videos) == limit:
                return videos, last, True
            last, scanned = info.key, scanned + 1
            if unwatched_reason(info.key, s.output_prefix, s.video_suffixes) is None and info.size > 0:
                videos.append(info)
        return videos, last, scanned == MAX_SCANNED

    def gone(self, query: str = "", after: str = "", limit: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the videos under the prefix that left the bucket while their index stayed:
        deleted (a tombstone) or orphaned (the deletion was never recorded), as the audit judges
        them. Paged over the output folder's listing: ``after`` and ``next`` are keys of it."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        base = f"{self.settings.output_prefix}{self.bucket}/"
        out_bucket = layout.output_bucket(self.settings.output_bucket, self.bucket)
        _, store = self.adapters()
        rows: list[dict[str, Any]] = []
        last, scanned = "", 0
        for obj in islice(store.list(out_bucket, base + self.config.source.key + query, start_after=after),
                          MAX_SCANNED):
            if len(rows) == limit:
                return {"items": rows, "after": after, "next": last}
            last, scanned = obj.key, scanned + 1
            key = _source_of_index(self.settings.output_prefix, self.bucket, obj.key)
            row = _gone_row(key, store.get_json(out_bucket, obj.key), partial(store.head, self.bucket, key)) \
                if key else None
            rows += [row] if row else []
        return {"items": rows, "after": after, "next": last if scanned == MAX_SCANNED else None}

    def _dead_letters(self, store: ObjectStore) -> Mapping[tuple[str, str], list[DeadLetterRef]]:
        with self._lock:
            if self._letters is None or self.clock() - self._letters[0] > DEAD_LETTERS_TTL_S:
                out_bucket = layout.output_bucket(self.settings.output_bucket, self.bucket)
                self._letters = (self.clock(), read_dead_letters(store, out_bucket, self.settings.output_prefix))
            return self._letters[1]

    def _verdict(self, info: ObjectInfo, letters: Mapping[tuple[str, str], list[DeadLetterRef]]) -> Verdict:
        """The state of the object ``info``, its index read here (a row of the uploads)."""
        ice, store = self.adapters()
        publisher = Publisher(self.settings, ice, store, self.clock)
        return self._judged(publisher, info, lambda location: publisher.current_index(location)[1], letters)

    def _judged(self, publisher: Publisher, info: ObjectInfo, index_of: Callable[[OssLocation], Any],
                letters: Mapping[tuple[str, str], list[DeadLetterRef]]) -> Verdict:
        """The state of the object ``info`` (:func:`..audit.judge`) from its index, ``index_of(location)``;
        its claim and its job are read only when the decision needs them."""
        upload = Upload.of_object(self.bucket, info)
        try:
            return judge(upload, index_of(upload.location),
                         cache(lambda: publisher.claims(upload.location).latest(upload)),
                         lambda job_id: publisher.ice.get_snapshot_job(job_id).status,
                         letters.get((self.bucket, info.key), ()), self.clock())
        except Exception as exc:  # one video's trouble shows on its row, the page still loads
            return Verdict(State.ERROR, " ".join(str(exc).split()))

    # --- one video --------------------------------------------------------------------------------
    def video(self, key: str) -> dict[str, Any]:
        """The video's page: its state, a signed URL of the source, each profile's pictures, the index,
        the versions kept in its folder and the attempts (claims) of its current version."""
        self._check_key(key)
        ice, store = self.adapters()
        source = OssLocation(self.bucket, key)
        info = store.head(self.bucket, key)
        publisher = Publisher(self.settings, ice, store, self.clock)
        location, index = publisher.current_index(source)
        verdict = self._judged(publisher, info, lambda _: index, self._dead_letters(store)) if info \
            else _verdict_of_gone(key, index)
        results = [result_view(name, result, self.sign, self._storyboard_url(key, name))
                   for name, result in profile_results(index)]
        return {"key": key, "bucket": self.bucket, **_verdict_doc(verdict),
                "size": info.size if info else None, "video_url": self.sign(self.bucket, key) if info else None,
                "results": results, "index": index, "index_key": location.key,
                "versions": self._versions(store, source),
                "attempts": self._attempts(store, Upload.of_object(self.bucket, info)) if info else []}

    def _storyboard_url(self, key: str, profile: str) -> str:
        return "/api/storyboard.vtt?" + urlencode({"key": key, "profile": profile})

    def _versions(self, store: ObjectStore, source: OssLocation) -> list[str]:
        folder = layout.object_dir(self.settings.output_prefix, source)
        out_bucket = layout.output_bucket(self.settings.output_bucket, source.bucket)
        return sorted((f[len(folder):].rstrip("/") for f in store.list_folders(out_bucket, folder)), reverse=True)

    def _attempts(self, store: ObjectStore, upload: Upload) -> list[dict[str, Any]]:
        """The claims of this version, oldest first: each attempt, its job and how it ended."""
        out_bucket = layout.output_bucket(self.settings.output_bucket, upload.bucket)
        folder = f"{self.settings.output_prefix}{CLAIMS_DIR}{upload.id}/"
        attempts = []
        for obj in sorted(store.list(out_bucket, folder), key=lambda o: o.key):
            doc = store.get_json(out_bucket, obj.key) or {}
            attempts.append({"attempt": doc.get("attempt", 1), "state": doc.get("state"), "job_id": doc.get("job_id"),
                             "claimed_at": iso(doc["claimed_at"]) if doc.get("claimed_at") else None,
                             "error": doc.get("error")})
        return attempts

    def storyboard(self, key: str, profile: str) -> bytes:
        """The player VTT of ``profile``'s storyboard, its images signed now."""
        self._check_key(key)
        ice, store = self.adapters()
        _, index = Publisher(self.settings, ice, store, self.clock).current_index(OssLocation(self.bucket, key))
        result = profile_result(index, profile)
        out_bucket = layout.output_bucket(self.settings.output_bucket, self.bucket)
        vtt = storyboard_vtt(result or {}, lambda k: store.get_json(out_bucket, k),
                             lambda k: self.sign(out_bucket, k))
        if vtt is None:
            raise ConsoleError(404, f"no storyboard for profile {profile!r} of {key!r}")
        return vtt

    # --- uploads ----------------------------------------------------------------------------------
    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Put a video under the prefix as ``name``: the bucket's notification starts the pipeline."""
        if not self.config.allow_upload:
            raise ConsoleError(403, "uploads are off (start the console with --allow-upload)")
        name = name.strip().lstrip("/")
        key = self.config.source.key + name
        if not name or unwatched_reason(key, self.settings.output_prefix, self.settings.video_suffixes):
            raise ConsoleError(400, f"not a video name this pipeline watches: {name!r}")
        if not data or len(data) > MAX_UPLOAD_BYTES:
            raise ConsoleError(400, f"a video of 1 byte to {MAX_UPLOAD_BYTES >> 20} MiB is expected")
        _, store = self.adapters()
        store.put_bytes(self.bucket, key, data, content_type=mimetypes.guess_type(name)[0] or "video/mp4")
        return {"key": key, "size": len(data)}

    def _check_key(self, key: str) -> None:
        if not key or not key.startswith(self.config.source.key):
            raise ConsoleError(404, f"not under the console's prefix {self.config.source.key!r}: {key!r}")


def _source_of_index(output_prefix: str, bucket: str, key: str) -> str | None:
    """The video whose index ``key`` is (in the natural layout), or None when ``key`` is no index."""
    base, suffix = f"{output_prefix}{bucket}/", "/" + layout.INDEX_FILE
    source = key[len(base):-len(suffix)] if key.startswith(base) and key.endswith(suffix) else ""
    return source if source and layout.index_key(output_prefix, OssLocation(bucket, source)) == key else None


def _gone_row(key: str, index: Any, head: Callable[[], ObjectInfo | None]) -> dict[str, Any] | None:
    """The row of a video whose index folder the listing showed, if the video is gone from the bucket."""
    if is_tombstone(index):
        return {"key": key, "state": str(State.DELETED), "reason": f"deleted at {index['deleted']}"}
    if indexed_source(index) is not None and head() is None:
        return {"key": key, "state": str(State.ORPHANED),
                "reason": "the object is gone but its index still shows snapshots: its deletion was never recorded"}
    return None


def _verdict_of_gone(key: str, index: Any) -> Verdict:
    """The state of a video that is not in the bucket: deleted, orphaned, or never there."""
    gone = _gone_row(key, index, lambda: None)
    return Verdict(State(gone["state"]), gone["reason"]) if gone else Verdict(State.MISSING, "no such object")


def _verdict_doc(verdict: Verdict) -> dict[str, Any]:
    doc = {"state": str(verdict.state), "reason": verdict.reason, "code": verdict.code, "job_id": verdict.job_id}
    return {k: v for k, v in doc.items() if v is not None}


def _row(info: ObjectInfo, verdict: Verdict) -> dict[str, Any]:
    return {"key": info.key, "size": info.size, "last_modified": iso(info.last_modified), **_verdict_doc(verdict)}
