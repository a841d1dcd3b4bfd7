"""1. Cold start of the callback function, against the official-sample way of writing it.

Every run is a fresh ``python3.10 -I`` process (the runtime's Python; ``sys.executable`` when none
is installed, and the results say so) with cwd = the code folder, ``sys.path`` = the code folder
and the standard library, and the environment Function Compute gives the callback function (its
s.yaml environment as the local cloud deploys it). It imports ``index`` and serves one real, signed
callback for a real finished job of the running local cloud: GetSnapshotJob, GetSnapshotUrls, HEAD
the source, PUT index.json. ``first_callback_s`` is the wall time from spawning the process to its
answer. The baseline (``baseline_sample.py``, precompiled the same way) runs with the same
dependencies from the same build folder; the two alternate.

``handler_import_s``: importing the handler from ``build/callback``. ``handler_import_no_write_pyc_s``:
the same from a read-only copy with ``-B`` / ``PYTHONDONTWRITEBYTECODE=1`` (``-I`` ignores the
variable, so the flag is passed too), as on Function Compute where nothing can be compiled at run
time. The extra ``*_no_bytecode_shipped_s`` figures show what the same costs when a build does not
ship bytecode.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, ROOT, Section, log, ratio_stats, stats

CHILD = BENCH_DIR / "cold_child.py"
RATIO_TARGET = 0.6  # first callback, ours / the official sample's (issue 15)


def runtime_python() -> tuple[str, bool]:
    from localcloud.build import find_runtime_python

    found = find_runtime_python()
    return (found, True) if found else (sys.executable, False)


def _compile(python: str, folder: Path) -> None:
    subprocess.run([python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(folder)],
                   check=True)


def _make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        try:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        except OSError:
            pass


class ColdRunner:
    """Runs ``cold_child.py`` in a fresh ``-I`` process with the function's environment and context."""

    def __init__(self, python: str, env: dict[str, str], context: dict[str, Any],
                 new_request: Callable[[], dict[str, Any]]):
        self.python = python
        self.env = env
        self.context = context
        self.new_request = new_request  # a freshly signed callback request for each process

    def callback(self, code_dirs: list[Path], who: str, *, no_write: bool = False) -> dict[str, Any]:
        """One first callback served by a fresh process from ``code_dirs``; it must answer 200."""
        request = self.new_request()
        request["context"] = dict(self.context, request_id=request["context"]["request_id"])
        answer = self.run("callback", code_dirs, no_write=no_write, request=request)
        result = answer.get("result") or {}
        if result.get("statusCode") != 200:
            raise RuntimeError(f"{who}: the callback did not answer 200: {result}\n{answer['stderr'][-2000:]}")
        return answer

    def import_s(self, folder: Path, *, no_write: bool = False) -> float:
        """Seconds a fresh process takes to import the handler from ``folder``."""
        return self.run("import", [folder], no_write=no_write)["import_s"]

    def run(self, mode: str, code_dirs: list[Path], *, no_write: bool = False, request: dict | None = None,
            timeout: float = 120) -> dict[str, Any]:
        args = [self.python, "-I"] + (["-B"] if no_write else []) + [str(CHILD), mode, *map(str, code_dirs)]
        env = dict(self.env, **({"PYTHONDONTWRITEBYTECODE": "1"} if no_write else {}))
        stdin = json.dumps(request).encode() if request is not None else b""
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, cwd=str(code_dirs[-1]), env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
            line = proc.stdout.readline()
            wall = time.perf_counter() - t0
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stdout.close()
        proc.stderr.close()
        if not line:
            raise RuntimeError(f"cold-start child failed ({mode}, {code_dirs}):\n{err[-3000:]}")
        answer = json.loads(line)
        answer["wall_s"] = wall
        answer["stderr"] = err
        return answer


def _signed_request(cloud, job_id: str) -> dict[str, Any]:
    from localcloud.fc_http import http_event
    from localcloud.ice import callbacks
    from snapshot_pipeline.callback import signature

    job = cloud.ice.model.find_job(job_id)
    body = callbacks.encode(callbacks.snapshot_complete_event(job, cloud.options.account_id, job.finish_time))
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-ICE-TIMESTAMP": ts,
               "X-ICE-SIGNATURE": signature(cloud.callback_url, ts, cloud.callback_auth_key),
               "User-Agent": "bench"}
    request_id = str(uuid.uuid4())
    event = http_event("POST", "/", headers, body, source_ip="127.0.0.1", request_id=request_id,
                       domain="127.0.0.1")
    return {"event": json.dumps(event), "context": {"request_id": request_id}}


def function_env(cloud, name: str = "callback") -> dict[str, str]:
    """What Function Compute puts in the callback function's environment (s.yaml + the local endpoints)."""
    pool = cloud.fc.pools[name]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": "/tmp",
           "FC_FUNCTION_NAME": pool.spec.props.get("functionName", name), "FC_REGION": cloud.options.region}
    env.update(pool.spec.environment)
    env.update(pool.env_overrides)
    return env


def prepare_job(cloud) -> str:
    """Upload a small video through the pipeline and return the finished job's id."""
    from localcloud.media import make_test_video

    key = f"uploads/cold-{uuid.uuid4().hex[:8]}.mp4"
    cloud.bucket().put_object(key, make_test_video(duration_s=2.0, fps=10, width=160, height=120, gop_s=1.0))
    index = cloud.wait_for_index(key, timeout=120, profiles=("default",))
    return index["profiles"]["default"]["job"]["id"]


def function_context(cloud) -> dict[str, Any]:
    """The FC context the callback function gets (credentials, region, account, function)."""
    return {"credentials": cloud.function_credentials.as_context(),
            "region": cloud.options.region, "account_id": cloud.options.account_id,
            "function": {"name": "video-snapshot-callback", "handler": "index.handler",
                         "memory": 512, "timeout": cloud.fc.pools["callback"].spec.timeout_s}}


@dataclass
class Folders:
    """The code folders the runs start from, all under one temporary folder."""
    build: Path  # build/callback as `make build` made it
    baseline: Path  # the official-sample handler, with build/callback's dependencies after it
    read_only: Path  # a read-only copy of build: nothing can be compiled at run time
    no_bytecode: Path | None  # a read-only copy without __pycache__ (only with extras)


def prepare_folders(tmp: Path, build_dir: Path, python: str, *, extras: bool) -> Folders:
    baseline_dir = tmp / "baseline"
    baseline_dir.mkdir()
    shutil.copy2(BENCH_DIR / "baseline_sample.py", baseline_dir / "index.py")
    _compile(python, baseline_dir)
    read_only = tmp / "callback-ro"
    shutil.copytree(build_dir, read_only, symlinks=True)
    _make_read_only(read_only)
    no_bytecode = None
    if extras:
        no_bytecode = tmp / "callback-no-bytecode"
        shutil.copytree(build_dir, no_bytecode, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        _make_read_only(no_bytecode)
    return Folders(build_dir, baseline_dir, read_only, no_bytecode)


@dataclass
class ColdTimings:
    """Seconds per run of each measurement."""
    ours: list[float] = field(default_factory=list)  # first callback, fresh process
    baseline: list[float] = field(default_factory=list)
    ours_import: list[float] = field(default_factory=list)  # the handler import inside `ours`
    imports: list[float] = field(default_factory=list)  # handler import from the build folder
    imports_ro: list[float] = field(default_factory=list)  # the same, read-only and -B
    no_bytecode_import: list[float] = field(default_factory=list)
    no_bytecode_first: list[float] = field(default_factory=list)


def measure_once(runner: ColdRunner, folders: Folders, i: int, timings: ColdTimings) -> None:
    """Run ``i``: ours and the baseline, the two imports (each pair in alternating order), the no-bytecode build."""
    for side in ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours"):
        if side == "ours":
            answer = runner.callback([folders.build], "ours")
            timings.ours.append(answer["wall_s"])
            timings.ours_import.append(answer["import_s"])
        else:
            timings.baseline.append(runner.callback([folders.baseline, folders.build], "baseline")["wall_s"])
    pair = [(timings.imports, folders.build, False), (timings.imports_ro, folders.read_only, True)]
    for into, folder, no_write in pair if i % 2 == 0 else pair[::-1]:
        into.append(runner.import_s(folder, no_write=no_write))
    if folders.no_bytecode is not None:
        timings.no_bytecode_import.append(runner.import_s(folders.no_bytecode, no_write=True))
        answer = runner.callback([folders.no_bytecode], "ours without bytecode", no_write=True)
        timings.no_bytecode_first.append(answer["wall_s"])


def run(cloud, *, runs: int = 7, extras: bool = True) -> Section:
    build_dir = ROOT / "build" / "callback"
    if not (build_dir / "index.py").exists():
        raise SystemExit("bench: build/callback is missing: run `make build` (make bench does)")
    python, is_runtime = runtime_python()
    job_id = prepare_job(cloud)
    runner = ColdRunner(python, function_env(cloud), function_context(cloud),
                        new_request=lambda: _signed_request(cloud, job_id))
    shipped_pycs = any(build_dir.glob("snapshot_pipeline/__pycache__/*.cpython-310.pyc"))
    timings = ColdTimings()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    try:
        folders = prepare_folders(tmp, build_dir, python, extras=extras)
        # warm the page cache once for each side (not measured)
        runner.callback([folders.build], "ours")
        runner.callback([folders.baseline, folders.build], "baseline")
        for i in range(runs):
            measure_once(runner, folders, i, timings)
            log(f"cold start run {i + 1}/{runs}: ours {timings.ours[-1]:.3f}s baseline {timings.baseline[-1]:.3f}s "
                f"import {timings.imports[-1]:.4f}s read-only {timings.imports_ro[-1]:.4f}s")
    finally:
        _make_writable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    section = cold_start_section(timings, is_runtime=is_runtime, shipped_pycs=shipped_pycs, job_id=job_id)
    add_no_bytecode_figures(section, timings)
    if not is_runtime:
        section.details["warning"] = "no Python 3.10 found: ran with this machine's Python"
    return section


def cold_start_section(t: ColdTimings, *, is_runtime: bool, shipped_pycs: bool, job_id: str) -> Section:
    """First callback (ours, the baseline, their ratio) and the handler import with and without bytecode."""
    section = Section("cold_start")
    first, baseline = stats(t.ours), stats(t.baseline)
    ratio = ratio_stats(t.ours, t.baseline)
    imp, imp_ro = stats(t.imports), stats(t.imports_ro)
    no_pyc = ratio_stats(t.imports_ro, t.imports)
    section.flat = {
        "first_callback_s": first["median"], "baseline_first_callback_s": baseline["median"],
        "ratio": ratio["median"], "handler_import_s": imp["median"],
        "handler_import_no_write_pyc_s": imp_ro["median"], "no_pyc_ratio": no_pyc["median"],
    }
    section.details = {
        "python": "python3.10" if is_runtime else f"python{sys.version_info[0]}.{sys.version_info[1]}",
        "python_is_runtime_3_10": is_runtime, "build_ships_bytecode": shipped_pycs,
        "job_id": job_id, "first_callback_s": first, "baseline_first_callback_s": baseline, "ratio": ratio,
        "first_callback_handler_import_s": stats(t.ours_import),
        "handler_import_s": imp, "handler_import_no_write_pyc_s": imp_ro, "no_pyc_ratio": no_pyc,
    }
    section.figure("first callback, fresh process (ours)", first)
    section.figure("first callback, fresh process (official-sample baseline)", baseline)
    section.figure("ratio ours / baseline", ratio, unit="x", target=f"<= {RATIO_TARGET}",
                   met=ratio["median"] is not None and ratio["median"] <= RATIO_TARGET)
    section.figure("handler import (build folder)", imp)
    section.figure("handler import (read-only, PYTHONDONTWRITEBYTECODE=1)", imp_ro)
    section.figure("no_pyc_ratio", no_pyc, unit="x", target="<= 1.2",
                   met=no_pyc["median"] is not None and no_pyc["median"] <= 1.2)
    return section


def add_no_bytecode_figures(section: Section, t: ColdTimings) -> None:
    """For comparison (extras only): the same build without shipped bytecode, read-only."""
    if not t.no_bytecode_import:
        return
    nb_import, nb_first = stats(t.no_bytecode_import), stats(t.no_bytecode_first)
    section.details["handler_import_no_bytecode_shipped_s"] = nb_import
    section.details["first_callback_no_bytecode_shipped_s"] = nb_first
    section.flat["handler_import_no_bytecode_shipped_s"] = nb_import["median"]
    section.flat["first_callback_no_bytecode_shipped_s"] = nb_first["median"]
    section.figure("(for comparison) handler import, build without bytecode, read-only", nb_import)
    section.figure("(for comparison) first callback, build without bytecode, read-only", nb_first)
