"""The hand-written package list in pyproject.toml covers every subpackage, so a
non-editable install ships all of them."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {"nasco"} | {f"nasco.{p.parent.name}" for p in (ROOT / "nasco").glob("*/__init__.py")}
    found |= {f"nasco.{name}" for name in cfg["package-dir"].keys() - {""} for name in [name.split(".", 1)[1]]}
    assert found == listed
    for pkg, folder in cfg["package-dir"].items():
        assert (ROOT / folder / "__init__.py").is_file(), folder


def test_nb201_table_data_ships_with_the_package():
    """The built-in nb201 lookup table's DSL file, data and provenance match the package-data globs."""
    from fnmatch import fnmatch

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = cfg["package-data"]["nasco.search_spaces"]
    for name in ("nb201_table.yaml", "nb201_table.csv.gz", "nb201_table.md"):
        assert (ROOT / "search_spaces" / name).is_file(), name
        assert any(fnmatch(name, g) for g in globs), name
    assert (ROOT / "search_spaces" / "nb201_table.csv.gz").stat().st_size < 4_000_000
