"""quantdesk benchmarks: `make bench` (python -m benchmarks) prints one table.

Each module has ``run() -> list[dict]``; a row measures quantdesk and a peer side by
side in the same run.  Benchmarks are never part of ``make test``.
"""
