"""2. Callback latency against the number of snapshots, with 50 ms added to every ICE call.

Three finished jobs (10, 100 and 1000 stills of a tiny video) are made on the local cloud first;
then the local ICE gets the ``latency_s=0.05`` fault and each run times the callback handler's own
logic in-process (``snapshot_pipeline.callback.handle_callback``, with the Settings the callback
function builds from its environment and one warm ICE / OSS adapter, as in a warm instance) from a
signed request to the index written. ``single_call_s`` is one GetSnapshotJob round trip through the
same adapter. The sizes and the single call alternate within each run.

The target (n1000 / single <= 3.5) is only reachable in two round trips: GetSnapshotJob beside
GetSnapshotUrls' first page, then the other 30-URL pages (33 more for 1000 stills) at once.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .common import Section, log, stats

LATENCY_S = 0.05
RATIO_TARGET = 3.5  # n1000_s / single_call_s (issue 15)
SIZES = (10, 100, 1000)


def make_jobs(cloud, sizes=SIZES, *, prefix: str = "bench/callback") -> dict[int, str]:
    """Submit one job per size (intra stills, 64x48, Count n spread over a 20 s clip); wait for them."""
    from localcloud.media import make_test_video
    from snapshot_pipeline import layout
    from snapshot_pipeline.domain import Upload
    from snapshot_pipeline.submit import Submitter

    bucket = cloud.options.bucket
    oss = cloud.bucket()
    video = make_test_video(duration_s=20.0, fps=10, width=64, height=48, gop_s=1.0)
    ice, store = cloud.ice_adapter(), cloud.store()
    submitter = Submitter(cloud.settings(), ice, store)
    jobs = {}
    for n in sizes:  # a source of its own per size: each version has one folder of outputs
        source_key = f"{prefix}/source-{n}-{uuid.uuid4().hex[:6]}.mp4"
        oss.put_object(source_key, video)
        info = store.head(bucket, source_key)
        assert info is not None
        upload = Upload.of_object(bucket, info)
        jobs[n] = ice.submit_snapshot_job(
            input=upload.location, output=layout.output_location(bucket, "snapshots/", "Normal", upload),
            template_id=cloud.template_id,
            overwrite_params={"Type": "Normal", "FrameType": "intra", "Time": 0, "Count": n,
                              "Width": 64, "Height": 48},
            user_data=submitter.user_data(upload), name=f"bench-callback-{n}")
    deadline = time.monotonic() + 300
    for n, job_id in jobs.items():
        while True:
            job = ice.get_snapshot_job(job_id)
            if job.finished:
                if job.status != "Success":
                    raise RuntimeError(f"bench job with {n} snapshots failed: {job.code} {job.message}")
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"bench job with {n} snapshots did not finish")
            time.sleep(0.2)
    cloud.ice.wait_idle(60)  # its callbacks settled: nothing else runs while we measure
    cloud.fc.wait_idle(60)
    return jobs


def signed_request(cloud, job_id: str):
    from snapshot_pipeline.callback import signature
    from snapshot_pipeline.events import HttpRequest

    ts = str(int(time.time()))
    body = json.dumps({"EventType": "SnapshotComplete", "MessageBody": {"JobId": job_id, "Status": "Success"}})
    return HttpRequest(method="POST", path="/", body=body.encode(), request_id=str(uuid.uuid4()), query={},
                       headers={"content-type": "application/json", "x-ice-timestamp": ts,
                                "x-ice-signature": signature(cloud.callback_url, ts, cloud.callback_auth_key)})


# --- the measuring process -------------------------------------------------------------------------
# The local ICE and OSS run in the bench's own process; their CPU (signing 30 URLs per page, moto)
# would compete with the handler for one GIL. The handler runs in a worker process, as the callback
# function runs in its own instance, and times itself there.
_worker: dict[str, Any] = {}


def _worker_init(env: dict[str, str], endpoint: str, oss_endpoint: str, region: str, ak: str, sk: str) -> None:
    import io
    import sys

    from snapshot_pipeline.credentials import Credentials
    from snapshot_pipeline.ice import IceClient
    from snapshot_pipeline.retry import Deadline
    from snapshot_pipeline.settings import Settings
    from snapshot_pipeline.store import OssStore

    sys.stdout = io.StringIO()  # the handler's log lines: not the bench's output
    creds = Credentials(ak, sk)
    _worker.update(settings=Settings.from_env(env),
                   ice=IceClient(endpoint=endpoint, credentials=creds, region=region, protocol="http",
                                 deadline=Deadline.after(300)),
                   store=OssStore(endpoint=oss_endpoint, credentials=creds, deadline=Deadline.after(300)))


def _worker_callback(request) -> tuple[float, dict, int]:
    import sys

    from localcloud.fc_worker import peak_rss_kb
    from snapshot_pipeline.callback import handle_callback

    sys.stdout.seek(0)
    sys.stdout.truncate()
    t0 = time.perf_counter()
    answer = handle_callback(request, _worker["settings"], _worker["ice"], _worker["store"])
    return time.perf_counter() - t0, answer, peak_rss_kb()


def _worker_single(job_id: str) -> float:
    t0 = time.perf_counter()
    _worker["ice"].get_snapshot_job(job_id)
    return time.perf_counter() - t0


def start_worker(cloud):
    """The one worker process the handler runs in, set up like a warm callback instance."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .cold_start import function_env

    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
        initargs=(function_env(cloud, "callback"), cloud.ice.endpoint, cloud.oss.endpoint, cloud.options.region,
                  cloud.access_key_id, cloud.access_key_secret))


def check_indexes(cloud, jobs: dict[int, str]) -> None:
    """Each job's index lists all its snapshots, so the timed callbacks do the whole work."""
    from snapshot_pipeline import layout
    from snapshot_pipeline.index import profile_result

    ice = cloud.ice_adapter()
    for n, job_id in jobs.items():
        job = ice.get_snapshot_job(job_id)
        key = layout.index_key("snapshots/", job.input)
        snapshots = (profile_result(json.loads(cloud.bucket().get_object(key).read()), "default") or {}).get(
            "snapshots") or []
        if len(snapshots) != n:
            raise RuntimeError(f"the index of the {n}-snapshot job lists {len(snapshots)} snapshots")


def run(cloud, *, runs: int = 7, sizes=SIZES, latency_s: float = LATENCY_S) -> Section:
    log(f"callback latency: making jobs with {', '.join(map(str, sizes))} snapshots")
    jobs = make_jobs(cloud, sizes)
    worker = start_worker(cloud)

    peak_kb = [0]  # the worker's peak resident memory (KiB) after each callback

    def callback(n: int) -> float:
        elapsed, answer, peak_kb[0] = worker.submit(_worker_callback, signed_request(cloud, jobs[n])).result()
        if answer["statusCode"] != 200:
            raise RuntimeError(f"callback for {n} snapshots answered {answer}")
        return elapsed

    previous = cloud.ice.faults()
    single: list[float] = []
    by_size: dict[int, list[float]] = {n: [] for n in sizes}
    try:
        for n in sizes:  # warm the worker (SDK import, connections), then check the indexes are complete
            callback(n)
        check_indexes(cloud, jobs)
        cloud.ice.set_faults(latency_s=latency_s)
        for i in range(runs):
            order = list(sizes) if i % 2 == 0 else list(sizes)[::-1]
            single.append(worker.submit(_worker_single, jobs[sizes[0]]).result())
            for n in order:
                by_size[n].append(callback(n))
            log(f"callback run {i + 1}/{runs}: single {single[-1]:.3f}s "
                + " ".join(f"n{n} {by_size[n][-1]:.3f}s" for n in sizes))
    finally:
        cloud.ice.set_faults(latency_s=previous.get("latency_s", 0.0))
        worker.shutdown(wait=True)
    section = latency_section(jobs, single, by_size, latency_s)
    # The worker is a spawned process of the bench (it imported bench's modules too): an upper bound.
    section.flat["peak_rss_mb"] = {"callback": round(peak_kb[0] / 1024, 1)}
    return section


def latency_section(jobs: dict[int, str], single: list[float], by_size: dict[int, list[float]],
                    latency_s: float) -> Section:
    """The figures: one round trip, the callback per size, and the biggest size against one round trip."""
    section = Section("callback")
    sizes = list(by_size)
    single_stats = stats(single)
    section.flat["single_call_s"] = single_stats["median"]
    section.details = {"latency_s": latency_s, "jobs": {str(n): jobs[n] for n in sizes},
                       "single_call_s": single_stats}
    section.figure("one GetSnapshotJob round trip (single_call_s)", single_stats)
    for n in sizes:
        s = stats(by_size[n])
        section.flat[f"n{n}_s"] = s["median"]
        section.details[f"n{n}_s"] = s
        section.figure(f"callback, {n} snapshots (n{n}_s)", s)
    biggest = max(sizes)
    ratios = [a / b for a, b in zip(by_size[biggest], single, strict=True)]
    ratio = round(section.flat[f"n{biggest}_s"] / single_stats["median"], 4)
    ratio_fig: dict[str, Any] = {"median": ratio, "min": round(min(ratios), 4), "max": round(max(ratios), 4),
                                 "runs": len(ratios)}
    section.flat[f"n{biggest}_ratio"] = ratio
    section.details[f"n{biggest}_ratio"] = ratio_fig
    section.figure(f"n{biggest}_ratio (n{biggest}_s / single_call_s)", ratio_fig, unit="x",
                   target=f"<= {RATIO_TARGET}", met=ratio <= RATIO_TARGET)
    return section
