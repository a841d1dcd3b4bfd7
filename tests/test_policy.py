"""The function role's least-privilege RAM policy covers what the code calls, and no more."""
import json
import re

from tests.conftest import ROOT

POLICY = ROOT / "shared" / "policies" / "function-role-policy.json"


def test_policy_allows_exactly_the_ice_actions_the_functions_call():
    statements = json.loads(POLICY.read_text())["Statement"]
    ice_actions = {a for s in statements for a in s["Action"] if a.startswith("ice:")}
    assert ice_actions == {"ice:SubmitSnapshotJob", "ice:GetSnapshotJob", "ice:GetSnapshotUrls",
                           "ice:ListSnapshotJobs"}
    library = "\n".join(p.read_text() for p in (ROOT / "shared" / "snapshot_pipeline").glob("*.py")
                        if p.name != "cli.py")
    called = {"ice:" + "".join(w.title() for w in m.split("_"))
              for m in re.findall(r'_call\("([a-z_]+)"', library)}
    # what the functions call (the operator CLI's template and callback calls run with operator credentials)
    used_by_functions = called & ice_actions
    assert used_by_functions == ice_actions


def test_policy_has_no_wildcard_actions_and_names_buckets_only():
    statements = json.loads(POLICY.read_text())["Statement"]
    for s in statements:
        assert s["Effect"] == "Allow"
        assert all("*" not in a for a in s["Action"])
        if any(a.startswith("oss:") for a in s["Action"]):
            assert all(r.startswith("acs:oss:*:*:${") for r in s["Resource"])
    oss_actions = {a for s in statements for a in s["Action"] if a.startswith("oss:")}
    assert oss_actions == {"oss:GetObject", "oss:PutObject", "oss:ListObjects"}


def test_s_yaml_and_readme_reference_the_policy():
    assert "shared/policies/function-role-policy.json" in (ROOT / "s.yaml").read_text()
    assert "shared/policies/function-role-policy.json" in (ROOT / "README.md").read_text()
