"""The deployed functions' imports: the operator CLI and its terminal library (rich) are not among them,
neither when a handler module is loaded nor later, from an import inside a function."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = sorted((ROOT / "functions").glob("*/index.py"))
LIBRARY = ROOT / "shared" / "snapshot_pipeline"

#: Imports every handler module given as an argument, then prints the names of the modules loaded.
PROBE = textwrap.dedent("""
    import importlib.util, json, sys
    for n, path in enumerate(sys.argv[1:]):
        spec = importlib.util.spec_from_file_location(f"handler{n}", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    print(json.dumps(sorted(sys.modules)))
""")


def banned(module: str) -> bool:
    """rich, or the operator CLI: neither is in the functions' code folders."""
    return module.partition(".")[0] == "rich" or (module + ".").startswith("snapshot_pipeline.cli.")


def loaded_by(*handlers: Path) -> list[str]:
    """The banned modules a fresh interpreter has loaded after importing ``handlers``."""
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, handlers)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return [m for m in json.loads(done.stdout) if banned(m)]


def imported_modules(source: str, package: str) -> list[str]:
    """Every module an import statement in ``source`` names, at any depth (an import inside a function
    too); relative imports are resolved against ``package``, the dotted package the source is in."""
    parts = package.split(".") if package else []
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = parts[:len(parts) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *([node.module] if node.module else [])])
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def _package_of(path: Path) -> str:
    return ".".join(["snapshot_pipeline", *path.parent.relative_to(LIBRARY).parts]) if LIBRARY in path.parents else ""


def test_no_function_imports_rich_or_the_cli():
    assert len(HANDLERS) == 4  # submit, callback, reconcile, deadletter
    assert loaded_by(*HANDLERS) == []


def test_the_probe_sees_rich_when_it_is_imported(tmp_path):
    handler = tmp_path / "index.py"
    handler.write_text("import snapshot_pipeline.cli\n")
    assert {"rich", "snapshot_pipeline.cli"} <= set(loaded_by(handler))


def test_no_deployed_module_imports_rich_or_the_cli_even_inside_a_function():
    deployed = [*HANDLERS, *(p for p in LIBRARY.rglob("*.py") if "cli" not in p.relative_to(LIBRARY).parts)]
    assert len(deployed) > 15
    offenders = {str(path.relative_to(ROOT)): found for path in deployed
                 if (found := [m for m in imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
                               if banned(m)])}
    assert not offenders, f"deployed modules that import the CLI or rich: {offenders}"


def test_the_import_scan_sees_lazy_and_relative_imports():
    source = textwrap.dedent("""
        def handler(event, context):
            from .cli import output
            from . import cli
            import rich.table
        """)
    assert [m for m in imported_modules(source, "snapshot_pipeline") if banned(m)] == [
        "snapshot_pipeline.cli", "snapshot_pipeline.cli.output", "snapshot_pipeline.cli", "rich.table"]
    assert [m for m in imported_modules("from ..cli import errors", "snapshot_pipeline.sub") if banned(m)] == [
        "snapshot_pipeline.cli", "snapshot_pipeline.cli.errors"]
    assert not banned("snapshot_pipeline.client") and not banned("richer")
