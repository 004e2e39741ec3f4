"""Benchmarks for Responder (run as ``python -m bench.<name>``; see bench/README.md)."""
