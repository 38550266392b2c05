"""Benchmarks of selector_app's transports: load generator, servers, runner.

Run ``python -m bench.run --help``; see docs/benchmarks.md.
"""
