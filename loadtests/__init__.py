"""Benchmarks of the hub beside their references, measured in one run: ``python -m loadtests`` (``make bench``).

One module per benchmark (`ingest`, `feeds_load`, `closures_load`, `memory`, `matching`), with the
shared plumbing beside them (`machine`, `broker`, `eventgen`, `hubproc`, `nginx`, `wrk`, `report`).
"""
