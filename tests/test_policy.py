"""The function role's least-privilege RAM policy covers what the functions call, and no more."""
import ast
import json

from tests.conftest import ROOT

POLICY = ROOT / "shared" / "policies" / "function-role-policy.json"
LIBRARY = ROOT / "shared" / "snapshot_pipeline"
#: The modules the three functions run (the CLI, with operator credentials, is not among them).
FUNCTION_MODULES = ("submit.py", "callback.py", "reconcile.py", "claims.py", "index.py", "publish.py", "runtime.py")


def _ice_actions_by_method() -> dict[str, set[str]]:
    """For each method of snapshot_pipeline.ice.IceClient, the API actions it calls, directly or through
    the class's other methods (``self._call("get_snapshot_urls", ...)`` -> GetSnapshotUrls)."""
    (cls,) = [n for n in ast.parse((LIBRARY / "ice.py").read_text()).body
              if isinstance(n, ast.ClassDef) and n.name == "IceClient"]
    direct: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        direct[method.name], calls[method.name] = set(), set()
        for node in ast.walk(method):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                if node.func.attr == "_call" and isinstance(node.args[0], ast.Constant):
                    direct[method.name].add("ice:" + "".join(w.title() for w in node.args[0].value.split("_")))
                else:
                    calls[method.name].add(node.func.attr)

    def closure(name: str, seen: frozenset = frozenset()) -> set[str]:
        found = set(direct.get(name, ()))
        for callee in calls.get(name, ()) - seen:
            found |= closure(callee, seen | {name})
        return found

    return {name: closure(name) for name in direct}


def _ice_methods_used_by_functions() -> set[str]:
    """Attribute calls on an ``ice`` object (``self.ice.x(...)``, ``ice.x(...)``) in the functions' code."""
    used = set()
    sources = [LIBRARY / m for m in FUNCTION_MODULES] + list((ROOT / "functions").glob("*/index.py"))
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
                if name == "ice":
                    used.add(node.func.attr)
    return used


def test_policy_allows_exactly_the_ice_actions_the_functions_call():
    by_method = _ice_actions_by_method()
    used = _ice_methods_used_by_functions()
    assert used and used <= set(by_method), used - set(by_method)
    needed = set().union(*(by_method[m] for m in used))
    statements = json.loads(POLICY.read_text())["Statement"]
    allowed = {a for s in statements for a in s["Action"] if a.startswith("ice:")}
    assert needed == allowed == {"ice:SubmitSnapshotJob", "ice:GetSnapshotJob", "ice:GetSnapshotUrls",
                                 "ice:ListSnapshotJobs"}
    # the operator's calls (templates, event callback) are not granted to the functions
    assert "ice:CreateCustomTemplate" in by_method["create_snapshot_template"]
    assert "ice:CreateCustomTemplate" not in allowed


def test_policy_has_no_wildcard_actions_and_names_buckets_only():
    statements = json.loads(POLICY.read_text())["Statement"]
    for s in statements:
        assert s["Effect"] == "Allow"
        assert all("*" not in a for a in s["Action"])
        if any(a.startswith("oss:") for a in s["Action"]):
            assert all(r.startswith("acs:oss:*:*:${") for r in s["Resource"])
    oss_actions = {a for s in statements for a in s["Action"] if a.startswith("oss:")}
    assert oss_actions == {"oss:GetObject", "oss:PutObject", "oss:ListObjects", "oss:DeleteObject"}


def test_policy_grants_deletes_on_the_output_prefix_only():
    statements = json.loads(POLICY.read_text())["Statement"]
    deleting = [s for s in statements if "oss:DeleteObject" in s["Action"]]
    assert deleting == [{"Effect": "Allow", "Action": ["oss:DeleteObject"],
                         "Resource": ["acs:oss:*:*:${OUTPUT_BUCKET}/${OUTPUT_PREFIX}*"]}]


def test_s_yaml_and_readme_reference_the_policy():
    assert "shared/policies/function-role-policy.json" in (ROOT / "s.yaml").read_text()
    assert "shared/policies/function-role-policy.json" in (ROOT / "README.md").read_text()


def test_policy_lets_the_functions_invoke_only_the_dead_letter_destination():
    """FC invokes an async destination function as the source function's role: ``fc:InvokeFunction``
    on exactly the function s.yaml names as the submit function's onFailure destination."""
    from localcloud import slsyaml

    statements = json.loads(POLICY.read_text())["Statement"]
    invoking = [s for s in statements if any(a.startswith("fc:") for a in s["Action"])]
    assert invoking == [{"Effect": "Allow", "Action": ["fc:InvokeFunction"],
                         "Resource": ["acs:fc:${REGION}:${ACCOUNT_ID}:functions/video-snapshot-deadletter"]}]
    functions = slsyaml.load(ROOT / "s.yaml", env={"REGION": "cn-shanghai"}, config={"AccountID": "1"})
    assert functions["submit"].on_failure_destination == "acs:fc:cn-shanghai:1:functions/video-snapshot-deadletter"
    assert functions["deadletter"].props["functionName"] == "video-snapshot-deadletter"
