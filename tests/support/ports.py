"""Ports for the suite's servers: ``bench.ports`` (one helper for the benchmark's servers and the suite's)."""

from bench.ports import ephemeral_range, free_port

__all__ = ["ephemeral_range", "free_port"]
