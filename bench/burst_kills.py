"""Burst with kills (``make bench-kills``): exactly once while function instances crash (issue 10).

``n`` tiny videos are uploaded at once; once the first fifth of them have their jobs, those keys
are uploaded again with other bytes (a second version while the first's job runs or is done).
Meanwhile the submit function's running instances are SIGKILLed a few times and the callback's
once (:meth:`localcloud.fc.LocalFc.kill_instances`): the invocations they ran die as on a crashed
FC instance, and FC retries the asynchronous ones under the same request id.
SubmitSnapshotJob answers 1 s late, so kills land between a job's creation and the claim that
records it. Once FC and ICE are idle, the reconciler runs with a clock past the claims' leases (so
abandoned claims are taken over) until a run changes nothing. Then the audit of every key:

- ``jobs``: ICE jobs of the burst's keys; ``duplicates``: jobs beyond one per job name (a name is
  one version's attempt); ``adopted``: submits that found the job a killed attempt had created;
- ``indexes``: keys with an index.json; ``lost``: keys without one; ``stale``: indexes naming
  another version than the object's current one; ``failed``: indexes whose job did not succeed;
- ``orphans``: objects in a key's folder that are neither its index nor in the indexed version's folder.

``python -m bench.burst_kills [--n 200]`` prints one JSON line with those figures, the kills, the
reconciler runs and the seconds it all took.
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

from .burst import tiny_video, upload_all
from .common import log, start_cloud

SUBMIT_ANSWER_DELAY_S = 1.0
#: How far past now the reconciler's clock is: beyond a claim's lease (the function's 60 s timeout
#: plus the 30 s clock-skew margin), so every claim left without a job is taken over.
PAST_THE_LEASES_S = 120.0
MAX_RECONCILE_RUNS = 5


def kill_when_busy(cloud, function: str, stop: threading.Event, *, after_s: float = 0.0) -> int:
    """Kill ``function``'s invoking instances ``after_s`` into a moment when one is busy; how many
    died (0: none was busy before ``stop``)."""
    while not stop.is_set():
        if cloud.fc.pools[function].busy:
            time.sleep(after_s)
            killed = cloud.fc.kill_instances(function)
            if killed:
                return killed
        stop.wait(0.02)
    return 0


def kill_submit_instances(cloud, stop: threading.Event, kills: Counter, rounds: int, seed: int = 10) -> None:
    """``rounds`` kills of the submit function's instances, each 1-3 s into a moment they are busy
    (more than a cold start, so most land mid-submit); ``kills`` counts the instances killed."""
    rng = random.Random(seed)
    for _ in range(rounds):
        kills["submit"] += kill_when_busy(cloud, "submit", stop, after_s=rng.uniform(1.0, 3.0))


def kill_callback_instances(cloud, stop: threading.Event, kills: Counter) -> None:
    """One kill of the callback's instances, as soon as one is answering ICE."""
    kills["callback"] += kill_when_busy(cloud, "callback", stop)


def wait_for_jobs(cloud, keys: list[str], timeout_s: float) -> None:
    """Until every key of ``keys`` has a job in ICE (or the time is up)."""
    deadline, wanted = time.monotonic() + timeout_s, set(keys)
    while time.monotonic() < deadline and not wanted <= {j.input.key for j in listed_jobs(cloud) if j.input}:
        time.sleep(0.2)


def first_deliveries(cloud) -> int:
    """How many OSS events the submit function has been invoked with so far (first attempts)."""
    return sum(1 for i in list(cloud.fc.invocations) if i.function == "submit" and i.trigger == "async"
               and i.attempt == 1)


def settle(cloud, timeout_s: float) -> None:
    """Until no invocation is queued or retried and ICE has no job or callback in flight."""
    deadline = time.monotonic() + timeout_s
    for wait_idle in (cloud.fc.wait_idle, cloud.ice.wait_idle, cloud.fc.wait_idle):
        wait_idle(max(1.0, deadline - time.monotonic()))


def reconcile_until_quiet(cloud, timeout_s: float) -> list[dict[str, int]]:
    """Run the reconciler past the leases until a run writes, submits and closes nothing; each run's
    counts (and errors: a bench reports them, the test asserts there are none)."""
    from snapshot_pipeline.reconcile import Reconciler
    from snapshot_pipeline.retry import Deadline

    runs = []
    for _ in range(MAX_RECONCILE_RUNS):
        report = Reconciler(cloud.settings(), cloud.ice_adapter(), cloud.store(), deadline=Deadline.after(timeout_s),
                            clock=lambda: time.time() + PAST_THE_LEASES_S).run()
        changes = {"indexes_written": report.indexes_written, "claims_resubmitted": report.claims_resubmitted,
                   "claims_source_gone": report.claims_source_gone}
        runs.append({**changes, "errors": len(report.errors)})
        if not any(changes.values()):
            return runs
        settle(cloud, timeout_s)
    return runs


def listed_jobs(cloud) -> list:
    """Every job ICE lists, through the pipeline's adapter."""
    ice, token, jobs = cloud.ice_adapter(), None, []
    while True:
        page = ice.list_snapshot_jobs(page_size=100, next_page_token=token)
        jobs += page.jobs
        token = page.next_page_token
        if not token:
            return jobs


def audit_key(store, bucket: str, prefix: str, key: str) -> Counter:
    """What a reader of ``key``'s folder finds: its index (present, current, successful) and orphans."""
    from snapshot_pipeline import layout
    from snapshot_pipeline.domain import OssLocation, Upload

    source = OssLocation(bucket, key)
    folder = layout.object_dir(prefix, source)
    index, info = store.get_json(bucket, layout.index_key(prefix, source)), store.head(bucket, key)
    indexed = (index or {}).get("source", {}).get("version")
    found: Counter = Counter()
    if index is None:
        found["lost"] += 1
    else:
        found["indexes"] += 1
        found["stale"] += info is None or indexed != Upload.of_object(bucket, info).version
        results = (index.get("profiles") or {}).values()
        found["failed"] += not results or any((r.get("job") or {}).get("status") != "Success" for r in results)
    found["orphans"] += sum(1 for o in store.list(bucket, folder) if o.key != folder + layout.INDEX_FILE
                            and layout.version_of_dir_entry(folder, o.key) != indexed)
    return found


def adoptions(cloud, keys: set[str]) -> int:
    """How many of the submit function's records for ``keys`` adopted a job an earlier attempt created."""
    records = (json.loads(line) for line in list(cloud.fc.pools["submit"].logs) if '"submit.record"' in line)
    return sum(1 for r in records if r.get("key") in keys and str(r.get("reason", "")).startswith("adopted"))


def audit(cloud, keys: list[str]) -> dict[str, int]:
    """The burst's figures: jobs and duplicates in ICE, and each key's folder as a reader finds it."""
    bucket, wanted = cloud.options.bucket, set(keys)
    jobs = [j for j in listed_jobs(cloud) if j.input and j.input.bucket == bucket and j.input.key in wanted]
    per_name = Counter(j.name for j in jobs)
    store, prefix = cloud.store(), cloud.settings().output_prefix
    found: Counter = Counter()
    for key in keys:
        found.update(audit_key(store, bucket, prefix, key))
    return {"jobs": len(jobs), "duplicates": sum(c - 1 for c in per_name.values()), "adopted": adoptions(cloud, wanted),
            **{name: found[name] for name in ("indexes", "lost", "stale", "failed", "orphans")}}


def burst_with_kills(cloud, n: int, *, prefix: str, submit_rounds: int = 3, threads: int = 16,
                     timeout_s: float = 300) -> dict[str, Any]:
    """Upload ``n`` videos under ``prefix`` (the first fifth twice) while instances are killed, settle,
    reconcile, audit. ``cloud`` is running; its ICE faults are cleared at the end."""
    video = tiny_video()
    keys = [f"{prefix}{i:04d}.mp4" for i in range(n)]
    kills: Counter = Counter()
    burst_over = threading.Event()
    killers = [threading.Thread(target=kill_submit_instances, args=(cloud, burst_over, kills, submit_rounds)),
               threading.Thread(target=kill_callback_instances, args=(cloud, burst_over, kills))]
    renewed = keys[:n // 5]
    t0, delivered_before, uploads = time.monotonic(), first_deliveries(cloud), n + len(renewed)
    cloud.ice.set_faults(answer_delay_s={"SubmitSnapshotJob": SUBMIT_ANSWER_DELAY_S})
    try:
        for killer in killers:
            killer.start()
        bucket = cloud.bucket()
        upload_all(bucket, keys, video, threads)
        wait_for_jobs(cloud, renewed, timeout_s)
        upload_all(bucket, renewed, video + b"\0second version", threads)
        # the local OSS notifies from a thread of its own: FC is idle only once every event reached it
        while first_deliveries(cloud) - delivered_before < uploads and time.monotonic() - t0 < timeout_s:
            time.sleep(0.1)
        settle(cloud, timeout_s)
    finally:
        burst_over.set()
        for killer in killers:
            killer.join()
        cloud.ice.set_faults(answer_delay_s={})
    reconciled = reconcile_until_quiet(cloud, timeout_s)
    return {"uploads": uploads, "objects": n, **audit(cloud, keys),
            "kills": {"submit": kills["submit"], "callback": kills["callback"]},
            "reconcile_runs": reconciled, "seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst_kills", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="objects uploaded (the first fifth twice)")
    parser.add_argument("--submit-kills", type=int, default=5, help="rounds of killing the submit instances")
    args = parser.parse_args(argv)
    # a bucket of its own: the local OSS's store outlives a cloud in this process
    cloud = start_cloud(max_instances=8, bucket=f"kills-{uuid.uuid4().hex[:8]}")
    try:
        log(f"burst with kills: {args.n} objects, {args.submit_kills} rounds of submit kills")
        print(json.dumps(burst_with_kills(cloud, args.n, prefix="uploads/kills/", submit_rounds=args.submit_kills)))
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
