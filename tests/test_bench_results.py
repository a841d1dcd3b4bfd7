"""bench/results.json is the one source of the README's Performance table and of s.yaml's memory
sizes: a new `make bench` (or a hand edit of either) that leaves them apart fails here."""
from __future__ import annotations

import json

from bench import memory, readme_table

RESULTS = json.loads(readme_table.RESULTS.read_text(encoding="utf-8"))


def test_the_readme_table_is_the_results_table():
    readme = readme_table.README.read_text(encoding="utf-8")
    assert readme_table.current(readme) == readme_table.generated(RESULTS), \
        "README's Performance table is stale: run python -m bench.readme_table"


def test_s_yaml_memory_sizes_leave_twice_the_measured_peak():
    measured = RESULTS["memory"]["peak_rss_mb"]
    assert {"submit", "callback"} <= set(measured)
    deployed = memory.deployed_memory_mb()
    assert {name: deployed[name] for name in measured} == \
           {name: memory.memory_size_mb(peak) for name, peak in measured.items()}
