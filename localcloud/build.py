"""``make build``: one self-contained code folder per function, as Function Compute runs it.

``build/<function>/`` holds the handler (``index.py``), the ``snapshot_pipeline`` library
and the pinned runtime dependencies of ``shared/requirements.txt``, built for the
runtime's Python (3.10) and platform (manylinux x86_64), with bytecode precompiled by a
Python 3.10: FC's code folder is read-only, so nothing can be compiled at run time and an
uncompiled import costs seconds of cold start.

Bytecode uses ``unchecked-hash`` invalidation: it stays valid whatever the file times
become when the code package is zipped and unpacked.

Finding Python 3.10: ``$RUNTIME_PYTHON``, else ``python3.10`` on PATH, else a pyenv 3.10.
Without one, dependencies are installed as prebuilt 3.10 wheels (pure-Python packages from
source) and the folders ship without bytecode; the build says so.

(Lives in localcloud/ because, like the local cloud, it is never deployed.)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_VERSION = (3, 10)
PLATFORM = "manylinux2014_x86_64"
# Published only as source distributions: pure Python (crcmod's C extension is optional and
# has a pure-Python fallback), so they are installed from source when cross-building.
SOURCE_ONLY = {"alibabacloud-tea", "crcmod", "oss2", "aliyun-python-sdk-core"}
FUNCTIONS = ("submit", "callback", "reconcile", "deadletter")


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_runtime_python() -> str | None:
    want = f"{RUNTIME_VERSION[0]}.{RUNTIME_VERSION[1]}"
    candidates = []
    if os.environ.get("RUNTIME_PYTHON"):
        candidates.append(os.environ["RUNTIME_PYTHON"])
    on_path = shutil.which(f"python{want}")
    if on_path:
        candidates.append(on_path)
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        versions = sorted(Path(root, "versions").glob(f"{want}.*"), reverse=True) if root else []
        candidates += [str(v / "bin" / f"python{want}") for v in versions]
    if sys.version_info[:2] == RUNTIME_VERSION:
        candidates.append(sys.executable)
    for candidate in candidates:
        if _version_of(candidate) == RUNTIME_VERSION:
            return candidate
    return None


def _pip(python: str, *args: str) -> None:
    cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build: pip failed ({' '.join(cmd[3:8])} ...):\n{result.stderr[-4000:]}")


def install_dependencies(target: Path, runtime_python: str | None) -> None:
    requirements = ROOT / "shared" / "requirements.txt"
    if runtime_python:
        _pip(runtime_python, "--target", str(target), "--no-deps", "-r", str(requirements))
        return
    pinned = [line.strip() for line in requirements.read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    source_only = [p for p in pinned if p.split("==")[0].lower() in SOURCE_ONLY]
    wheels = [p for p in pinned if p not in source_only]
    _pip(sys.executable, "--target", str(target), "--no-deps", "--only-binary=:all:", "--platform", PLATFORM,
         "--python-version", "3.10", "--implementation", "cp", *wheels)
    _pip(sys.executable, "--target", str(target), "--no-deps", *source_only)
    for ext in target.glob("crcmod/*.so"):  # built for this machine's Python, not the runtime's
        ext.unlink()


def build(out: Path, *, runtime_python: str | None, log: Callable[[str], object] = print) -> dict[str, Path]:
    requirements = (ROOT / "shared" / "requirements.txt").read_bytes()
    stamp = hashlib.sha256(requirements + (runtime_python or "cross").encode()).hexdigest()[:16]
    deps = out / f".deps-{stamp}"
    if not (deps / ".complete").exists():
        shutil.rmtree(deps, ignore_errors=True)
        log(f"build: installing runtime dependencies into {deps.name}")
        install_dependencies(deps, runtime_python)
        (deps / ".complete").write_text("")
    folders = {}
    for function in FUNCTIONS:
        folder = out / function
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(deps, folder, ignore=shutil.ignore_patterns(".complete", "__pycache__", "*.dist-info", "bin"))
        shutil.copy2(ROOT / "functions" / function / "index.py", folder / "index.py")
        shutil.copytree(ROOT / "shared" / "snapshot_pipeline", folder / "snapshot_pipeline",
                        # never deployed: the CLI (and rich), and the console
                        ignore=shutil.ignore_patterns("__pycache__", "cli", "console"))
        if (ROOT / "shared" / "profiles.json").is_file():  # a deployment's profiles file, beside the library
            shutil.copy2(ROOT / "shared" / "profiles.json", folder / "profiles.json")
        if runtime_python:
            subprocess.run([runtime_python, "-m", "compileall", "-q", "-j", "0",
                            "--invalidation-mode", "unchecked-hash", str(folder)], check=True)
        folders[function] = folder
    if runtime_python:
        log(f"build: precompiled bytecode with Python {RUNTIME_VERSION[0]}.{RUNTIME_VERSION[1]} ({runtime_python})")
    else:
        log("build: WARNING no Python 3.10 found (set RUNTIME_PYTHON, or put python3.10 on PATH): "
            "dependencies were cross-installed as 3.10 wheels, but the folders ship WITHOUT precompiled "
            "bytecode, so cold starts on Function Compute will be slower")
    for folder in folders.values():
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        log(f"build: {folder} ({size / 1e6:.1f} MB)")
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--no-runtime-python", action="store_true",
                        help="build as if no Python 3.10 were installed (cross-install, no bytecode)")
    args = parser.parse_args(argv)
    runtime_python = None if args.no_runtime_python else find_runtime_python()
    build(Path(args.out), runtime_python=runtime_python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
