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
