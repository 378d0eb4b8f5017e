"""Benchmarks of fer-edge against its peers: accuracy, per-face latency, pipeline FPS, daemon memory, sizes.

`python -m bench` or `fer-edge bench` runs them all and writes bench/RESULTS.md and bench/results.json.
"""
