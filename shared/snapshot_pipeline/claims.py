"""Exactly one job per upload: claims in OSS, created with ``x-oss-forbid-overwrite``.

An upload is identified by (bucket, key, etag, Last-Modified). Before submitting, an attempt *claims* the
upload by creating ``<OUTPUT_PREFIX>_claims/<id>/<generation>.json``; OSS lets exactly one
of concurrent creators succeed. After submitting it records the JobId in that claim.

- Before the first claim, a pending marker (:mod:`.pending`) notes the upload as unsettled, so the
  reconciler finds it without listing every claim ever written.
- A claim with a JobId: the upload is done; later deliveries skip it.
- A claim without a JobId that has not expired: another attempt is working on it; this
  attempt raises :class:`ClaimBusy` so Function Compute retries it later.
- A claim without a JobId that has expired: its owner crashed before submitting. The next
  attempt takes over by creating the *next generation* (again forbid-overwrite, so exactly
  one taker wins). The taker first looks for a job the crashed owner may have created (see
  :meth:`.submit.Submitter.find_submitted_job`) and adopts it.
- A claim whose owner is this attempt (the same request id: Function Compute retries an
  invocation under its request id) is this attempt's own, though the answer to its creation was lost.
- A job that failed for a transient reason (:func:`transient_failure`) is retried: the next
  generation is created with the next ``attempt`` number and a lease that runs out at the retry
  time, so whoever comes next (the reconciler, a redelivery) submits it then.

A claim's lease is the function's timeout plus a margin for clock skew, and its owner
submits only while the lease has more than :data:`SUBMIT_MARGIN_S` left: Function Compute
stops an invocation at its timeout, so an owner is never still working when its claim
expires, and a claim never blocks forever.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .domain import DEFAULT_PROFILE, ClaimState, Upload, iso
from .pending import PendingMarkers
from .ports import ObjectStore

CLAIMS_DIR = "_claims/"
CLOCK_SKEW_S = 30.0
SUBMIT_MARGIN_S = 15.0
#: A job that fails for a transient reason is submitted at most this many times in all.
MAX_JOB_ATTEMPTS = 3
#: The pause before the n-th retry is RETRY_BASE_S * 2**(n-1).
RETRY_BASE_S = 60.0
#: Job error codes that say the service or its storage failed, not the request: worth retrying.
TRANSIENT_CODE_PARTS = ("InternalError", "ServiceUnavailable", "Timeout", "Throttling", "IOError",
                        "Output.Write", "WriteFailed", "NetworkError", "Unknown")


def transient_failure(code: str | None) -> bool:
    """Whether a failed job's code names a server-side or I/O failure (retry) rather than a bad
    request or input (final at once). Unknown codes are final: retrying them could repeat forever."""
    return code is not None and any(part in code for part in TRANSIENT_CODE_PARTS)


def job_name(upload: Upload, attempt: int = 1) -> str:
    """A short deterministic name: the same upload (and attempt) always yields the same job name, so
    the job a lost answer created can be found again (:meth:`.submit.Submitter.find_submitted_job`),
    and a callback that comes before the claim records the JobId still knows whose job it is. Each
    profile's job has its own name (the profile ``default`` keeps the name jobs had before profiles)."""
    identity = f"{upload.bucket}/{upload.key}/{upload.etag}/{upload.version}"
    if upload.profile != DEFAULT_PROFILE:
        identity += f"/{upload.profile}"
    digest = hashlib.sha1(identity.encode()).hexdigest()[:20]
    return f"snap-{digest}" + (f"-{attempt}" if attempt > 1 else "")


class ClaimBusy(RuntimeError):
    """Another attempt holds the claim; retry after it expires or completes."""


class ClaimLost(RuntimeError):
    """The claim expired before this attempt could submit: a newer attempt owns the upload."""


@dataclass(frozen=True)
class Claim:
    upload: Upload
    object_key: str
    generation: int
    doc: dict[str, Any]
    resumed: bool = False  # an existing claim of this owner's, returned again (see Claims.acquire)

    @property
    def job_id(self) -> str | None:
        job_id = self.doc.get("job_id")
        return job_id if isinstance(job_id, str) and job_id else None

    @property
    def state(self) -> ClaimState:
        try:
            return ClaimState(self.doc.get("state", ClaimState.CLAIMED))
        except ValueError:
            return ClaimState.CLAIMED

    @property
    def owner(self) -> str | None:
        owner = self.doc.get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def attempt(self) -> int:
        """Which submission of the upload this claim is for (1 unless a transient failure was retried)."""
        value = self.doc.get("attempt", 1)
        return value if isinstance(value, int) and value >= 1 else 1

    @property
    def first_claimed_at(self) -> float:
        """When the upload's first claim was taken: jobs of earlier attempts are created after it."""
        return float(self.doc.get("first_claimed_at", self.doc.get("claimed_at", 0)))

    @property
    def expires_at(self) -> float:
        return float(self.doc.get("expires_at", 0))

    @property
    def settled(self) -> bool:
        """The upload is done with: its job exists, or its failure is recorded. Nothing more to submit."""
        return self.job_id is not None or self.state in (ClaimState.SUBMITTED, ClaimState.FAILED)

    def live(self, now: float) -> bool:
        """Unsettled and within its lease: its owner may still be submitting, so nobody else may."""
        return not self.settled and self.expires_at > now

    @staticmethod
    def generation_of(object_key: str) -> int:
        """The generation a claim object's key names (``.../000002.json`` is 2)."""
        return int(object_key.rsplit("/", 1)[-1].split(".")[0])


def _next_attempt(previous: Claim | None) -> int:
    """A taker continues the abandoned attempt (its job may exist under that attempt's name); a
    claim superseding a settled one (an operator's retry) is a new attempt, with a new job name."""
    if previous is None:
        return 1
    return previous.attempt + 1 if previous.settled else previous.attempt


class Claims:
    def __init__(self, store: ObjectStore, bucket: str, output_prefix: str, *, lease_s: float,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.bucket = bucket
        self.root = f"{output_prefix}{CLAIMS_DIR}"
        self.pending = PendingMarkers(store, bucket, output_prefix, clock)
        self.lease_s = lease_s + CLOCK_SKEW_S
        self.clock = clock

    def _dir(self, upload_id: str) -> str:
        return f"{self.root}{upload_id}/"

    def latest(self, upload: Upload) -> Claim | None:
        found = self._latest_doc(upload.id)
        return None if found is None else Claim(upload, found[0], Claim.generation_of(found[0]), found[1])

    def latest_by_id(self, upload_id: str) -> Claim | None:
        """The latest claim of the upload with this id (as a pending marker names it), its upload read
        from the claim; None when there is no claim or it names no object."""
        found = self._latest_doc(upload_id)
        upload = Upload.from_doc(found[1].get("source") or {}) if found is not None else None
        if found is None or upload is None:
            return None
        return Claim(upload, found[0], Claim.generation_of(found[0]), found[1])

    def _latest_doc(self, upload_id: str) -> tuple[str, dict[str, Any]] | None:
        generations = sorted(o.key for o in self.store.list(self.bucket, self._dir(upload_id)))
        if not generations:
            return None
        doc = self.store.get_json(self.bucket, generations[-1])
        return generations[-1], doc if isinstance(doc, dict) else {}

    def acquire(self, upload: Upload, owner: str, *, supersede: str | None = None,
                abandoned_by: str | None = None) -> Claim:
        """Claim the upload for ``owner``. Returns the claim: a fresh one (no ``job_id``) to submit
        under, or the existing one carrying the ``job_id`` when the upload was already submitted.

        ``supersede`` names a finished claim (its object key) that an operator chose to retry,
        because its job failed or ICE refused it: if it is still the latest, the next generation is
        created; if another attempt already superseded it, that attempt's claim is returned.
        ``abandoned_by`` names an owner known to be over (Function Compute gave up on it): its live
        claim is taken over at once (still one taker: the next generation is created forbid-overwrite).
        """
        self.pending.mark(upload)  # before the claim: no claim ever exists without its marker
        first = self._new_claim(upload, owner, 1)
        if first is not None:  # the common case, a first delivery: two requests, no listing
            return first
        for _ in range(5):
            current = self.latest(upload)
            if current is not None:
                if current.settled and current.object_key != supersede:
                    return current
                if current.owner == owner and not current.settled:
                    # ours: the answer to its creation was lost, or our invocation is retried
                    return replace(current, resumed=True)
                if current.live(self.clock()) and (abandoned_by is None or current.owner != abandoned_by):
                    raise ClaimBusy(f"upload is claimed by attempt {current.owner} until {iso(current.expires_at)}")
            claim = self._new_claim(upload, owner, current.generation + 1 if current else 1, previous=current)
            if claim is not None:
                return claim
        raise ClaimBusy("the claim changed hands too often; retry later")

    def _new_claim(self, upload: Upload, owner: str, generation: int, *, previous: Claim | None = None,
                   attempt: int | None = None, expires_at: float | None = None, **fields: Any) -> Claim | None:
        """Create generation ``generation`` of the upload's claim; None if it already exists."""
        now = self.clock()
        doc = {"schema": "snapshot-claim/1", "source": upload.to_doc(), "state": ClaimState.CLAIMED.value,
               "owner": owner, "generation": generation,
               "attempt": attempt or _next_attempt(previous),
               "first_claimed_at": previous.first_claimed_at if previous else now,
               "claimed_at": now, "expires_at": expires_at if expires_at is not None else now + self.lease_s,
               **fields}
        key = f"{self._dir(upload.id)}{generation:06d}.json"
        if self.store.create_json(self.bucket, key, doc):
            return Claim(upload, key, generation, doc)
        return None

    def schedule_retry(self, claim: Claim, failed_job_id: str, code: str | None) -> Claim | None:
        """After ``claim``'s job failed transiently: the next attempt's claim, leased until the retry
        time so that nobody submits before it. None when another attempt already moved on."""
        pause = RETRY_BASE_S * 2 ** (claim.attempt - 1)
        return self._new_claim(claim.upload, f"retry-of-{failed_job_id}", claim.generation + 1, previous=claim,
                               attempt=claim.attempt + 1, expires_at=self.clock() + pause,
                               retry_of={"job_id": failed_job_id, "code": code})

    def usable(self, claim: Claim) -> bool:
        """Whether the owner may still submit under this claim."""
        return claim.expires_at - self.clock() > SUBMIT_MARGIN_S

    def _finish(self, claim: Claim, **fields: Any) -> Claim:
        doc = dict(claim.doc, **fields, finished_at=self.clock())
        self.store.put_json(self.bucket, claim.object_key, doc)
        return Claim(claim.upload, claim.object_key, claim.generation, doc)

    def record_job(self, claim: Claim, job_id: str) -> Claim:
        return self._finish(claim, state=ClaimState.SUBMITTED.value, job_id=job_id)

    def record_failure(self, claim: Claim, code: str, message: str) -> Claim:
        return self._finish(claim, state=ClaimState.FAILED.value, error={"code": code, "message": message})

    def all_latest(self, since: float = 0.0) -> Iterator[Claim]:
        """The latest claim of every upload whose latest claim was written at or after ``since``
        (for the reconciler: one LIST, then a GET only for the claims of that window)."""
        by_upload: dict[str, tuple[str, float]] = {}
        for obj in self.store.list(self.bucket, self.root):
            upload_id = obj.key[len(self.root):].split("/", 1)[0]
            if obj.key > by_upload.get(upload_id, ("", 0.0))[0]:
                by_upload[upload_id] = (obj.key, obj.last_modified)
        for key, written in by_upload.values():
            if written < since:
                continue
            doc = self.store.get_json(self.bucket, key) or {}
            upload = Upload.from_doc(doc.get("source") or {})
            if upload is None:
                continue
            yield Claim(upload, key, Claim.generation_of(key), doc)
