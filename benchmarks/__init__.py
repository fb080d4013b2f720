"""Benchmarks: `python -m benchmarks`; never part of the test suite's timing."""
