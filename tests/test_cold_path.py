"""The deployed functions' imports: the operator CLI and its terminal library (rich) are not among them."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = sorted((ROOT / "functions").glob("*/index.py"))

#: Imports every handler module given as an argument, then prints the modules of rich and of the CLI it loaded.
PROBE = textwrap.dedent("""
    import importlib.util, json, sys
    for n, path in enumerate(sys.argv[1:]):
        spec = importlib.util.spec_from_file_location(f"handler{n}", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    def banned(name):
        return name.partition(".")[0] == "rich" or (name + ".").startswith("snapshot_pipeline.cli.")
    print(json.dumps(sorted(filter(banned, sys.modules))))
""")


def test_no_function_imports_rich_or_the_cli():
    assert len(HANDLERS) == 3
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, HANDLERS)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_probe_sees_rich_when_it_is_imported(tmp_path):
    handler = tmp_path / "index.py"
    handler.write_text("import snapshot_pipeline.cli\n")
    done = subprocess.run([sys.executable, "-c", PROBE, str(handler)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {"rich", "snapshot_pipeline.cli"} <= set(json.loads(done.stdout))
