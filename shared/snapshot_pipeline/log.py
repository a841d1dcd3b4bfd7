"""Structured logs: one JSON object per line on stdout, which Function Compute ships to SLS.

Callers pass plain fields; nothing here ever receives a secret, a signature or a signed URL.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event}
    record.update({k: v for k, v in fields.items() if v is not None})
    sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
