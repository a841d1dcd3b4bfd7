"""s.yaml: every fc3 resource's props validate against the component's published schema,
the real Serverless Devs CLI renders them as the local cloud reads them, and the triggers are the
ones the product needs.

The schema is vendored in tests/schemas/ (the Serverless Devs fc3 component's, MIT; see its README)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from localcloud import slsyaml
from tests.conftest import ROOT

SCHEMA = ROOT / "tests" / "schemas" / "fc3-props.schema.json"
ACCOUNT_ID = "1000000000000001"
DEPLOY_ENV = {"REGION": "cn-shanghai", "INPUT_BUCKET": "videos", "OUTPUT_BUCKET": "videos",
              "SNAPSHOT_TEMPLATE_ID": "tpl-1", "CALLBACK_URL": "https://cb.example.com/",
              "ICE_CALLBACK_AUTH_KEY": "Key123abc"}
SERVERLESS_DEVS = ("@serverless-devs/s", "3.1.10")
# Installed once, reused by later runs; .gitignore leaves .cache/ out of the repository.
SERVERLESS_DEVS_DIR = ROOT / ".cache" / "serverless-devs"
NPM_INSTALL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def functions():
    return slsyaml.load(ROOT / "s.yaml", env=DEPLOY_ENV, config={"AccountID": ACCOUNT_ID})


def _installed_serverless_devs_version() -> str | None:
    manifest = SERVERLESS_DEVS_DIR / "node_modules" / SERVERLESS_DEVS[0] / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@pytest.fixture(scope="module")
def s_cli() -> Path:
    """The Serverless Devs CLI (``s``), installed from npm into the cache folder unless it is there."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed, so the Serverless Devs CLI cannot run (.ci/run installs them)")
    package, version = SERVERLESS_DEVS
    if _installed_serverless_devs_version() != version:
        command = ["npm", "install", "--prefix", str(SERVERLESS_DEVS_DIR), "--no-audit", "--no-fund",
                   "--loglevel=error", f"{package}@{version}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(command)}` did not finish within {NPM_INSTALL_TIMEOUT_S} s")
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return SERVERLESS_DEVS_DIR / "node_modules" / ".bin" / "s"


def run_s(s_cli: Path, home: Path, *args: str) -> str:
    """Run ``s`` in the repository with only the deploy settings in its environment; its stdout."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "NO_UPDATE_NOTIFIER": "1", **DEPLOY_ENV}
    done = subprocess.run([str(s_cli), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"s {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


def test_every_resource_validates_against_the_fc3_schema(functions):
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert set(functions) == {"submit", "callback", "reconcile", "deadletter"}
    for name, spec in functions.items():
        errors = sorted(validator.iter_errors(dict(spec.props)), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.mark.slow
def test_the_serverless_devs_cli_renders_s_yaml_as_the_local_cloud_reads_it(s_cli, functions, tmp_path):
    # `s preview` works offline; an account is needed only for ${config("AccountID")}.
    run_s(s_cli, tmp_path, "config", "add", "--AccessKeyID", "LTAIlocal", "--AccessKeySecret", "local",
          "--AccountID", ACCOUNT_ID, "--access", "default")
    rendered = json.loads(run_s(s_cli, tmp_path, "preview", "--template", "s.yaml", "--output-format", "json",
                                "--silent"))
    assert set(rendered["resources"]) == {"submit", "callback", "reconcile", "deadletter"}
    for name, spec in functions.items():
        assert rendered["resources"][name]["component"] == "fc3"
        assert rendered["resources"][name]["props"] == dict(spec.props), name


def test_submit_trigger_subscribes_to_whole_uploads_only(functions):
    (trigger,) = functions["submit"].triggers
    assert trigger["triggerType"] == "oss"
    assert trigger["triggerConfig"]["events"] == [
        "oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject", "oss:ObjectCreated:CompleteMultipartUpload",
        "oss:ObjectCreated:CopyObject", "oss:ObjectRemoved:DeleteObject", "oss:ObjectRemoved:DeleteObjects"]
    assert trigger["triggerConfig"]["filter"]["key"]["prefix"] == "uploads/"
    assert trigger["sourceArn"] == "acs:oss:cn-shanghai:1000000000000001:videos"


def test_callback_is_anonymous_post_http(functions):
    (trigger,) = functions["callback"].triggers
    assert trigger["triggerType"] == "http"
    assert trigger["triggerConfig"]["authType"] == "anonymous"
    assert trigger["triggerConfig"]["methods"] == ["POST"]


def test_functions_run_python310_from_build_folders(functions):
    for name, spec in functions.items():
        assert spec.props["runtime"] == "python3.10"
        assert spec.props["code"] == f"./build/{name}"
        assert spec.props["handler"] == "index.handler"
        assert (ROOT / "functions" / name / "index.py").exists()


def test_deploy_settings_reach_the_functions(functions):
    assert functions["submit"].environment["SNAPSHOT_TEMPLATE_ID"] == "tpl-1"
    assert functions["callback"].environment["ICE_CALLBACK_AUTH_KEY"] == "Key123abc"
    assert functions["callback"].environment["CALLBACK_URL"] == "https://cb.example.com/"


def test_unknown_expression_is_refused(tmp_path):
    (tmp_path / "s.yaml").write_text("resources:\n  f:\n    component: fc3\n    props:\n      x: ${oops()}\n")
    with pytest.raises(slsyaml.SYamlError, match="oops"):
        slsyaml.load(tmp_path / "s.yaml", env={}, config={})


def test_reconciler_runs_on_a_timer(functions):
    (trigger,) = functions["reconcile"].triggers
    assert trigger["triggerType"] == "timer"
    assert trigger["triggerConfig"]["enable"] is True
    assert trigger["triggerConfig"]["cronExpression"] == "@every 10m"
    assert functions["reconcile"].environment["OUTPUT_BUCKET"] == "videos"


def test_submit_failures_go_to_the_dead_letter_function(functions):
    destination = functions["submit"].props["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert destination == "acs:fc:cn-shanghai:1000000000000001:functions/video-snapshot-deadletter"
    assert functions["deadletter"].props["functionName"] == "video-snapshot-deadletter"
    assert functions["deadletter"].triggers == []  # only Function Compute invokes it, as a destination
    assert functions["deadletter"].environment["OUTPUT_BUCKET"] == "videos"


def test_every_function_has_a_size_function_compute_accepts(functions):
    """FC 3.0 (CreateFunctionInput): memorySize a multiple of 64 MB from 128 MB, cpu a multiple of 0.05,
    and memory between 1 and 4 GB per vCPU; a function without ``cpu`` gets the fc3 default, 0.35."""
    from bench.memory import DEFAULT_CPU

    for name, spec in functions.items():
        memory_mb, cpu = int(spec.props.get("memorySize", 512)), float(spec.props.get("cpu", DEFAULT_CPU))
        assert memory_mb >= 128 and memory_mb % 64 == 0, (name, memory_mb)
        assert round(cpu / 0.05, 6).is_integer(), (name, cpu)
        assert cpu * 1024 <= memory_mb <= cpu * 4 * 1024, f"{name}: {memory_mb} MB with {cpu} vCPU"
