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
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, ROOT, Section, log, ratio_stats, stats

CHILD = BENCH_DIR / "cold_child.py"


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
    def __init__(self, python: str, env: dict[str, str], context: dict[str, Any]):
        self.python = python
        self.env = env
        self.context = context

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
    from localcloud.fc import http_event
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
    index = cloud.wait_for_index(key, timeout=120)
    return index["job"]["id"]


def run(cloud, *, runs: int = 7, extras: bool = True) -> Section:
    section = Section("cold_start")
    build_dir = ROOT / "build" / "callback"
    if not (build_dir / "index.py").exists():
        raise SystemExit("bench: build/callback is missing: run `make build` (make bench does)")
    python, is_runtime = runtime_python()
    job_id = prepare_job(cloud)
    env = function_env(cloud)
    context_base = {"credentials": {"access_key_id": cloud.access_key_id,
                                    "access_key_secret": cloud.access_key_secret,
                                    "security_token": "local-sts-token"},
                    "region": cloud.options.region, "account_id": cloud.options.account_id,
                    "function": {"name": "video-snapshot-callback", "handler": "index.handler",
                                 "memory": 512, "timeout": cloud.fc.pools["callback"].spec.timeout_s}}
    runner = ColdRunner(python, env, context_base)
    shipped_pycs = any(build_dir.glob("snapshot_pipeline/__pycache__/*.cpython-310.pyc"))

    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    try:
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
            shutil.copytree(build_dir, no_bytecode, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
            _make_read_only(no_bytecode)

        def request() -> dict[str, Any]:
            req = _signed_request(cloud, job_id)
            req["context"] = dict(context_base, request_id=req["context"]["request_id"])
            return req

        def check(answer: dict[str, Any], who: str) -> None:
            result = answer.get("result") or {}
            if result.get("statusCode") != 200:
                raise RuntimeError(f"{who}: the callback did not answer 200: {result}\n{answer['stderr'][-2000:]}")

        # warm the page cache once for each side (not measured)
        check(runner.run("callback", [build_dir], request=request()), "ours")
        check(runner.run("callback", [baseline_dir, build_dir], request=request()), "baseline")

        ours, base, ours_import = [], [], []
        imports, imports_ro = [], []
        nb_import, nb_first = [], []
        for i in range(runs):
            order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
            for side in order:
                if side == "ours":
                    a = runner.run("callback", [build_dir], request=request())
                    check(a, "ours")
                    ours.append(a["wall_s"])
                    ours_import.append(a["import_s"])
                else:
                    a = runner.run("callback", [baseline_dir, build_dir], request=request())
                    check(a, "baseline")
                    base.append(a["wall_s"])
            pair = [("build", build_dir, False), ("ro", read_only, True)]
            for label, folder, no_write in (pair if i % 2 == 0 else pair[::-1]):
                a = runner.run("import", [folder], no_write=no_write)
                (imports if label == "build" else imports_ro).append(a["import_s"])
            if extras and no_bytecode is not None:
                nb_import.append(runner.run("import", [no_bytecode], no_write=True)["import_s"])
                a = runner.run("callback", [no_bytecode], no_write=True, request=request())
                check(a, "ours without bytecode")
                nb_first.append(a["wall_s"])
            log(f"cold start run {i + 1}/{runs}: ours {ours[-1]:.3f}s baseline {base[-1]:.3f}s "
                f"import {imports[-1]:.4f}s read-only {imports_ro[-1]:.4f}s")
    finally:
        _make_writable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    first, baseline = stats(ours), stats(base)
    ratio = ratio_stats(ours, base)
    imp, imp_ro = stats(imports), stats(imports_ro)
    no_pyc = ratio_stats(imports_ro, imports)
    section.flat = {
        "first_callback_s": first["median"], "baseline_first_callback_s": baseline["median"],
        "ratio": ratio["median"], "handler_import_s": imp["median"],
        "handler_import_no_write_pyc_s": imp_ro["median"], "no_pyc_ratio": no_pyc["median"],
    }
    section.details = {
        "python": "python3.10" if is_runtime else f"python{sys.version_info[0]}.{sys.version_info[1]}",
        "python_is_runtime_3_10": is_runtime, "build_ships_bytecode": shipped_pycs,
        "job_id": job_id, "first_callback_s": first, "baseline_first_callback_s": baseline, "ratio": ratio,
        "first_callback_handler_import_s": stats(ours_import),
        "handler_import_s": imp, "handler_import_no_write_pyc_s": imp_ro, "no_pyc_ratio": no_pyc,
    }
    section.figure("first callback, fresh process (ours)", first)
    section.figure("first callback, fresh process (official-sample baseline)", baseline)
    section.figure("ratio ours / baseline", ratio, unit="x", target="<= 0.8",
                   met=ratio["median"] is not None and ratio["median"] <= 0.8)
    section.figure("handler import (build folder)", imp)
    section.figure("handler import (read-only, PYTHONDONTWRITEBYTECODE=1)", imp_ro)
    section.figure("no_pyc_ratio", no_pyc, unit="x", target="<= 1.2",
                   met=no_pyc["median"] is not None and no_pyc["median"] <= 1.2)
    if nb_import:
        section.details["handler_import_no_bytecode_shipped_s"] = stats(nb_import)
        section.details["first_callback_no_bytecode_shipped_s"] = stats(nb_first)
        section.flat["handler_import_no_bytecode_shipped_s"] = stats(nb_import)["median"]
        section.flat["first_callback_no_bytecode_shipped_s"] = stats(nb_first)["median"]
        section.figure("(for comparison) handler import, build without bytecode, read-only", stats(nb_import))
        section.figure("(for comparison) first callback, build without bytecode, read-only", stats(nb_first))
    if not is_runtime:
        section.details["warning"] = "no Python 3.10 found: ran with this machine's Python"
    return section
