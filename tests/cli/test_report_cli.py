"""`nasco report` and `nasco show` on a real run (nb201 looked up in the shipped table: a dense
cell, no accelerator, no trained weights), their --help, and their one-line errors."""
from __future__ import annotations

import csv
import json

import pytest

from nasco.cli import main


@pytest.fixture(scope="module")
def table_run(nb201, nb201_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-cli") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASCO_CACHE", str(nb201_cache.parent))
        mp.setattr("nasco.tables._table.cache_dir", lambda: nb201_cache)
        assert main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
                     "accuracy,eyeriss_latency", "--budget", "20", "--out", str(out), "--quiet"]) == 0
    return out


def _front(run) -> list[dict]:
    with open(run / "pareto.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_writes_both_files_where_asked(table_run, tmp_path, capsys, run_cli):
    code, out, err = run_cli(capsys, "report", str(table_run), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert out.splitlines() == [f"report: {tmp_path / 'rep' / 'report.html'}",
                                f"summary: {tmp_path / 'rep' / 'report.md'}"]
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    # No accelerator and no trained weights: the front and cells are there, no energy section.
    assert "Pareto front" in html and "No per-layer energy" in html and "<svg" in html
    assert "eyeriss_latency" in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")


def test_show_prints_the_candidate_and_writes_its_cell_png(table_run, tmp_path, capsys, run_cli):
    front = _front(table_run)
    row = front[0]
    png = tmp_path / "cells.png"
    code, out, err = run_cli(capsys, "show", str(table_run), "--id", row["id"], "--png", str(png))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"candidate {row['id']} (ok, on the front; ledger row {row['id']})"
    assert lines[1].split() == ["accuracy", f"{100 * float(row['accuracy']):.4g}", "%"]
    assert lines[2].split() == ["eyeriss_latency", f"{float(row['eyeriss_latency']):.4g}", "ms"]
    edges = json.loads(row["arch"])["cell"]["edges"]
    assert f"  cell: {', '.join(edges)}" in lines
    assert "accelerator: no accelerator" in lines and "precision: float (no accelerator)" in lines
    assert lines[-1] == f"cell diagram: {png}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_writes_the_png_next_to_the_run_by_default(table_run, capsys, run_cli):
    ledger = [json.loads(x) for x in (table_run / "ledger.jsonl").read_text().splitlines()]
    cid = ledger[-1]["id"]
    code, out, err = run_cli(capsys, "show", str(table_run), "--id", cid)
    assert code == 0, err
    assert out.splitlines()[-1] == f"cell diagram: {table_run / f'cells-{cid}.png'}"
    assert (table_run / f"cells-{cid}.png").is_file()


def test_unknown_id_is_one_line_naming_close_matches(table_run, capsys, run_cli):
    cid = _front(table_run)[0]["id"]
    code, out, err = run_cli(capsys, "show", str(table_run), "--id", cid[:-1])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"nasco: error: {table_run}: --id {cid[:-1]}: ")
    assert f"close matches: {cid}" in err


@pytest.mark.parametrize("command", [["report"], ["show", "--id", "abc"]])
def test_a_bad_run_dir_is_one_line(tmp_path, capsys, command, run_cli):
    (tmp_path / "afile").write_text("x")
    for target, found in ((tmp_path / "nope", "no such directory"), (tmp_path / "afile", "a file")):
        code, out, err = run_cli(capsys, command[0], str(target), *command[1:])
        assert code == 2 and out == ""
        assert err == (f"nasco: error: {target}: expected a run directory, found {found}; give the --out of "
                       f"a finished nasco search\n")
    code, _, err = run_cli(capsys, command[0], str(tmp_path), *command[1:])
    assert code == 2 and err == (f"nasco: error: {tmp_path}: expected a run directory with run.json, found "
                                 f"none; give the --out of a finished nasco search\n")


@pytest.mark.parametrize("command", ["report", "show"])
def test_help(capsys, command, run_cli):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: nasco {command} ")
    assert "RUN" in out and ("--png" in out if command == "show" else "--out" in out)
