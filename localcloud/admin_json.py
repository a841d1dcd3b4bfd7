"""The JSON bodies of the local cloud's admin endpoints (ICE's and OSS's ``/__localcloud/...``)."""
from __future__ import annotations

import json
from typing import Any


def json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object (an empty body is ``{}``); ValueError names what is wrong with it."""
    try:
        value = json.loads(body or b"{}")
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value
