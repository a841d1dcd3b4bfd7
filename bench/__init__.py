"""Benchmarks of the pipeline on the local cloud, side by side with the baselines (``make bench``).

``python -m bench`` runs every benchmark, prints a markdown table and writes ``bench/results.json``.
Each figure is the median of at least five runs, with min and max; a comparison runs both sides in
the same process, alternating, and reports their ratio (only ratios are targets: this machine is
shared and noisy).
"""
