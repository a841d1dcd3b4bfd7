"""``python -m bench`` (``make bench``): every benchmark, a markdown table, ``bench/results.json``.

Options: ``--only cold_start,callback,burst,engine,reconcile_scale`` runs a subset;
``--scale-sizes 1000,10000`` the reconcile_scale history sizes (default 1k, 10k, 100k); ``--out PATH`` writes elsewhere
(``bench/results-*.json`` is git-ignored); ``--quick`` runs tiny sizes with two runs each, to check
the plumbing only (its figures are not results).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import burst, callback_latency, cold_start, engine_bench, memory, readme_table, reconcile_scale, report
from .common import BENCH_DIR, Section, log, machine, start_cloud

ALL = ("cold_start", "callback", "burst", "engine", "reconcile_scale")


def notes_for(sections: list[Section]) -> list[str]:
    """For each missed target: by how much, why, and what would close it."""
    by_name = {s.name: s for s in sections}
    writers = {"cold_start": cold_start_notes, "callback": callback_notes, "burst": burst_notes,
               "engine": engine_notes, "reconcile_scale": reconcile_scale_notes}
    return [note for name, notes_of in writers.items() if name in by_name for note in notes_of(by_name[name])]


def cold_start_notes(cs: Section) -> list[str]:
    notes = []
    limit = cold_start.RATIO_TARGET
    if cs.flat.get("ratio") is not None and cs.flat["ratio"] > limit:
        notes.append(
            f"cold_start.ratio {cs.flat['ratio']:.2f} misses <= {limit} by {cs.flat['ratio'] / limit - 1:.0%}: the "
            "callback needs the ICE client and oss2 like the sample does; it skips the ICE models package's eager "
            "import of ~1,300 modules and defers oss2's encryption stack (deferred_imports), but aiohttp (~0.1 s, "
            "40 ms of it the two SSL contexts aiohttp.connector makes at import), which the synchronous calls never "
            "use, is loaded by names read at import on the path of every ICE call: darabonba.core imports "
            "darabonba.response (`from aiohttp import ClientResponse`) and darabonba.utils.stream (a parameter "
            "annotated `aiohttp.ClientSession`), and ClientSession's module aiohttp.client is nearly all of "
            "aiohttp's import, so no import deferral keeps it unloaded. Closing it: darabonba-core naming aiohttp "
            "only when type checking (upstream); then aiohttp can be deferred by a module whose PEP 562 "
            "__getattr__ loads it (not LazyLoader: Tea.core, darabonba.core and stream.py each `import aiohttp`, "
            "and on Python 3.10 a second import runs a lazy module).")
    if cs.flat.get("no_pyc_ratio") is not None and cs.flat["no_pyc_ratio"] > 1.2:
        notes.append(
            f"cold_start.no_pyc_ratio {cs.flat['no_pyc_ratio']:.2f} misses <= 1.2: the build ships no bytecode "
            f"(build_ships_bytecode={cs.details.get('build_ships_bytecode')}); install Python 3.10 "
            "(RUNTIME_PYTHON) so `make build` precompiles.")
    return notes


def callback_notes(cb: Section) -> list[str]:
    limit = callback_latency.RATIO_TARGET
    if cb.flat.get("n1000_ratio") is None or cb.flat["n1000_ratio"] <= limit:
        return []
    return [
        f"callback.n1000_ratio {cb.flat['n1000_ratio']:.2f} misses <= {limit} by "
        f"{cb.flat['n1000_ratio'] / limit - 1:.0%}: the handler makes the two round trips it must (GetSnapshotJob "
        "beside page 1, then the other 33 pages at once, on threads kept by the instance), and writes the "
        "index as n10 does; what is left is the local ICE answering 33 pages at once in one process (checking "
        "33 signatures and signing 990 URLs, where ICE answers them on many machines) and writing the "
        "index of 1000 snapshots to the local OSS. Closing it: a local ICE answering pages from several "
        "processes; nothing in the handler (GetSnapshotUrls' PageSize is at most 30)."]


def burst_notes(bu: Section) -> list[str]:
    notes = []
    f = bu.flat
    if f.get("jobs") != f.get("uploads") or f.get("indexes") != f.get("uploads") or f.get("duplicate_jobs") \
            or f.get("lost"):
        notes.append(f"burst: jobs {f.get('jobs')}, indexes {f.get('indexes')}, duplicates "
                     f"{f.get('duplicate_jobs')}, lost {f.get('lost')} (targets {f.get('uploads')}/"
                     f"{f.get('uploads')}/0/0): see stats.runs for the failed invocations.")
    ramp = ("in the first ~10 s the submit instances (16) and then the callback ones (about 10) import the SDKs "
            "on their first invocation (~0.35 s of CPU each, see cold_start) on the same 2 cores as the 1000 "
            "uploads and the local OSS and ICE, and jobs are created at 20-40/s; on FC every instance has its own CPU. "
            "Closing it: more cores, provisioned instances (FC's provisioned concurrency) or a cheaper cold "
            "start (see cold_start).")
    if f.get("submit_ratio") is not None and f["submit_ratio"] > burst.SUBMIT_RATIO_TARGET:
        limit = burst.SUBMIT_RATIO_TARGET
        notes.append(
            f"burst.submit_ratio {f['submit_ratio']:.2f} misses <= {limit} by {f['submit_ratio'] / limit - 1:.0%}: "
            f"the first job comes {f.get('first_job_s')} s after the first upload and the middle 80% of the jobs "
            f"at {f.get('steady_qps')}/s (limit {burst.QPS_LIMIT}); the rest is the ramp: " + ramp)
    if f.get("first_job_s") is not None and f["first_job_s"] > burst.FIRST_JOB_TARGET_S:
        notes.append(f"burst.first_job_s {f['first_job_s']} misses <= {burst.FIRST_JOB_TARGET_S:g} s: " + ramp)
    steady_floor = burst.STEADY_QPS_TARGET * burst.QPS_LIMIT
    if f.get("steady_qps") is not None and f["steady_qps"] < steady_floor:
        notes.append(f"burst.steady_qps {f['steady_qps']}/s misses >= {steady_floor:g}/s: the submits, the uploads, "
                     "the local OSS and ICE and the callbacks share 2 cores; see stats.runs for the refused calls.")
    if f.get("runs", 5) < 5:
        notes.append(f"burst: {f.get('runs')} run(s) instead of 5, so that `make bench` stays within its "
                     "time budget (--burst-budget-s).")
    return notes


def engine_notes(eng: Section) -> list[str]:
    return [f"engine.{name} {eng.flat[name]:.2f} misses <= {limit}."
            for name, limit in (("intra_ratio", 0.3), ("normal_ratio", 0.8))
            if eng.flat.get(name) is not None and eng.flat[name] > limit]


def reconcile_scale_notes(rs: Section) -> list[str]:
    notes = []
    limit = rs.flat["targets"]["requests_per_run_max"]
    for size, run in rs.flat["sizes"].items():
        finding = run["finding_requests"]
        if finding > limit or run["new_indexed"] != run["new"]:
            notes.append(f"reconcile_scale at history {size}: {finding} requests to find the work (target <= "
                         f"{limit}), {run['publishing_requests']} to publish, {run['new_indexed']}/{run['new']} "
                         "new uploads indexed by one run.")
    ratio = rs.flat["targets"]["wall_ratio_100k_over_1k"]
    if ratio is not None and ratio > 1.5:
        notes.append(f"reconcile_scale wall time ratio {ratio:.2f} misses <= 1.5: the run's cost follows the history.")
    return notes


def scale_section(args: argparse.Namespace) -> Section:
    log("5. reconciler at scale")
    sizes = (100, 1000) if args.quick else tuple(int(n) for n in args.scale_sizes.split(","))
    return reconcile_scale.run(sizes, new=10 if args.quick else reconcile_scale.NEW_UPLOADS)


def in_order_with_memory(sections: list[Section]) -> list[Section]:
    """The sections in ``ALL``'s order, then memory and cost, from the burst and callback sections."""
    order = {name: i for i, name in enumerate(ALL)}
    ordered = sorted(sections, key=lambda s: order[s.name])
    by_name = {s.name: s for s in ordered}
    if "burst" in by_name or "callback" in by_name:
        ordered.append(memory.run(by_name.get("burst"), by_name.get("callback")))
    return ordered


def write_results(out: Path, doc: dict) -> None:
    """Write ``doc`` to ``out``; README's table follows when ``out`` is the results README shows."""
    report.write(out, doc)
    if out.resolve() == readme_table.RESULTS.resolve():
        readme_table.main([])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated subset of " + ", ".join(ALL))
    parser.add_argument("--out", default=str(BENCH_DIR / "results.json"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 runs: a plumbing check, not results")
    parser.add_argument("--burst-runs", type=int, default=5)
    parser.add_argument("--scale-sizes", default=",".join(map(str, reconcile_scale.SIZES)), help="history sizes")
    parser.add_argument("--burst-budget-s", type=float, default=420,
                        help="stop the bursts early (fewer than --burst-runs) to stay within this time")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    runs = 2 if args.quick else None
    started = time.monotonic()
    sections: list[Section] = []
    info = machine()
    log(f"machine: {info}")

    if any(name in only for name in ("cold_start", "callback", "engine")):
        cloud = start_cloud(max_instances=4, own_processes=True)  # the emulator apart from what is timed
        try:
            if "cold_start" in only:
                log("1. cold start")
                sections.append(cold_start.run(cloud, runs=runs or 7, extras=not args.quick))
            if "callback" in only:
                log("2. callback latency")
                sections.append(callback_latency.run(cloud, runs=runs or 7,
                                                     sizes=(10, 100) if args.quick else callback_latency.SIZES))
            if "engine" in only:
                log("4. snapshot engine")
                sections.append(engine_bench.run(cloud, runs=runs or 5,
                                                 **({"duration_s": 6.0, "width": 320, "height": 240}
                                                    if args.quick else {})))
        finally:
            cloud.stop()
    if "burst" in only:
        log("3. burst")
        section = burst.run(runs=2 if args.quick else args.burst_runs, n=20 if args.quick else 1000,
                            time_budget_s=None if args.quick else args.burst_budget_s)
        sections.insert(2 if len(sections) >= 2 else len(sections), section)

    if "reconcile_scale" in only:
        sections.append(scale_section(args))

    sections = in_order_with_memory(sections)
    notes = notes_for(sections)
    command = "make bench" if not argv and len(sys.argv) <= 1 else "python -m bench " + " ".join(argv or sys.argv[1:])
    doc = report.results(sections, machine=info, command=command, elapsed_s=time.monotonic() - started, notes=notes)
    out = Path(args.out)
    write_results(out, doc)
    print(report.table(doc))
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print(f"\nwrote {out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
