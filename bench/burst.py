"""3. Burst: 1000 small videos uploaded at once, through the whole pipeline.

A fresh local cloud per run, its OSS and ICE each in a process of its own (``own_processes``): the
local FC runs the functions with up to 16 concurrent instances each; the local ICE limits
SubmitSnapshotJob to 50 QPS (token bucket) and fails 5% of *all* calls with a 5xx (``error_rate``
applies to every action: submits, GetSnapshotJob, GetSnapshotUrls). The uploads are made by 32
threads with unmodified oss2 under ``uploads/``; the OSS trigger fires the submit function
(asynchronous invocations, retried by FC when the handler raises).

- ``submit_wall_s``: from the first upload to the last successful SubmitSnapshotJob (the model's
  job creation time), ``submit_ratio`` = that / (uploads / qps_limit), 1.0 being the QPS limit's floor;
- ``first_job_s``: from the first upload to the first job; ``steady_qps``: jobs created per second
  over the middle 80% of the jobs (between the 10th and the 90th percentile of creation times);
- ``all_indexed_s``: from the first upload to the last callback invocation that wrote an index
  (HTTP 200), and every index then checked in OSS;
- ``jobs`` (jobs in ICE), ``duplicate_jobs`` (jobs beyond one per uploaded key), ``indexes``
  (uploads whose index.json exists), ``lost`` (uploads without one).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .common import Section, log, start_cloud, stats

QPS_LIMIT = 50
ERROR_RATE = 0.05
MAX_INSTANCES = 16
#: Issue 15's targets: submit_wall_s / the QPS floor, the first job's delay, the steady rate / the limit.
SUBMIT_RATIO_TARGET = 1.2
FIRST_JOB_TARGET_S = 2.0
STEADY_QPS_TARGET = 0.95


def tiny_video() -> bytes:
    from localcloud.media import make_test_video

    return make_test_video(duration_s=1.0, fps=5, width=64, height=48, gop_s=1.0)


class BurstObserver:
    """What the local cloud did during a burst, recorded from its invocation and fault hooks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.indexed: dict[str, float] = {}  # index.json URI: when its first callback answered 200
        self.failed_invocations: Counter = Counter()

    def attach(self, cloud) -> None:
        cloud.fc.on_invocation = self.on_invocation

    def on_invocation(self, inv) -> None:
        now = time.monotonic()
        with self._lock:
            if not inv.ok:
                self.failed_invocations[inv.function] += 1
            elif inv.function == "callback" and isinstance(inv.result, dict) and inv.result.get("statusCode") == 200:
                index = json.loads(inv.result.get("body") or "{}").get("index")
                if index not in self.indexed:  # ICE may deliver a callback twice: count each index once
                    self.indexed[index] = now

    def indexed_count(self) -> int:
        with self._lock:
            return len(self.indexed)


def upload_all(bucket, keys: list[str], video: bytes, threads: int) -> float:
    """Put ``video`` at every key from ``threads`` threads; the seconds it took."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda k: bucket.put_object(k, video), keys))
    return time.monotonic() - t0


def wait_until_indexed(cloud, observer: BurstObserver, n: int, deadline: float) -> None:
    """Wait for ``n`` indexes (or the deadline), then for the FC and ICE runners to settle."""
    while time.monotonic() < deadline and observer.indexed_count() < n:
        time.sleep(0.25)
    cloud.fc.wait_idle(max(1.0, deadline - time.monotonic()))
    cloud.ice.wait_idle(max(1.0, deadline - time.monotonic()))


def all_jobs(cloud) -> list:
    """Every job in the local ICE's model, oldest first."""
    jobs, token = [], None
    while True:
        page, token = cloud.ice.model.list_jobs(page_size=100, next_page_token=token, order_by="CreateTimeAsc")
        jobs.extend(page)
        if not token:
            return jobs


def indexes_present(cloud, bucket, keys: list[str]) -> int:
    from snapshot_pipeline.domain import OssLocation
    from snapshot_pipeline.layout import index_key

    return sum(1 for key in keys if bucket.object_exists(index_key("snapshots/", OssLocation(cloud.options.bucket,
                                                                                              key))))


def job_creation_figures(created: list[float]) -> dict[str, Any]:
    """When the first job was created (seconds after the first upload), how fast the rest followed, and
    the steady rate: jobs per second over the middle 80% of the jobs, the ramp and the tail left out."""
    if len(created) < 10 or created[-1] <= created[0]:
        return {"first_job_s": round(created[0], 3) if created else None, "jobs_per_s_after_first": None,
                "steady_qps": None}
    low, high = len(created) // 10, len(created) - 1 - len(created) // 10
    return {
        "first_job_s": round(created[0], 3),
        "jobs_per_s_after_first": round((len(created) - 1) / (created[-1] - created[0]), 1),
        "steady_qps": round((high - low) / (created[high] - created[low]), 1),
    }


def jobs_per_second(created: list[float]) -> list[int]:
    """How many jobs were created in each second after the first upload."""
    per_second = Counter(int(c) for c in created)
    return [per_second.get(i, 0) for i in range(int(created[-1]) + 1)] if created else []


def one_run(n: int, *, timeout_s: float = 240, ice_workers: int = 2, upload_threads: int = 32,
            video: bytes | None = None) -> dict[str, Any]:
    video = video or tiny_video()
    # the local OSS and ICE serve from their own processes (fresh ones each run), so their CPU does not
    # share the GIL of the upload threads and the FC runner; a fresh bucket name too, as a tidy habit
    run_id = uuid.uuid4().hex[:8]
    cloud = start_cloud(max_instances=MAX_INSTANCES, ice_workers=ice_workers, bucket=f"burst-{run_id}",
                        own_processes=True)
    try:
        cloud.ice.set_faults(qps_limits={"SubmitSnapshotJob": QPS_LIMIT}, error_rate=ERROR_RATE, seed=1)
        observer = BurstObserver()
        observer.attach(cloud)
        keys = [f"uploads/burst/{i:04d}.mp4" for i in range(n)]
        bucket = cloud.bucket()
        start_wall = time.time()
        t0 = time.monotonic()
        uploaded_s = upload_all(bucket, keys, video, upload_threads)
        wait_until_indexed(cloud, observer, n, t0 + timeout_s)
        return summarise(cloud, observer, n, all_jobs(cloud), indexes_present(cloud, bucket, keys),
                         start_wall=start_wall, t0=t0, uploaded_s=uploaded_s)
    finally:
        cloud.stop()


def peak_rss_mb(cloud) -> dict[str, float]:
    """Each function's largest instance peak resident memory (MiB), as its instances reported it."""
    return {name: round(pool.peak_rss_kb / 1024, 1) for name, pool in cloud.fc.pools.items() if pool.peak_rss_kb}


def mean_durations(invocations: list) -> dict[str, float]:
    """Each function's mean billed invocation time (a cold start included; the local FC's wait for a
    free instance, with max_instances, not: on FC the instance would have started at once)."""
    by_function: dict[str, list[float]] = {}
    for inv in invocations:
        by_function.setdefault(inv.function, []).append(inv.billed_s)
    return {name: round(sum(d) / len(d), 4) for name, d in by_function.items()}


def summarise(cloud, observer: BurstObserver, n: int, jobs: list, present: int, *, start_wall: float, t0: float,
              uploaded_s: float) -> dict[str, Any]:
    """One run's result: jobs, duplicates, indexes and the timings the section reports."""
    per_key = Counter(j.input.object for j in jobs)
    last_created = max((j.create_time.timestamp() for j in jobs), default=start_wall)
    created = sorted(j.create_time.timestamp() - start_wall for j in jobs)
    indexed = observer.indexed
    return {
        "uploads": n, "jobs": len(jobs), "indexes": present,
        "duplicate_jobs": sum(c - 1 for c in per_key.values() if c > 1),
        "keys_with_jobs": len(per_key), "lost": n - present,
        "upload_s": round(uploaded_s, 3),
        "submit_wall_s": round(last_created - start_wall, 3) if jobs else None,
        "all_indexed_s": round(max(indexed.values()) - t0, 3) if len(indexed) >= n else None,
        "indexed_by_callbacks": len(indexed),
        "callback_invocations": sum(1 for i in cloud.fc.invocations if i.function == "callback"),
        "failed_invocations": dict(observer.failed_invocations),
        "submit_invocations": sum(1 for i in cloud.fc.invocations if i.function == "submit"),
        "instances_started": {name: pool.started_instances for name, pool in cloud.fc.pools.items()},
        "peak_rss_mb": peak_rss_mb(cloud),
        "invocations": dict(Counter(i.function for i in cloud.fc.invocations)),
        "mean_duration_s": mean_durations(cloud.fc.invocations),
        **job_creation_figures(created),
        "refused_calls": cloud.ice.refusal_counts(),
        "jobs_created_per_second": jobs_per_second(created),
    }


def run(*, runs: int = 5, n: int = 1000, time_budget_s: float | None = None) -> Section:
    """``runs`` bursts, fewer if ``time_budget_s`` would be exceeded (the results say how many ran)."""
    section = Section("burst")
    video = tiny_video()
    results = []
    started = time.monotonic()
    for i in range(runs):
        result = one_run(n, video=video)
        results.append(result)
        log(f"burst run {i + 1}/{runs}: " + json.dumps({k: result[k] for k in (
            "jobs", "indexes", "duplicate_jobs", "lost", "submit_wall_s", "all_indexed_s")}))
        elapsed = time.monotonic() - started
        if time_budget_s is not None and i + 1 < runs and elapsed / (i + 1) * (i + 2) > time_budget_s:
            log(f"burst: stopping after {i + 1} run(s) to stay within the time budget")
            break
    floor = n / QPS_LIMIT
    submit = stats(r["submit_wall_s"] for r in results if r["submit_wall_s"] is not None)
    indexed = stats(r["all_indexed_s"] for r in results if r["all_indexed_s"] is not None)
    ratio = stats(r["submit_wall_s"] / floor for r in results if r["submit_wall_s"] is not None)
    first_job = stats(r["first_job_s"] for r in results if r["first_job_s"] is not None)
    steady = stats(r["steady_qps"] for r in results if r["steady_qps"] is not None)
    worst = {k: (max if k in ("duplicate_jobs", "lost") else min)(r[k] for r in results)
             for k in ("jobs", "indexes", "duplicate_jobs", "lost")}
    # jobs/indexes: the worst run (fewest); duplicates/lost: the worst run (most)
    section.flat = {"uploads": n, **worst, "qps_limit": QPS_LIMIT, "error_rate": ERROR_RATE,
                    "max_instances": MAX_INSTANCES, "submit_wall_s": submit["median"],
                    "submit_ratio": ratio["median"], "first_job_s": first_job["median"],
                    "steady_qps": steady["median"], "all_indexed_s": indexed["median"], "runs": len(results),
                    "peak_rss_mb": {name: max(r["peak_rss_mb"].get(name, 0.0) for r in results)
                                    for name in sorted({name for r in results for name in r["peak_rss_mb"]})}}
    section.details = {"first_job_s": first_job, "steady_qps": steady,
                       "jobs_per_s_after_first": stats(r["jobs_per_s_after_first"] for r in results
                                                       if r["jobs_per_s_after_first"]),
                       "runs": results, "submit_wall_s": submit, "submit_ratio": ratio, "all_indexed_s": indexed,
                       "jobs_per_run": [r["jobs"] for r in results], "indexes_per_run": [r["indexes"] for r in results],
                       "floor_s": floor}
    ok = worst["jobs"] == n and worst["indexes"] == n and worst["duplicate_jobs"] == 0 and worst["lost"] == 0
    section.figure(f"jobs / indexes / duplicates / lost (worst of {len(results)} runs)",
                   {"median": f"{worst['jobs']} / {worst['indexes']} / {worst['duplicate_jobs']} / {worst['lost']}",
                    "min": None, "max": None, "runs": len(results)},
                   unit="", target=f"{n} / {n} / 0 / 0", met=ok)
    section.figure(f"submit wall time, {n} uploads (submit_wall_s)", submit)
    section.figure(f"submit_ratio (submit_wall_s / ({n} / {QPS_LIMIT} QPS))", ratio, unit="x",
                   target=f"<= {SUBMIT_RATIO_TARGET}", met=_at_most(ratio["median"], SUBMIT_RATIO_TARGET))
    section.figure("first upload to first job (first_job_s)", first_job, target=f"<= {FIRST_JOB_TARGET_S:g}",
                   met=_at_most(first_job["median"], FIRST_JOB_TARGET_S))
    steady_floor = STEADY_QPS_TARGET * QPS_LIMIT
    section.figure(f"jobs per second, middle 80% of the jobs (steady_qps; limit {QPS_LIMIT})", steady, unit="/s",
                   target=f">= {steady_floor:g} ({STEADY_QPS_TARGET:.0%})",
                   met=steady["median"] is not None and steady["median"] >= steady_floor)
    section.figure("all indexed (all_indexed_s)", indexed)
    return section


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit
