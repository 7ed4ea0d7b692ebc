"""Benchmark lookup tables (experimental): NAS-Bench-style tables loaded into numpy
columns from a parquet cache, keyed by a space's official index, queried by metric,
dataset, split and fidelity. Converters from the official formats live in
``nasco.tables._convert``."""
from __future__ import annotations

from nasco.tables._cache import cache_dir
from nasco.tables._errors import TableError
from nasco.tables._table import STATS, Table, find_table, load_table

__all__ = ["STATS", "Table", "TableError", "cache_dir", "find_table", "load_table"]
