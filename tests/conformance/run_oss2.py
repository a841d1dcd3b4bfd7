"""``make conformance``: oss2's own test suite, from its sdist, against a LocalOss.

Fetches the sdist of the installed oss2 (``pip download --no-binary :all:``) into a scratch folder
(``.localcloud/conformance/``, never committed), starts a LocalOss in this process, and runs the
suite's object, listing, iterator, multipart, upload, download, Chinese-key, chunked-upload, header
and signing files in a pytest subprocess pointed at it through the suite's own variables
(``OSS_TEST_ENDPOINT``, ``OSS_TEST_ACCESS_KEY_ID``...). The tests listed in ``oss2_out_of_scope.txt``
are skipped with their reason (see ``oss2_scope_plugin``); every other
one must pass. Exit status: pytest's.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from localcloud.oss import LocalOss

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: The suite's files in scope: what the product and its users do with OSS.
IN_SCOPE_FILES = (
    "test_object.py",
    "test_list_objects_v2.py",
    "test_iterator.py",
    "test_multipart.py",
    "test_upload.py",
    "test_download.py",
    "test_chinese.py",
    "test_put_object_chunked.py",
    "test_headers.py",
    "test_sign.py",
)
ACCESS_KEY_ID = "conformance-key-id"
ACCESS_KEY_SECRET = "conformance-key-secret"
#: The whole run's limit; a run takes about a minute.
SUITE_TIMEOUT_SECONDS = 20 * 60


def fetch_suite(workdir: Path, version: str) -> Path:
    """The unpacked sdist of oss2 ``version`` in ``workdir``, downloaded the first time only."""
    unpacked = workdir / f"oss2-{version}"
    if (unpacked / "tests").is_dir():
        _stand_in_for_missing_image(unpacked)
        return unpacked
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    f"oss2=={version}", "--dest", str(workdir)], check=True)
    with tarfile.open(workdir / f"oss2-{version}.tar.gz") as sdist:
        if hasattr(tarfile, "data_filter"):
            sdist.extractall(workdir, filter="data")
        else:  # Python 3.10 before 3.10.12: no extraction filters
            sdist.extractall(workdir)
    _stand_in_for_missing_image(unpacked)
    return unpacked


def _stand_in_for_missing_image(suite: Path) -> None:
    """tests/example.jpg, which the suite reads and its sdist does not ship: the tests in scope only
    upload its bytes (the image-processing ones are out of scope), so any bytes do."""
    image = suite / "tests" / "example.jpg"
    if not image.exists():
        image.write_bytes(b"\xff\xd8\xff\xe0 stand-in for the suite's example.jpg \xff\xd9")


def suite_environment(endpoint: str) -> dict[str, str]:
    """The variables the suite's tests/common.py reads, and the path to the scope plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_TEST_")}
    env.update(OSS_TEST_ENDPOINT=endpoint, OSS_TEST_ACCESS_KEY_ID=ACCESS_KEY_ID,
               OSS_TEST_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET, OSS_TEST_REGION="cn-hangzhou",
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])))
    return env


def run_suite(suite: Path, endpoint: str, pytest_args: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", "-c", str(suite / "setup.cfg"), "--rootdir", str(suite),
               "-p", "oss2_scope_plugin", "-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-rfEs",
               *pytest_args, *(f"tests/{name}" for name in IN_SCOPE_FILES)]
    return subprocess.run(command, cwd=suite, env=suite_environment(endpoint),
                          timeout=SUITE_TIMEOUT_SECONDS).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".localcloud" / "conformance",
                        help="scratch folder for the sdist (default: .localcloud/conformance)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --), e.g. -- -k multipart")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    suite = fetch_suite(args.workdir.resolve(), importlib.metadata.version("oss2"))
    with LocalOss(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET) as oss:
        # Said before the run: pytest's summary stays the last line (CI reads it).
        print(f"conformance: {suite.name}'s own tests (sdist ready in {time.monotonic() - started:.0f} s) "
              f"against LocalOss at {oss.endpoint}", flush=True)
        return run_suite(suite, oss.endpoint, args.pytest_args)


if __name__ == "__main__":
    sys.exit(main())
