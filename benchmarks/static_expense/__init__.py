"""Benchmark-only app: a hand-written twin of the scenario's `expense` entity (see ../api_overhead.py)."""
