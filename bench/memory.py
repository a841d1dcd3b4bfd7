"""6. Memory and cost, from the burst and the callback benchmark of the same run.

Each function's peak memory is the largest peak resident set size (VmHWM) any of its
instances reported (the local FC's instance processes; the callback benchmark's worker process).
``s.yaml``'s ``memorySize`` must be the smallest Function Compute 3.0 size with at least 2x that:
a multiple of 64 MB, 128 MB to 32 GB, and between 1x and 4x the vCPUs in GB (``cpu`` is not set in
s.yaml, so it is the fc3 component's default, 0.35 vCPU: at least 384 MB)
(https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-createfunctioninput).

The cost per 1,000 uploads uses the burst's invocations per upload and mean billed durations (the
local FC's ``Invocation.billed_s``: cold starts included, the wait for a free instance not; measured
on a shared 2-core machine, so an upper bound for FC's own instances) at FC 3.0's pay-as-you-go price
(https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/product-overview/pay-as-you-go-billing-method-1,
last updated 2024-08-27): CU = invocations / 10,000 x 75 + vCPU-s x 1 + GB-s x 0.15, tier 1 at
USD 0.000020 per CU. ICE's snapshot price is not part of it (no per-snapshot price found published).
"""
from __future__ import annotations

import math
from typing import Any

from .common import ROOT, Section

HEADROOM = 2
DEFAULT_CPU = 0.35  # vCPU: the fc3 component's default when s.yaml sets no cpu
PRICE_DATE = "2024-08-27"
USD_PER_CU = 0.000020  # tier 1 (up to 100 million CU a month)
CU_PER_10K_INVOCATIONS = 75
CU_PER_VCPU_S = 1.0
CU_PER_GB_S = 0.15
UPLOADS = 1000


def memory_size_mb(peak_mb: float, cpu: float = DEFAULT_CPU) -> int:
    """The smallest FC 3.0 memorySize with ``HEADROOM`` x ``peak_mb`` that ``cpu`` allows (1:1 to 1:4 GB)."""
    size = max(128, math.ceil(max(HEADROOM * peak_mb, cpu * 1024) / 64) * 64)
    if size > cpu * 4 * 1024:
        raise ValueError(f"{size} MB needs more than {cpu} vCPU (at most 4 GB per vCPU)")
    return size


def deployed_memory_mb() -> dict[str, int]:
    """``memorySize`` of each function in s.yaml."""
    from localcloud import slsyaml

    specs = slsyaml.load(ROOT / "s.yaml", env={}, config={"AccountID": "0"})
    return {name: int(spec.props.get("memorySize", 512)) for name, spec in specs.items()}


def peaks(*sections: Section) -> dict[str, float]:
    """Each function's largest peak (MiB) across the sections' ``peak_rss_mb``."""
    merged: dict[str, float] = {}
    for section in sections:
        for name, mb in (section.flat.get("peak_rss_mb") or {}).items():
            merged[name] = max(merged.get(name, 0.0), mb)
    return merged


def cost_per_uploads(burst: Section, memory_mb: dict[str, int], uploads: int = UPLOADS) -> dict[str, Any]:
    """Invocations, GB-seconds, vCPU-seconds and USD per ``uploads`` uploads, from the burst's median run."""
    runs = burst.details.get("runs") or []
    if not runs:
        return {}
    run = sorted(runs, key=lambda r: r.get("submit_wall_s") or 0)[len(runs) // 2]
    scale = uploads / run["uploads"]
    invocations = gb_s = vcpu_s = 0.0
    for name, count in run["invocations"].items():
        seconds = count * scale * run["mean_duration_s"][name]
        invocations += count * scale
        gb_s += seconds * memory_mb.get(name, 512) / 1024
        vcpu_s += seconds * DEFAULT_CPU
    cu = invocations / 10_000 * CU_PER_10K_INVOCATIONS + vcpu_s * CU_PER_VCPU_S + gb_s * CU_PER_GB_S
    return {"uploads": uploads, "invocations": round(invocations), "gb_s": round(gb_s, 2),
            "vcpu_s": round(vcpu_s, 2), "cu": round(cu, 1), "usd": round(cu * USD_PER_CU, 5),
            "usd_per_cu": USD_PER_CU, "price_date": PRICE_DATE, "cpu": DEFAULT_CPU}


def run(burst: Section | None, callback: Section | None) -> Section:
    """Peaks, the memorySize each wants (s.yaml must say it: tests/test_bench_results.py), the cost."""
    section = Section("memory")
    peak = peaks(*(s for s in (burst, callback) if s is not None))
    wanted = {name: memory_size_mb(mb) for name, mb in peak.items()}
    section.flat = {"peak_rss_mb": peak, "memory_size_mb": wanted}
    for name, mb in sorted(peak.items()):
        section.figure(f"{name}: peak memory (MiB)", {"median": mb, "min": None, "max": None, "runs": 1}, unit="")
        section.figure(f"{name}: memorySize with 2x headroom at {DEFAULT_CPU} vCPU (MB)",
                       {"median": wanted[name], "min": None, "max": None, "runs": 1}, unit="")
    if burst is not None:
        cost = section.flat["cost_per_1000_uploads"] = cost_per_uploads(burst, {**deployed_memory_mb(), **wanted})
        if cost:
            section.figure(f"FC cost per {cost['uploads']} uploads, USD ({cost['invocations']} invocations, "
                           f"{cost['gb_s']} GB-s, {cost['vcpu_s']} vCPU-s; price of {cost['price_date']})",
                           {"median": cost["usd"], "min": None, "max": None, "runs": 1}, unit="")
    return section
