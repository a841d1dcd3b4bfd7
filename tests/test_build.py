"""`make build`: self-contained code folders with bytecode for the runtime's Python."""
import subprocess
import sys

import pytest

from localcloud import build

pytestmark = pytest.mark.slow  # each build installs the runtime dependencies into fresh folders


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    runtime = build.find_runtime_python()
    return out, runtime, build.build(out, runtime_python=runtime, log=lambda *_: None)


def test_each_function_folder_is_self_contained(built):
    _, runtime, folders = built
    assert set(folders) == {"submit", "callback", "reconcile", "deadletter"}
    for name, folder in folders.items():
        assert (folder / "index.py").read_text() == (build.ROOT / "functions" / name / "index.py").read_text()
        for package in ("snapshot_pipeline", "alibabacloud_ice20201109", "alibabacloud_tea_openapi",
                        "alibabacloud_credentials", "oss2", "darabonba"):
            assert (folder / package).is_dir(), f"{name} lacks {package}"
        assert not (folder / "snapshot_pipeline" / "cli").exists()


def test_bytecode_is_precompiled_for_python310(built):
    _, runtime, folders = built
    if runtime is None:
        pytest.skip("no Python 3.10 on this machine: the build ships without bytecode (and says so)")
    for folder in folders.values():
        for module in ("index", "snapshot_pipeline/callback", "alibabacloud_ice20201109/client"):
            path = folder / module
            pyc = path.parent / "__pycache__" / f"{path.name}.cpython-310.pyc"
            assert pyc.exists(), f"missing {pyc}"


def test_handler_imports_in_isolation_under_the_runtime_python(built):
    _, runtime, folders = built
    python = runtime or sys.executable
    for folder in folders.values():
        probe = ("import os, sys; sys.path.insert(0, os.getcwd()); "
                 "import index, oss2, alibabacloud_ice20201109.client; "
                 "print(index.handler.__module__, oss2.__file__.startswith(os.getcwd()))")
        result = subprocess.run([python, "-I", "-B", "-c", probe], cwd=folder, capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["index", "True"]


def test_cross_build_without_runtime_python_still_works_and_says_so(tmp_path):
    messages = []
    folders = build.build(tmp_path, runtime_python=None, log=messages.append)
    assert any("WARNING no Python 3.10 found" in m for m in messages)
    folder = folders["callback"]
    assert not list(folder.rglob("*.pyc"))
    assert list(folder.glob("_cffi_backend.cpython-310-*.so")), "binary wheels must be the runtime's"
    assert (folder / "oss2" / "__init__.py").exists()
