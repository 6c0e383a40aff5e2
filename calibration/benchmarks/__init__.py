"""Benchmarks that print figures (run as modules); they are not part of the test suite."""
