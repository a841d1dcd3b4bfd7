"""LocalIce: the local ICE endpoint the unmodified ``alibabacloud_ice20201109`` client talks to.

``Config(endpoint=ice.endpoint, protocol="http", access_key_id=..., access_key_secret=...)`` works
against it. It serves the API (``responses.py`` over ``models``) from a threaded HTTP server, runs
submitted snapshot jobs for real on a worker pool (input read by HTTP Range requests through an oss2
signed URL of the local OSS, frames cut by ``engine``, outputs written with oss2), delivers
completion callbacks with ICE's documented retry rule, and injects faults on demand.

Test controls, each a method here and a call of the admin endpoint (``admin.py``: not part of
ICE, no auth, loopback clients only, on the same port):

* Faults (``faults.py``, :meth:`LocalIce.set_faults`): throttling, 5xx, latency, lost or late
  answers (the work done, the response lost or slower than the client's read timeout), dropped
  callbacks, slow jobs and jobs that fail server-side with a given code.
* Held jobs (:meth:`LocalIce.hold_jobs`, :meth:`LocalIce.release_job`): jobs submitted while
  holding stay ``Init`` until released one by one, in any order. This models ICE finishing jobs
  late and out of submit order (a later upload's job done before an earlier one's).
* Redelivery (:meth:`LocalIce.redeliver_callback`): a finished job's completion event posted
  again, as ICE's retries and a replayed or duplicated message deliver it.
* The delivery log (:meth:`LocalIce.deliveries`) and :meth:`LocalIce.reset` (clears jobs,
  templates, the event-callback setting, faults, holds and the delivery log).
* Scale: :meth:`LocalIce.bulk_load_jobs` (finished jobs added at once), instant jobs
  (``instant_jobs=True``, :meth:`LocalIce.set_instant_jobs`: placeholders, see ``instant.py``) and
  :meth:`LocalIce.request_counts` (API calls per action since the last ``reset_request_counts``).

Constructor knobs beyond the shared interface (keyword-only, defaults as ICE documents them):
``qps_limits``, ``error_rate``, ``latency_s``, ``callback_drop_rate``, ``job_delay_s`` (the faults),
``fault_seed`` (the fault RNG), ``callback_timeout_s=3.0``, ``callback_retry_interval_s=1.0``,
``callback_attempts=3`` and ``max_clock_skew_s=900``.

Assumptions:
* Faults (``faults.py``) apply after authentication and action lookup, before the action runs, so a
  throttled or 5xx'd call changes no state.
* An input object (or bucket) that does not exist fails the job with ``ResourceNotFound`` naming
  "Input" (ICE's documented job-level wording); an engine error keeps the engine's code (an output
  that cannot be written: ``Output.WriteFailed``); OSS unreachable or anything unexpected fails it
  with ``InternalError``. A job never stays ``Init`` once its worker ran.
* A job that fails leaves no outputs: the engine deletes what it wrote. A job that succeeds with a
  remark (fewer snapshots than ``Count`` because the video ended first, a black first frame kept)
  keeps ``Status`` ``Success`` and says so in ``Message``.
* ``Count`` of a finished job is the number of frames captured; GetSnapshotUrls pages over the
  distinct image objects written (for sprites: the sheets; for WebVtt: the images, with the VTT as
  ``WebVTTUrl``), in the order written.
* The delivery log entries are ``{job_id, url, attempt, status, error, elapsed_s, delivered,
  dropped, redelivered, at}`` with ``at`` in UNIX seconds; a redelivery is logged with
  ``redelivered: True`` and ``attempt: 0``.
* A held job does not count as running for :meth:`LocalIce.wait_idle` (nothing is in flight until
  it is released); releasing it processes it in the caller's thread.
* One callback per finished job (Success or Fail). A callback that fault injection drops is logged
  once with ``dropped: True`` and ``attempt: 0``; one to an MNS queue is logged, not sent.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

import oss2

from localcloud.counters import RequestCounts
from localcloud.ice import callbacks, engine, instant
from localcloud.ice.faults import FaultInjector, Faults
from localcloud.ice.handler import handler_for
from localcloud.ice.models import CallbackTarget, IceError, IceModel, SnapshotJob
from localcloud.ice.rangefile import USER_AGENT, HttpRangeFile
from localcloud.ice.responses import MAX_CLOCK_SKEW_S, Authenticator, IceResponses
from localcloud.ice.url_signing import signed_get_url
from localcloud.keyring import Keyring

log = logging.getLogger("localcloud.ice")

INPUT_URL_EXPIRY_S = 3600


class LocalIce:
    """A local ICE snapshot service for one account in one region (see the module docstring)."""

    def __init__(self, *, access_key_id: str = "", access_key_secret: str = "", oss_endpoint: str,
                 keyring: Keyring | None = None,
                 host: str = "127.0.0.1", port: int = 0, region: str = "cn-hangzhou",
                 account_id: str = "1000000000000001", workers: int = 2,
                 qps_limits: dict[str, float] | None = None, error_rate: float = 0.0, latency_s: float = 0.0,
                 callback_drop_rate: float = 0.0, job_delay_s: float = 0.0, fault_seed: int | None = None,
                 callback_timeout_s: float = 3.0, callback_retry_interval_s: float = 1.0,
                 callback_attempts: int = 3, max_clock_skew_s: float = MAX_CLOCK_SKEW_S, instant_jobs: bool = False):
        #: The keys requests are signed with (shared with the local OSS in a LocalCloud); issue_sts() gives STS ones.
        self.keyring = keyring = keyring or Keyring(access_key_id, access_key_secret)
        self._oss_auth = oss2.Auth(keyring.access_key_id, keyring.access_key_secret)
        self._oss_endpoint = oss_endpoint.rstrip("/")
        self._buckets: dict[str, oss2.Bucket] = {}
        self._host, self._port = host, port
        self._workers = workers
        self.region, self.account_id = region, account_id
        self.callback_timeout_s = callback_timeout_s
        self.callback_retry_interval_s = callback_retry_interval_s
        self.callback_attempts = callback_attempts
        self.model = IceModel(region=region, account_id=account_id)
        self._stopping = threading.Event()
        self._faults = FaultInjector(Faults(qps_limits=dict(qps_limits or {}), error_rate=error_rate,
                                            latency_s=latency_s, callback_drop_rate=callback_drop_rate,
                                            job_delay_s=job_delay_s), seed=fault_seed, sleep=self._stopping.wait)
        self._auth = Authenticator(keyring, max_clock_skew_s=max_clock_skew_s)
        self._instant_jobs = instant_jobs
        self._requests = RequestCounts()
        self._refusals = RequestCounts()  # calls the faults refused, as "Action:Code"
        self._responses = IceResponses(self.model, self._auth, sign_url=self._sign_url,
                                       on_job_submitted=self._enqueue_job, gate=self._counted_gate,
                                       settle=self._faults.settle, host_id=f"ice.{region}.aliyuncs.com")
        self._deliveries: list[dict[str, Any]] = []
        self._connections: set[socket.socket] = set()
        self._idle = threading.Condition()  # guards the counters, lists and flags below too
        self._busy = 0
        self._holding = False
        self._held: list[str] = []
        self._queued: set[str] = set()  # jobs held, waiting for a worker or running: not to be queued again
        self._server: ThreadingHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._job_pool: ThreadPoolExecutor | None = None
        self._callback_pool: ThreadPoolExecutor | None = None
        self.endpoint = ""
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalIce:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), handler_for(self))
        self._server.daemon_threads = False  # server_close() joins the connection threads
        host, port = self._server.socket.getsockname()[:2]  # the port the OS gave, when asked for port 0
        self.endpoint = f"{host}:{port}"
        self.url = f"http://{self.endpoint}"
        self._job_pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="local-ice-job")
        self._callback_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="local-ice-callback")
        self._serve_thread = threading.Thread(target=self._server.serve_forever, name="local-ice-http", daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._idle:
            open_connections = list(self._connections)
        for connection in open_connections:  # idle keep-alive connections would block the join
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join()
        for pool in (self._job_pool, self._callback_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._job_pool = self._callback_pool = None

    def __enter__(self) -> LocalIce:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # ---- test and admin controls -----------------------------------------------------------

    def set_event_callback(self, url: str, auth_key: str | None, event_types: str = "SnapshotComplete") -> None:
        """The same as SetEventCallback with CallbackType HTTP (AuthSwitch on when ``auth_key``)."""
        self.model.set_event_callback(callback_type="HTTP", callback_url=url, event_type_list=event_types,
                                      auth_switch="on" if auth_key else "off", auth_key=auth_key)

    def set_faults(self, **faults: Any) -> None:
        """Change the given faults (``qps_limits``, ``error_rate``, ``latency_s``, ``callback_drop_rate``,
        ``job_delay_s``, ``lose_answers``, ``lose_answer_rates``, ``answer_delay_s``, ``fail_jobs``, see
        ``faults.py``; ``seed`` reseeds the fault RNG); the others stay as they are."""
        self._faults.update(**faults)

    def faults(self) -> dict[str, Any]:
        return asdict(self._faults.faults)

    def set_instant_jobs(self, instant_jobs: bool = True) -> None:
        """Jobs processed from now on finish at once with placeholder pictures (``instant.py``)."""
        self._instant_jobs = instant_jobs

    def bulk_load_jobs(self, jobs: list[dict[str, Any]], template_id: str) -> list[str]:
        """Add finished jobs without running them (see ``JobsBackend.bulk_load_jobs``); their ids."""
        return self.model.bulk_load_jobs(jobs, template_id=template_id)

    def resume_unfinished_jobs(self) -> list[str]:
        """Run again the jobs still ``Init`` (restored from a data dir: they were running when the
        cloud stopped) that are not queued already; the ids of those it queued."""
        return [job_id for job_id in self.model.unfinished_job_ids() if self._enqueue_job(self.model.get_job(job_id))]

    def request_counts(self) -> dict[str, int]:
        """API calls per action (``SubmitSnapshotJob``: n, ...) since the last reset."""
        return self._requests.snapshot()

    def refusal_counts(self) -> dict[str, int]:
        """Calls the faults refused (``SubmitSnapshotJob:Throttling.User``: n, ...) since the last reset."""
        return self._refusals.snapshot()

    def reset_request_counts(self) -> None:
        self._requests.reset()
        self._refusals.reset()

    def _counted_gate(self, action: str) -> None:
        self._requests.add(action)
        try:
            self._faults.gate(action)
        except IceError as refusal:
            self._refusals.add(f"{action}:{refusal.code}")
            raise

    def deliveries(self) -> list[dict[str, Any]]:
        with self._idle:
            return [dict(d) for d in self._deliveries]

    def reset(self) -> None:
        """Forget jobs, templates, the event-callback setting, faults, holds and the delivery log."""
        self.model.reset()
        self._faults.clear()
        self._auth.reset()
        with self._idle:
            self._deliveries.clear()
            self._holding = False
            self._held.clear()
            self._queued.clear()

    def wait_idle(self, timeout: float = 30) -> bool:
        """True once every submitted job has finished and every callback delivery has settled."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _track_connection(self, connection: socket.socket, *, open: bool) -> None:
        """Remember open connections, so stop() can close idle keep-alive ones."""
        with self._idle:
            if open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ---- held jobs -------------------------------------------------------------------------

    def hold_jobs(self, hold: bool = True) -> None:
        """Hold (True) every job submitted from now on in ``Init`` until it is released; False stops
        holding new jobs (those already held stay held)."""
        with self._idle:
            self._holding = hold

    def holding(self) -> bool:
        with self._idle:
            return self._holding

    def held_jobs(self) -> list[str]:
        """The ids of the jobs held now, in submit order."""
        with self._idle:
            return list(self._held)

    def release_job(self, job_id: str) -> str | None:
        """Process the held job ``job_id`` now, in this thread, as a worker would (frames, finish,
        callback sent as usual); its status once finished. LookupError if it is not held."""
        if self._take_held(job_id) is None:
            raise LookupError(f"job {job_id} is not held")
        return self._run_released(job_id)

    def release_all(self) -> list[str]:
        """Release every held job, one after the other in submit order; their ids."""
        released = []
        while (job_id := self._take_held(None)) is not None:
            self._run_released(job_id)
            released.append(job_id)
        return released

    def _take_held(self, job_id: str | None) -> str | None:
        """Take ``job_id`` (None: the first held job) off the held list, counted as running; None when
        it is not held."""
        with self._idle:
            if job_id is None and self._held:
                job_id = self._held[0]
            if job_id is None or job_id not in self._held:
                return None
            self._held.remove(job_id)
            self._busy += 1  # _run_job counts it down
            return job_id

    def _run_released(self, job_id: str) -> str | None:
        self._run_job(job_id)
        job = self.model.find_job(job_id)
        return job.status if job else None

    # ---- jobs ------------------------------------------------------------------------------

    def _busy_add(self, n: int) -> None:
        with self._idle:
            self._busy += n
            if self._busy == 0:
                self._idle.notify_all()

    def _bucket(self, name: str) -> oss2.Bucket:
        """One oss2.Bucket per name (thread-safe), for the jobs' reads and writes: building one costs ~0.2 ms."""
        bucket = self._buckets.get(name)
        if bucket is None:
            # app_name: the local OSS's rate fault switches spare ICE's own requests (localcloud/oss/faults.py).
            bucket = self._buckets.setdefault(name, oss2.Bucket(self._oss_auth, self._oss_endpoint, name,
                                                                app_name=USER_AGENT))
        return bucket

    def _sign_url(self, bucket: str, key: str, expires_s: int) -> str:
        return signed_get_url(self._oss_endpoint, bucket, key, access_key_id=self.keyring.access_key_id,
                              access_key_secret=self.keyring.access_key_secret, expires_s=expires_s)

    def _enqueue_job(self, job: SnapshotJob) -> bool:
        """Hold or queue the job; False when it is held, queued or running already."""
        with self._idle:
            if job.job_id in self._queued:
                return False
            self._queued.add(job.job_id)
            if self._holding:
                self._held.append(job.job_id)
                return True
        self._busy_add(1)
        try:
            assert self._job_pool is not None, "LocalIce is not started"
            self._job_pool.submit(self._run_job, job.job_id)
        except BaseException:
            with self._idle:
                self._queued.discard(job.job_id)
            self._busy_add(-1)
            raise
        return True

    def _run_job(self, job_id: str) -> None:
        try:
            delay = self._faults.faults.job_delay_s
            if delay and self._stopping.wait(delay):
                return
            job = self.model.find_job(job_id)
            if job is None:
                return
            injected = self._faults.take_job_failure()
            try:
                finished = (self.model.fail_job(job_id, code=injected[0], message=injected[1]) if injected
                            else self._process_instantly(job) if self._instant_jobs else self._process(job))
            except oss2.exceptions.OssError as exc:
                log.warning("snapshot job %s: OSS call failed with status %s", job_id, exc.status)
                finished = self.model.fail_job(job_id, code="InternalError",
                                               message=f"The job could not access OSS ({type(exc).__name__}, "
                                                       f"status {exc.status}).")
            except Exception as exc:  # a job must never stay Init because its worker crashed
                log.exception("snapshot job %s crashed", job_id)
                finished = self.model.fail_job(job_id, code="InternalError",
                                               message=f"The job failed unexpectedly: {type(exc).__name__}: "
                                                       f"{str(exc)[:300]}")
            if finished is not None:
                self._schedule_callback(finished)
        finally:
            with self._idle:
                self._queued.discard(job_id)
            self._busy_add(-1)

    def _process(self, job: SnapshotJob) -> SnapshotJob | None:
        source = self._bucket(job.input.bucket)
        try:
            source.head_object(job.input.object)
        except (oss2.exceptions.NotFound, oss2.exceptions.NoSuchBucket, oss2.exceptions.NoSuchKey):
            return self.model.fail_job(job.job_id, code="ResourceNotFound",
                                       message=f'The specified resource for "Input" could not be found: '
                                               f"oss://{job.input.bucket}/{job.input.object}")
        target = self._bucket(job.output.bucket)

        def write(key: str, data: bytes, content_type: str) -> None:
            target.put_object(key, data, headers={"Content-Type": content_type})

        url = source.sign_url("GET", job.input.object, INPUT_URL_EXPIRY_S, slash_safe=True)
        try:
            with closing(HttpRangeFile(url)) as reader:
                result = engine.run(reader, job.params, job.output.object, write, target.delete_object)
        except engine.EngineError as exc:
            return self.model.fail_job(job.job_id, code=exc.code, message=exc.message)
        keys = list(dict.fromkeys(s.key for s in result.snapshots))
        return self.model.complete_job(job.job_id, snapshot_keys=keys, count=len(result.snapshots),
                                       vtt_key=result.vtt_key, message=result.message)

    def _process_instantly(self, job: SnapshotJob) -> SnapshotJob | None:
        target = self._bucket(job.output.bucket)
        keys, vtt_key = instant.write_placeholders(
            job.params, job.output.object, lambda key, data, kind: target.put_object(key, data,
                                                                                     headers={"Content-Type": kind}))
        return self.model.complete_job(job.job_id, snapshot_keys=keys, count=len(keys), vtt_key=vtt_key)

    # ---- callbacks -------------------------------------------------------------------------

    def _schedule_callback(self, job: SnapshotJob) -> None:
        target = self.model.callback_target(job)
        if target is None or self._callback_pool is None:
            return
        self._busy_add(1)
        try:
            self._callback_pool.submit(self._deliver, job, target)
        except BaseException:
            self._busy_add(-1)
            raise

    def redeliver_callback(self, job_id: str) -> int | None:
        """Post the finished job's completion event once more, now and in this thread: the same body as
        the first delivery, signed afresh. The receiver's HTTP status (None when it was unreachable).
        LookupError for an unknown job; ``callbacks.NothingToRedeliver`` for one not finished or
        without an HTTP callback target."""
        job = self.model.find_job(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        target = self.model.callback_target(job)
        if job.status == "Init" or target is None or target.kind != "HTTP":
            raise callbacks.NothingToRedeliver(f"job {job_id} has no completion event to redeliver (status "
                                               f"{job.status}, callback {target.kind if target else 'none'})")
        headers = callbacks.signed_headers(target.address, target.auth_key, time.time())
        result = callbacks.post(target.address, self._event_body(job), headers, self.callback_timeout_s)
        self._record(job, target.address, 0, status=result.status, error=result.error, elapsed_s=result.elapsed_s,
                     delivered=result.succeeded(self.callback_timeout_s), redelivered=True)
        return result.status

    def _event_body(self, job: SnapshotJob) -> bytes:
        return callbacks.encode(callbacks.snapshot_complete_event(job, self.account_id, job.finish_time))

    def _record(self, job: SnapshotJob, url: str, attempt: int, *, status: int | None = None,
                error: str | None = None, elapsed_s: float = 0.0, delivered: bool = False,
                dropped: bool = False, redelivered: bool = False) -> None:
        entry = {"job_id": job.job_id, "url": url, "attempt": attempt, "status": status, "error": error,
                 "elapsed_s": round(elapsed_s, 4), "delivered": delivered, "dropped": dropped,
                 "redelivered": redelivered, "at": time.time()}
        with self._idle:
            self._deliveries.append(entry)
        log.info("callback job=%s attempt=%s status=%s delivered=%s%s", job.job_id, attempt, status, delivered,
                 f" error={error}" if error else "")

    def _deliver(self, job: SnapshotJob, target: CallbackTarget) -> None:
        try:
            if target.kind == "MNS":
                self._record(job, target.address, 0, error="MNS queues are not emulated by the local ICE; not sent")
                return
            if self._faults.chance(self._faults.faults.callback_drop_rate):
                self._record(job, target.address, 0, error="dropped by fault injection (callback_drop_rate)",
                             dropped=True)
                return
            body = self._event_body(job)
            for attempt in range(1, self.callback_attempts + 1):
                if attempt > 1 and self._stopping.wait(self.callback_retry_interval_s):
                    return
                headers = callbacks.signed_headers(target.address, target.auth_key, time.time())
                result = callbacks.post(target.address, body, headers, self.callback_timeout_s)
                delivered = result.succeeded(self.callback_timeout_s)
                self._record(job, target.address, attempt, status=result.status, error=result.error,
                             elapsed_s=result.elapsed_s, delivered=delivered)
                if delivered:
                    return
        finally:
            self._busy_add(-1)
