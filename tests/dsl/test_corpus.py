"""The malformed-file corpus: every file in tests/dsl/corpus must fail with one helpful line.

Each ``bad_*.yaml`` is a built-in (comments dropped) with exactly one fault, named in its
first line. ``EXPECTED.csv`` lists, per file:

* ``via``: ``load_file``, or ``load_energy_table`` for faults that surface only when the
  accelerator's energy table is looked up (the template itself loads);
* ``path``: the key path the error must name (``cell.ops[2]``); empty for an error about
  the whole file (syntax, empty file, a list at the top);
* ``message`` / ``hint``: fragments the error (and its hint) must contain;
* ``line_text``: text that must stand on the line the error gives (``file.yaml:N:``), or
  empty where YAML cannot place the error (an empty file), which then must carry no line.
"""
from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

import pytest

import nasco.dsl as dsl
from nasco.dsl import SpecError
from nasco.dsl._errors import format_path

CORPUS = Path(__file__).parent / "corpus"
ROWS = list(csv.DictReader((CORPUS / "EXPECTED.csv").open(encoding="utf-8")))


@functools.cache
def _error(file: str, via: str) -> SpecError:
    """The SpecError that loading a corpus file raises (each file is loaded once)."""
    path = CORPUS / file
    try:
        if via == "load_energy_table":
            template = dsl.load_file(path)  # the template itself is well formed
            dsl.load_energy_table(template)
        else:
            assert via == "load_file", via
            dsl.load_file(path)
    except SpecError as err:
        return err
    pytest.fail(f"{file} loads without an error")


def _fail(row: dict) -> SpecError:
    return _error(row["file"], row["via"])


def test_corpus_is_listed_exactly():
    files = sorted(p.name for p in CORPUS.glob("*.yaml"))
    listed = [r["file"] for r in ROWS]
    assert len(listed) == len(set(listed)), "a file is listed twice in EXPECTED.csv"
    assert sorted(listed) == files
    assert len(files) >= 30


def test_corpus_messages_are_distinct():
    messages = {(r["path"], r["message"]) for r in ROWS}
    assert len(messages) >= 25
    assert len({r["message"] for r in ROWS}) >= 25


def test_corpus_files_are_small_variants_of_builtins():
    builtins = set(dsl.builtin_names())
    for row in ROWS:
        first = (CORPUS / row["file"]).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), f"{row['file']}: the first line names the fault"
        m = re.search(r"\(from (\w+)\)$", first)
        assert m and (m.group(1) in builtins or m.group(1) == "scratch"), row["file"]


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_corpus_error(row):
    path = CORPUS / row["file"]
    err = _fail(row)
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    assert text.startswith(str(path) + ":"), text
    assert err.file == str(path)
    assert format_path(err.path) == (row["path"] or format_path(())), text
    if row["path"]:
        assert f": {row['path']}: " in text, text
    else:
        assert re.match(re.escape(str(path)) + r"(:\d+)?: (<top>: )?expected ", text), text
    assert row["message"] in text, text
    assert "Traceback" not in text and "<class" not in text and "Choice(" not in text, text
    if row["hint"]:
        assert err.hint and row["hint"] in err.hint, text
        assert text.endswith("; " + err.hint)
    lines = path.read_text(encoding="utf-8").splitlines()
    m = re.match(re.escape(str(path)) + r":(\d+): ", text)
    if row["line_text"]:
        assert m, f"no line number: {text}"
        n = int(m.group(1))
        assert n == err.line and 1 <= n <= len(lines), text
        assert row["line_text"] in lines[n - 1], f"line {n} is {lines[n - 1]!r}: {text}"
    else:
        assert m is None and err.line is None, text
        assert text.startswith(str(path) + ": ")  # no line: nothing to point at


def test_named_key_stands_on_the_reported_line():
    """Where the key an error names occurs once in the file, the line given is that key's line.

    Independent of the loader's own line map: the key is searched for in the raw text.
    """
    checked = 0
    for row in ROWS:
        if not row["path"]:
            continue
        err = _fail(row)
        last = err.path[-1]
        if not isinstance(last, str):
            continue  # a list item: line_text in EXPECTED.csv pins its line
        lines = (CORPUS / row["file"]).read_text(encoding="utf-8").splitlines()
        pattern = re.compile(rf"(^|[\s{{,]){re.escape(last)}:")
        where = [i + 1 for i, line in enumerate(lines) if pattern.search(line)]
        if len(where) != 1:
            continue  # missing (the error then points at the parent) or repeated
        assert err.line == where[0], f"{row['file']}: '{last}:' is on line {where[0]}: {err}"
        checked += 1
    assert checked >= 30


def test_technology_faults_surface_only_with_the_energy_table():
    rows = [r for r in ROWS if r["via"] == "load_energy_table"]
    assert len(rows) >= 2
    for row in rows:
        template = dsl.load_file(CORPUS / row["file"])  # loads; the table lookup fails
        assert isinstance(template, dsl.AcceleratorTemplate)
        with pytest.raises(SpecError, match=r": technology: "):
            dsl.load_energy_table(template)


# ------------------------------------------------------------------ built-ins and overrides
@pytest.mark.parametrize("name", dsl.builtin_names())
def test_builtins_load_cleanly(name):
    spec = dsl.load_spec(name)
    assert isinstance(spec, tuple(dsl.KINDS.values()))
    assert spec.name == name
    assert spec.source == str(dsl.builtin_dir() / f"{name}.yaml")
    if isinstance(spec, dsl.AcceleratorTemplate):
        assert isinstance(dsl.load_energy_table(spec), dsl.EnergyTable)
        spec.limits()


def test_builtin_kinds():
    assert {"darts", "darts_snn", "nb201"} <= set(dsl.builtin_names("arch_space"))
    assert "systolic_template" in dsl.builtin_names("accelerator")
    assert "horowitz_45nm" in dsl.builtin_names("energy_table")
    kinds = [dsl.builtin_names(k) for k in dsl.KINDS]
    assert sorted(n for names in kinds for n in names) == dsl.builtin_names()


def test_override_changes_a_value():
    file = dsl.builtin_dir() / "darts.yaml"
    overrides = dsl.parse_overrides(["macro.cells=4"])
    assert overrides == {("macro", "cells"): 4}
    before = dsl.load_file(file)
    assert isinstance(before.macro.cells, dsl.Choice)
    after = dsl.load_file(file, overrides=overrides)
    assert after.macro.cells == 4
    assert after.macro.stem == before.macro.stem and after.cell == before.cell
    assert "macro.cells" not in dsl.search_dimensions(after)


def test_override_with_a_choice_and_a_quantity():
    spec = dsl.load_spec("systolic_template", overrides=dsl.parse_overrides(
        ["pe_array.rows={choice: [8, 64], default: 64}", "specs.latency.max=5 ms"]))
    assert spec.pe_array.rows == dsl.Choice((8, 64), 64)
    assert spec.limits()["latency"] == pytest.approx(5e-3)


def test_bad_override_names_the_key_with_a_hint():
    file = dsl.builtin_dir() / "darts.yaml"
    with pytest.raises(SpecError) as info:
        dsl.load_file(file, overrides=dsl.parse_overrides(["macro.cellz=4"]))
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(file) + ":")
    assert ": macro.cellz: " in text
    assert "did you mean 'cells'" in text


def test_bad_override_value_is_checked():
    with pytest.raises(SpecError, match=r"macro\.cells: expected a value >= 1, found 0"):
        dsl.load_spec("darts", overrides=dsl.parse_overrides(["macro.cells=0"]))


@pytest.mark.parametrize("item", ["macro.cells", "=4", "macro.cells={choice: [1"])
def test_malformed_override_text(item):
    with pytest.raises(SpecError) as info:
        dsl.parse_overrides([item])
    assert "\n" not in str(info.value) and info.value.hint


def test_kind_mismatch_and_unknown_builtin():
    with pytest.raises(SpecError, match="expected a file of kind 'accelerator', found kind 'arch_space'"):
        dsl.load_spec("darts", kind="accelerator")
    with pytest.raises(SpecError, match="did you mean 'darts_snn'"):
        dsl.load_spec("darts_sn")
    with pytest.raises(SpecError, match=r"no such file"):
        dsl.load_spec("no/such/file.yaml")
