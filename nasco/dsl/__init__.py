"""The search-space DSL: YAML files -> typed, frozen spec objects."""
from __future__ import annotations

from nasco.dsl._build import build, to_data
from nasco.dsl._choice import Choice
from nasco.dsl._dims import defaults, resolve, search_dimensions
from nasco.dsl._errors import SpecError, capped
from nasco.dsl._hwsets import TEMPLATE_KEY, AcceleratorSet, BudgetSpec, MultiAccelerator, pe_usage
from nasco.dsl._load import (
    HW_KINDS,
    KINDS,
    builtin_dir,
    builtin_names,
    find_file,
    load_energy_table,
    load_file,
    load_spec,
    parse_overrides,
)
from nasco.dsl._lookup import LookupTableSpec, TableKey, TableMetric
from nasco.dsl._specs import SCHEMA_VERSION, AcceleratorTemplate, ArchSpace, EnergyTable
from nasco.dsl._units import UNITS, parse_quantity
from nasco.dsl._yaml import MAX_EXPANDED_SIZE, VALID_YAML, load_value

__all__ = [
    "AcceleratorSet", "AcceleratorTemplate", "ArchSpace", "BudgetSpec", "Choice", "EnergyTable", "HW_KINDS",
    "KINDS", "LookupTableSpec", "MAX_EXPANDED_SIZE", "MultiAccelerator", "TableKey", "TableMetric",
    "SCHEMA_VERSION", "TEMPLATE_KEY", "VALID_YAML",
    "SpecError", "UNITS", "build", "builtin_dir", "builtin_names", "capped", "defaults", "find_file",
    "load_energy_table", "load_file", "load_spec", "load_value", "parse_overrides", "parse_quantity",
    "pe_usage",
    "resolve", "search_dimensions", "to_data",
]
