"""Pilotlight benchmarks (`make bench`, `make soak`): measured on a sandbox of their own, never in `make test`.

bench.run measures backup and restore against their own limits, the runbooks' recipe and pgBackRest,
the drill's RTO/RPO and the program's evaluation time, and writes bench/results.json and
docs/benchmarks.md. bench.soak loops backup -> restore -> compare on a changing database.
"""
