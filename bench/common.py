"""Helpers shared by the benchmarks: statistics, timing and the local cloud they run on."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stats(values: Iterable[float]) -> dict[str, Any]:
    """median / min / max (and every run) of a list of measurements, in seconds."""
    values = [float(v) for v in values]
    if not values:
        return {"median": None, "min": None, "max": None, "runs": 0, "values": []}
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "runs": len(values), "values": [round(v, 4) for v in values]}


def ratio_stats(numerators: list[float], denominators: list[float]) -> dict[str, Any]:
    """The ratio of the medians, with the spread of the per-pair ratios (runs were alternated)."""
    pairs = [n / d for n, d in zip(numerators, denominators, strict=True) if d]
    med = statistics.median(numerators) / statistics.median(denominators) if numerators and denominators else None
    return {"median": round(med, 4) if med is not None else None,
            "min": round(min(pairs), 4) if pairs else None, "max": round(max(pairs), 4) if pairs else None,
            "runs": len(pairs), "pairs": [round(p, 4) for p in pairs]}


@dataclass
class Figure:
    """One line of the table."""
    name: str
    stats: dict[str, Any]
    unit: str = "s"
    target: str | None = None
    met: bool | None = None
    note: str | None = None


@dataclass
class Section:
    name: str
    flat: dict[str, Any] = field(default_factory=dict)  # the keys the issue names
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def figure(self, name: str, values: dict[str, Any], **kw: Any) -> Figure:
        fig = Figure(name, values, **kw)
        self.figures.append(fig)
        return fig


def machine() -> dict[str, Any]:
    from localcloud.build import _version_of, find_runtime_python

    runtime = find_runtime_python()
    version = _version_of(runtime) if runtime else None
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "runtime_python_version": ".".join(map(str, version)) if version else None,
    }


def start_cloud(**options: Any):
    from localcloud.cloud import LocalCloud, LocalCloudOptions

    return LocalCloud(LocalCloudOptions(**options)).start()
