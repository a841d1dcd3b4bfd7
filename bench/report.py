"""The markdown table and ``bench/results.json``."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .common import Section

TITLES = {
    "cold_start": "1. Cold start of the callback function",
    "callback": "2. Callback latency vs snapshot count (ICE +50 ms per call)",
    "burst": "3. Burst: 1000 uploads, 16 instances, SubmitSnapshotJob 50 QPS, 5% 5xx",
    "engine": "4. Snapshot engine: 10 stills of a 60 s 720p H.264 clip",
    "reconcile_scale": "5. One reconciler run: settled history + 100 lost callbacks",
    "memory": "6. Memory (burst and callback benchmarks) and Function Compute cost",
}


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if unit == "x":
            return f"{value:.2f}"
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def table(doc: dict[str, Any]) -> str:
    """The markdown table of a results document (``results``): one row per figure of each section."""
    lines = ["| benchmark | figure | median | min | max | runs | target | met |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for name, section in doc.items():
        for i, fig in enumerate(section.get("figures", ()) if isinstance(section, dict) else ()):
            unit = fig["unit"]
            suffix = "" if unit in ("", "x") else f" {unit}"
            median = _fmt(fig["stats"].get("median"), unit)
            lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                TITLES.get(name, name) if i == 0 else "",
                fig["name"],
                median + (suffix if median != "-" and unit != "" else ""),
                _fmt(fig["stats"].get("min"), unit), _fmt(fig["stats"].get("max"), unit),
                fig["stats"].get("runs", ""), fig["target"] or "",
                "" if fig["met"] is None else ("yes" if fig["met"] else "**no**")))
    return "\n".join(lines)


def results(sections: list[Section], *, machine: dict, command: str, elapsed_s: float,
            notes: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section in sections:
        doc[section.name] = dict(section.flat, stats=section.details,
                                 figures=[{k: v for k, v in asdict(f).items() if k != "note"} for f in section.figures])
    doc["targets"] = {f"{s.name}.{f.name}": {"target": f.target, "median": f.stats.get("median"), "met": f.met}
                      for s in sections for f in s.figures if f.target}
    doc["notes"] = notes
    doc["machine"] = machine
    doc["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc["command"] = command
    doc["elapsed_s"] = round(elapsed_s, 1)
    return doc


def write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
