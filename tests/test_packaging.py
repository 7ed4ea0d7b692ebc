"""The hand-written package list in pyproject.toml covers every subpackage, so a
non-editable install ships all of them; a wheel built from the sources runs on its own."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
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


def _sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def test_a_built_wheel_finds_its_spaces_and_searches_the_shipped_table(tmp_path):
    """A wheel built from the sources, installed on its own (``--target``, first on PYTHONPATH) and
    run from outside the repository: ``nasco spaces`` lists the built-in DSL files and a table
    search reads the nb201 table data, both from inside the installed package."""
    # Build from a copy, so the build's egg-info and build/ folders stay out of the working tree.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("nasco", "predictors", "search_spaces"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    proc = _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                "-w", str(tmp_path / "dist"), str(src)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("nasco-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n.split("/", 2)[2] for n in zf.namelist() if n.startswith("nasco/search_spaces/")}
        mappings = {n for n in zf.namelist() if n.startswith("nasco/hw/zigzag_mappings/")}
    assert mappings == {f"nasco/hw/zigzag_mappings/{p.name}"
                        for p in (ROOT / "nasco" / "hw" / "zigzag_mappings").glob("*.yaml")} != set()
    want = {p.name for p in (ROOT / "search_spaces").iterdir()
            if p.suffix in (".yaml", ".md", ".py", ".csv") or p.name.endswith(".csv.gz")}
    assert shipped == want

    site = tmp_path / "site"
    proc = _sh([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # Dependencies come from this interpreter's environment; nasco from the wheel alone (the
    # editable install's finder comes after PYTHONPATH on sys.meta_path's path search).
    env = {**os.environ, "PYTHONPATH": str(site), "NASCO_CACHE": str(tmp_path / "cache")}
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    # the ZigZag mapping nasco ships is found inside the installed package too
    code = ("import nasco, nasco.dsl as d; from nasco.hw._zigzag import zigzag_mapping as m; "
            "print(nasco.__file__); print(d.builtin_dir()); print(m('eyeriss_like'))")
    where = _sh([sys.executable, "-c", code], cwd=run_dir, env=env)
    mapping = site / "nasco" / "hw" / "zigzag_mappings" / "eyeriss_like.yaml"
    assert where.stdout.split() == [str(site / "nasco" / "__init__.py"), str(site / "nasco" / "search_spaces"),
                                    str(mapping)], where.stderr
    assert mapping.is_file()
    nasco_bin = site / "bin" / "nasco"
    spaces = _sh([str(nasco_bin), "spaces"], cwd=run_dir, env=env)
    assert spaces.returncode == 0, spaces.stderr
    for name in ("darts_snn", "nb201", "eyeriss_like", "timeloop_eyeriss_like"):
        assert re.search(rf"^\s+{name}\s", spaces.stdout, re.M), (name, spaces.stdout)
    out = tmp_path / "run"
    search = _sh([str(nasco_bin), "search", "--space", "nb201", "--evaluator", "table", "--table", "nb201",
                  "--budget", "5", "--out", str(out), "--quiet"], cwd=run_dir, env=env)
    assert search.returncode == 0, search.stderr
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["status"] == "ok" for r in rows)
    assert all(0 < r["objectives"]["accuracy"] < 100 for r in rows), rows[0]["objectives"]
