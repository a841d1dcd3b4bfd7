"""5. Reconciler cost at scale: one run over a large settled history plus a few lost callbacks.

For each size, a fresh local cloud holds ``history`` settled uploads in the pipeline's own layout
(source object, claim with its job, index of that job, and the finished job in ICE, created over
the 23 hours before the last hour, loaded with ``LocalOss.put_objects`` and
``LocalIce.bulk_load_jobs``), and the cursor of a deployment whose timer has been running (its last
run listed up to now). Then ``new`` videos are uploaded for real
(instant jobs, every completion callback dropped) and ONE reconciler run is measured:

- ``ice_calls`` / ``oss_requests``: the requests the local ICE and OSS counted during that run;
- ``publishing_requests``: those made inside ``Publisher.publish``: writing the lost callbacks'
  indexes, the work each callback would have done; ``finding_requests``: the rest, what it cost the
  run to find its work (the target's subject: publishing is the same per upload whoever does it);
- ``wall_s``; ``new_indexed``: the new uploads whose index names their job after the run.

Targets (issue 11): requests per run <= 3 x new + 20 whatever the history; wall time at the largest
size <= 1.5 x at the smallest. ``python -m bench.reconcile_scale --sizes 1000,10000`` runs it alone.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from .common import Section, log, start_cloud

SIZES = (1_000, 10_000, 100_000)
NEW_UPLOADS = 100
HISTORY_SPAN_S = 23 * 3600
#: The history ends this long before the measured run: settled before the last run's cursor and its overlap.
HISTORY_SETTLED_S = 3600
RUN_BUDGET_S = 600


def _history(cloud: Any, size: int) -> None:
    """``size`` settled uploads: source objects, claims, indexes and finished jobs, loaded directly."""
    from snapshot_pipeline import layout
    from snapshot_pipeline.claims import CLAIMS_DIR, job_name
    from snapshot_pipeline.domain import Upload
    from snapshot_pipeline.submit import Submitter

    settings = cloud.settings()
    bucket, prefix = cloud.options.bucket, settings.output_prefix
    cloud.oss.put_objects(bucket, {f"history/{n:07d}.mp4": n.to_bytes(4, "big") * 8 for n in range(size)})
    submitter = Submitter(settings, cloud.ice_adapter(), cloud.store())
    start = datetime.now(timezone.utc) - timedelta(seconds=HISTORY_SPAN_S + HISTORY_SETTLED_S)
    uploads = [Upload.of_object(bucket, info) for info in cloud.store().list(bucket, "history/")]
    specs = []
    for n, upload in enumerate(uploads):
        output = layout.output_location(bucket, prefix, settings.profiles[0].type, upload)
        specs.append({"Input": upload.location.uri, "Output": output.uri, "Name": job_name(upload),
                      "UserData": submitter.user_data(upload),
                      "CreateTime": (start + timedelta(seconds=HISTORY_SPAN_S * n / size)).replace(microsecond=0),
                      "SnapshotKeys": [output.key.replace("{Count}", "00001")]})
    job_ids = cloud.ice.bulk_load_jobs(specs, cloud.template_id)
    documents = {}
    for upload, job_id in zip(uploads, job_ids, strict=True):
        now = time.time()
        documents[f"{prefix}{CLAIMS_DIR}{upload.id}/000001.json"] = {
            "schema": "snapshot-claim/1", "source": upload.to_doc(), "state": "submitted", "owner": "history",
            "generation": 1, "attempt": 1, "first_claimed_at": now, "claimed_at": now, "expires_at": now + 90,
            "job_id": job_id, "finished_at": now}
        documents[layout.index_key(prefix, upload.location)] = {
            "schema": "snapshot-index/1", "source": upload.to_doc(), "job": {"id": job_id, "status": "Success"},
            "snapshots": []}
    cloud.oss.put_objects(bucket, {key: json.dumps(doc).encode() for key, doc in documents.items()})


@contextlib.contextmanager
def _counting_publishing(cloud: Any) -> Iterator[list[int]]:
    """Count the requests made inside (outermost) ``Publisher.publish`` calls while in the block."""
    from snapshot_pipeline.publish import Publisher

    original, counted, depth = Publisher.publish, [0], [0]

    def requests() -> int:
        return sum(cloud.ice.request_counts().values()) + sum(cloud.oss.request_counts().values())

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        before = requests() if depth[0] == 1 else 0
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                counted[0] += requests() - before

    Publisher.publish = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        Publisher.publish = original  # type: ignore[method-assign]


def _leave_cursor(cloud: Any) -> None:
    """The cursor of a deployment whose timer has run every 10 minutes: the last run listed up to now."""
    from snapshot_pipeline.pending import Cursor, CursorStore

    CursorStore(cloud.store(), cloud.options.bucket, cloud.settings().output_prefix).save(Cursor(time.time()))


def _reconcile(cloud: Any) -> Any:
    from snapshot_pipeline.reconcile import Reconciler
    from snapshot_pipeline.retry import Deadline

    deadline = Deadline.after(RUN_BUDGET_S)
    return Reconciler(cloud.settings(), cloud.ice_adapter(RUN_BUDGET_S), cloud.store(RUN_BUDGET_S),
                      deadline=deadline).run()


def _upload_new(cloud: Any, count: int) -> list[str]:
    """``count`` uploads through the trigger; returns once ICE finished every job (callbacks dropped)."""
    keys = [f"uploads/scale-{uuid.uuid4().hex[:8]}/{n:03d}.mp4" for n in range(count)]
    bucket = cloud.bucket()
    for n, key in enumerate(keys):
        bucket.put_object(key, os.urandom(64) + n.to_bytes(2, "big"))
    deadline = time.monotonic() + 300
    while len([j for j in cloud.ice.model.list_jobs(page_size=100)[0] if j.input.object in keys]) < count \
            or not cloud.ice.wait_idle(1):
        if time.monotonic() > deadline:
            raise TimeoutError("the new uploads' jobs did not all finish")
        cloud.fc.wait_idle(1)
    return keys


def _indexed(cloud: Any, keys: list[str]) -> int:
    from snapshot_pipeline import layout
    from snapshot_pipeline.domain import OssLocation
    from snapshot_pipeline.index import profile_result

    store = cloud.store()
    return sum(1 for key in keys
               if (doc := store.get_json(cloud.options.bucket,
                                         layout.index_key("snapshots/", OssLocation(cloud.options.bucket, key))))
               and ((profile_result(doc, "default") or {}).get("job") or {}).get("id"))


def measure(size: int, new: int) -> dict[str, Any]:
    cloud = start_cloud(max_instances=4)
    try:
        cloud.ice.set_instant_jobs(True)
        started = time.monotonic()
        _history(cloud, size)
        seeded_s = time.monotonic() - started
        _leave_cursor(cloud)
        log(f"  {size}: seeded in {seeded_s:.1f} s")
        cloud.ice.set_faults(callback_drop_rate=1.0)
        keys = _upload_new(cloud, new)
        cloud.ice.reset_request_counts()
        cloud.oss.reset_request_counts()
        began = time.monotonic()
        with _counting_publishing(cloud) as publishing:
            report = _reconcile(cloud)
        wall_s = time.monotonic() - began
        ice_calls, oss_requests = cloud.ice.request_counts(), cloud.oss.request_counts()
        total = sum(ice_calls.values()) + sum(oss_requests.values())
        return {"history": size, "new": new, "ice_calls": sum(ice_calls.values()),
                "oss_requests": sum(oss_requests.values()), "publishing_requests": publishing[0],
                "finding_requests": total - publishing[0], "wall_s": round(wall_s, 3),
                "new_indexed": _indexed(cloud, keys), "complete": getattr(report, "complete", None),
                "seed_s": round(seeded_s, 1), "ice_by_action": ice_calls, "oss_by_action": oss_requests}
    finally:
        cloud.stop()


def run(sizes: tuple[int, ...] = SIZES, new: int = NEW_UPLOADS) -> Section:
    section = Section("reconcile_scale")
    runs = []
    for size in sizes:
        log(f"reconcile_scale: history {size}, new {new}")
        runs.append(measure(size, new))
    limit = 3 * new + 20
    ratio = runs[-1]["wall_s"] / runs[0]["wall_s"] if len(runs) > 1 and runs[0]["wall_s"] else None
    keys = ("history", "new", "ice_calls", "oss_requests", "publishing_requests", "finding_requests", "wall_s",
            "new_indexed")
    section.flat.update({"sizes": {str(r["history"]): {k: r[k] for k in keys} for r in runs},
                         "targets": {"requests_per_run_max": limit,
                                     "wall_ratio_100k_over_1k": round(ratio, 3) if ratio is not None else None}})
    section.details["runs"] = runs
    for r in runs:
        requests = r["finding_requests"]
        section.figure(f"requests to find the work, history {r['history']}", {"median": requests, "runs": 1},
                       unit="", target=f"<= {limit}", met=requests <= limit)
        section.figure(f"requests to publish {r['new']} indexes, history {r['history']}",
                       {"median": r["publishing_requests"], "runs": 1}, unit="")
        section.figure(f"new uploads indexed, history {r['history']}", {"median": r["new_indexed"], "runs": 1},
                       unit="", target=f"= {new}", met=r["new_indexed"] == new)
    if ratio is not None:
        section.figure(f"wall time {runs[-1]['history']} / {runs[0]['history']}", {"median": round(ratio, 3),
                                                                                   "runs": 1},
                       unit="x", target="<= 1.5", met=ratio <= 1.5)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="history sizes, comma-separated")
    parser.add_argument("--new", type=int, default=NEW_UPLOADS)
    args = parser.parse_args(argv)
    section = run(tuple(int(s) for s in args.sizes.split(",")), args.new)
    print(json.dumps(dict(section.flat, runs=section.details["runs"]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
