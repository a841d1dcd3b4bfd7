"""s.yaml: every fc3 resource's props validate against the component's published schema,
and the triggers are the ones the product needs.

The schema is vendored in tests/schemas/ (the Serverless Devs fc3 component's, MIT; see its README)."""
import json

import jsonschema
import pytest

from localcloud import slsyaml
from tests.conftest import ROOT

SCHEMA = ROOT / "tests" / "schemas" / "fc3-props.schema.json"
DEPLOY_ENV = {"REGION": "cn-shanghai", "INPUT_BUCKET": "videos", "OUTPUT_BUCKET": "videos",
              "SNAPSHOT_TEMPLATE_ID": "tpl-1", "CALLBACK_URL": "https://cb.example.com/",
              "ICE_CALLBACK_AUTH_KEY": "Key123abc"}


@pytest.fixture(scope="module")
def functions():
    return slsyaml.load(ROOT / "s.yaml", env=DEPLOY_ENV, config={"AccountID": "1000000000000001"})


def test_every_resource_validates_against_the_fc3_schema(functions):
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert set(functions) == {"submit", "callback", "reconcile"}
    for name, spec in functions.items():
        errors = sorted(validator.iter_errors(dict(spec.props)), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_submit_trigger_subscribes_to_whole_uploads_only(functions):
    (trigger,) = functions["submit"].triggers
    assert trigger["triggerType"] == "oss"
    assert trigger["triggerConfig"]["events"] == [
        "oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject", "oss:ObjectCreated:CompleteMultipartUpload"]
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
