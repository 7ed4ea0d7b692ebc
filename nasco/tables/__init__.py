"""Benchmark lookup tables (experimental)."""
