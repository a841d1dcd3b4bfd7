"""Read s.yaml as Serverless Devs does, so the local cloud runs the functions it declares.

Supports the template expressions the project's s.yaml uses: ``${vars.NAME}``,
``${env('NAME', 'default')}`` and ``${config("AccountID")}``. Anything else is an error,
so a new expression in s.yaml cannot be silently misread.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{([^{}]+)\}")
_ENV = re.compile(r"""^env\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)$""")
_CONFIG = re.compile(r"""^config\(\s*['"]([^'"]+)['"]\s*\)$""")


class SYamlError(ValueError):
    pass


def _substitute(value: Any, resolve: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        previous = None
        while previous != value:
            previous, value = value, _EXPR.sub(lambda m: str(resolve(m.group(1).strip())), value)
        return value
    if isinstance(value, list):
        return [_substitute(v, resolve) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, resolve) for k, v in value.items()}
    return value


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            value = _merged(current, value)
        merged[key] = value
    return merged


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # the resource name in s.yaml, e.g. "submit"
    props: Mapping[str, Any] = field(repr=False)

    def with_props(self, overrides: Mapping[str, Any]) -> FunctionSpec:
        """This function with ``overrides`` merged into its props (nested mappings merged key by key)."""
        return FunctionSpec(self.name, _merged(self.props, overrides))

    @property
    def environment(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.props.get("environmentVariables") or {}).items()}

    @property
    def timeout_s(self) -> int:
        return int(self.props.get("timeout", 3))

    @property
    def triggers(self) -> list[Mapping[str, Any]]:
        return list(self.props.get("triggers") or [])

    @property
    def _async_config(self) -> Mapping[str, Any]:
        return self.props.get("asyncInvokeConfig") or {}

    @property
    def max_async_retries(self) -> int:
        return int(self._async_config.get("maxAsyncRetryAttempts", 3))

    @property
    def max_async_event_age_s(self) -> float:
        """How long an async invocation may wait to be run (FC's default: 18000 s, the schema's)."""
        return float(self._async_config.get("maxAsyncEventAgeInSeconds", 18000))

    @property
    def on_failure_destination(self) -> str | None:
        """The ARN async invocations go to when their last retry failed (``destinationConfig.onFailure``)."""
        destination = ((self._async_config.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
        return str(destination) if destination else None


def load(path: str | Path, *, env: Mapping[str, str], config: Mapping[str, str]) -> dict[str, FunctionSpec]:
    doc = yaml.safe_load(Path(path).read_text())
    raw_vars = doc.get("vars") or {}
    resolved_vars: dict[str, Any] = {}

    def resolve(expr: str) -> Any:
        if expr.startswith("vars."):
            name = expr[len("vars."):]
            if name not in raw_vars:
                raise SYamlError(f"s.yaml refers to undefined ${{{expr}}}")
            if name not in resolved_vars:
                resolved_vars[name] = _substitute(raw_vars[name], resolve)
            return resolved_vars[name]
        m = _ENV.match(expr)
        if m:
            return env.get(m.group(1)) or (m.group(2) or "")
        m = _CONFIG.match(expr)
        if m:
            if m.group(1) not in config:
                raise SYamlError(f"s.yaml asks for config({m.group(1)!r}), which is not known locally")
            return config[m.group(1)]
        raise SYamlError(f"s.yaml expression ${{{expr}}} is not supported by the local cloud")

    functions = {}
    for name, resource in (doc.get("resources") or {}).items():
        if resource.get("component") != "fc3":
            continue
        functions[name] = FunctionSpec(name, _substitute(resource.get("props") or {}, resolve))
    return functions
