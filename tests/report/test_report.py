"""write_report on a real run: every section, the embedded front equal to pareto.csv, the
counts equal to the ledger's, no external resource, and the per-layer energy recomputed with
the cost model equal to what the run recorded."""
from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from nasco.report import write_report
from nasco.report._cells import cell_edges
from nasco.report._member import find_member, front_member, layer_energy
from nasco.report._report import COUNTS_DATA_ID, ENERGY_DATA_PREFIX, FRONT_DATA_ID
from nasco.report._run import load_run
from nasco.run import RunDirError


class _Page(HTMLParser):
    """The JSON data blocks (by id), the headings' ids, and every script/link tag's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict]] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag in ("script", "link", "img", "iframe"):
            self.tags.append((tag, a))
        if tag == "script" and a.get("type") == "application/json":
            self._in = a["id"]
            self.data[self._in] = ""

    def handle_data(self, data):
        if self._in is not None:
            self.data[self._in] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None


@pytest.fixture(scope="module")
def report(train_run, tmp_path_factory):
    run_dir, _ = train_run
    html_path, md_path = write_report(run_dir, tmp_path_factory.mktemp("out"))
    page = _Page()
    page.feed(html_path.read_text(encoding="utf-8"))
    return run_dir, html_path, md_path, page


def _ledger(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines() if line.strip()]


def _pareto(run_dir) -> list[dict]:
    with open(run_dir / "pareto.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_search_writes_the_report_and_prints_its_path(train_run):
    run_dir, stdout = train_run
    assert (run_dir / "report.html").is_file() and (run_dir / "report.md").is_file()
    assert f"report: {run_dir / 'report.html'} (and report.md beside it)" in stdout.splitlines()


def test_each_section_is_there(report):
    run_dir, html_path, _, page = report
    assert {"summary", "front", "history", "architectures", "config", "arch-1"} <= page.ids
    text = html_path.read_text(encoding="utf-8")
    for heading in ("Pareto front", "Search history", "Front architectures", "Best per objective",
                    "Cells", "Energy per layer, by part", "Input spike rate per layer", "run.json config"):
        assert heading in text, heading
    assert "normal cell" in text and "reduction cell" in text  # the cell diagrams' SVG text
    assert "ANN twin (" in text and "snn_advantage (twin energy / SNN energy)" in text
    # Engineering units, as plotly's JSON writes them.
    for label in ("energy [µJ]", "latency [ms]", "area [mm²]"):
        assert json.dumps(label)[1:-1] in text, label


def test_each_architecture_says_how_to_export_it(report):
    run_dir, html_path, _, page = report
    text = html_path.read_text(encoding="utf-8")
    blocks = sorted(i for i in page.ids if i.startswith("arch-"))
    commands = re.findall(r"nasco export (\S+) --id (\w+) --format nir\|onnx\|torch", text)
    assert len(commands) == len(blocks) >= 1
    front_ids = {r["id"] for r in _pareto(run_dir)}
    assert all(path == str(run_dir) and cid in front_ids for path, cid in commands)


def test_embedded_front_equals_pareto_csv(report):
    run_dir, _, _, page = report
    embedded = json.loads(page.data[FRONT_DATA_ID])
    rows = _pareto(run_dir)
    assert rows, "the run has a front"
    assert len(embedded) == len(rows)
    for got, want in zip(embedded, rows):
        assert list(got) == list(want)
        for key, text in want.items():
            if key in ("id", "arch", "hw", "row_id"):
                assert got[key] == text, key
            elif text == "":
                assert got[key] is None, key
            else:
                assert got[key] == float(text), key  # exactly: the JSON float reads back bit for bit


def test_counts_equal_the_ledger(report):
    run_dir, html_path, md_path, page = report
    rows = [r for r in _ledger(run_dir) if r.get("phase") is None]
    status = Counter(r["status"] for r in rows)
    specs = Counter(k for r in rows if r["status"] == "infeasible" for k in r["violations"])
    assert specs, "the run has an infeasible row"
    text = html_path.read_text(encoding="utf-8")
    assert "<h4>Infeasible candidates, by violated design spec</h4>" in text
    for spec, n in specs.items():
        assert f'<tr><td>{spec}</td><td class="num">{n}</td></tr>' in text
    want = {"ok": status["ok"], "infeasible": status["infeasible"], "failed": status["failed"],
            "total": sum(status.values())}
    assert json.loads(page.data[COUNTS_DATA_ID]) == want
    assert (f"- {want['total']} evaluations: {want['ok']} ok, {want['infeasible']} infeasible, "
            f"{want['failed']} failed") in md_path.read_text(encoding="utf-8").splitlines()


def test_no_external_resource(report):
    _, _, _, page = report
    scripts = [a for tag, a in page.tags if tag == "script"]
    assert scripts and all("src" not in a for a in scripts)  # the plotly library is inlined
    for tag, a in page.tags:
        for attr in ("src", "href"):
            assert "//" not in a.get(attr, ""), (tag, a)


# Measured (this run and the README's default run): the recomputed parts differ from the ledger's
# energy_breakdown by 0.0, and the per-layer sums from the front's energies by at most 4.6e-16
# relative (the hardware inner loop costs members with the vectorised configurations loop, summed in
# another order). The tolerance is that with a wide margin for other summation orders.
RTOL = 1e-12


def test_layer_energy_equals_the_ledger_on_each_rows_own_accelerator(train_run):
    run_dir, _ = train_run
    run = load_run(run_dir)
    checked = 0
    for row in _ledger(run_dir):
        if row["status"] == "failed":
            continue
        energy = layer_energy(run, find_member(run, row["id"]))
        totals = energy.totals()
        recorded = row["metrics"]["energy_breakdown"]
        assert set(totals) == set(recorded)
        for part, value in recorded.items():
            assert totals[part] == pytest.approx(value, rel=RTOL, abs=0.0), part
        assert sum(totals.values()) == pytest.approx(row["objectives"]["energy"], rel=RTOL, abs=0.0)
        # The ANN twin the report shows is the one the evaluator recorded for the row.
        recorded_twin = row["metrics"]["snn_twin"]
        assert set(energy.twin) == set(recorded_twin)
        for k, v in recorded_twin.items():
            assert energy.twin[k] == (pytest.approx(v, rel=RTOL, abs=0.0) if isinstance(v, float) else v), k
        checked += 1
    assert checked >= 2


def test_embedded_energy_adds_up_to_the_fronts_energy(report):
    run_dir, _, _, page = report
    energies = {r["id"]: float(r["energy"]) for r in _pareto(run_dir)}
    blocks = {k[len(ENERGY_DATA_PREFIX):]: json.loads(v) for k, v in page.data.items()
              if k.startswith(ENERGY_DATA_PREFIX)}
    assert blocks
    for cid, data in blocks.items():
        n = len(data["layers"])
        assert all(len(v) == n for v in data["parts"].values())
        total = math.fsum(math.fsum(v) for v in data["parts"].values())
        assert total == pytest.approx(energies[cid], rel=RTOL, abs=0.0), cid
        assert set(data["spike_rates"]) <= set(data["layers"]) and data["spike_rates"]


def test_front_member_resolves_its_row_and_accelerator(train_run):
    run_dir, _ = train_run
    run = load_run(run_dir)
    ledger = {r["id"]: r for r in _ledger(run_dir)}
    for f in _pareto(run_dir):
        m = front_member(run, next(x for x in run.front if x["id"] == f["id"]))
        assert m.row["id"] == (f["row_id"] or f["id"])
        hw = json.loads(f["hw"])
        assert m.template.name == hw["template"]
        assert m.row is not None and ledger[m.row["id"]]["arch"] == json.loads(f["arch"])


def test_cell_diagram_edges_are_the_networks(train_run):
    """The diagram's edges (node, input) are the edges the network builder made: its plan names
    each edge's layers cells.C.nI.eJ.* (node I from 0, input J), and a reduction cell's edges from
    its inputs stride by 2."""
    from nasco.dsl import ArchSpace, build
    from nasco.evaluate._trainings import TrainingStore
    from nasco.nn import plan_network

    run_dir, _ = train_run
    run = load_run(run_dir)
    row = next(r for r in _ledger(run_dir) if r["status"] != "failed")
    rec = TrainingStore(run_dir / "trainings").get(row["metrics"]["training"])
    plan = plan_network(build(ArchSpace, rec.inputs["space"]), row["arch"]["cell"],
                        tuple(rec.inputs["data"]["input_shape"]), int(rec.inputs["data"]["num_classes"]))
    in_plan: dict[int, set] = {}
    reduction: set[int] = set()  # cells whose edges from the cell inputs stride
    for node in plan.nodes:
        hit = re.match(r"cells\.(\d+)\.n(\d+)\.e(\d+)\.", node.name)
        if hit:
            c, i, j = map(int, hit.groups())
            in_plan.setdefault(c, set()).add((i, j))
            if node.attrs.get("stride") == 2:
                reduction.add(c)
    spec = run.arch_spec.cell
    assert len(in_plan) == row["arch"]["hp"]["macro.cells"] and 0 < len(reduction) < len(in_plan)
    for c, edges in in_plan.items():
        drawn = cell_edges(spec, row["arch"]["cell"], "reduce" if c in reduction else "normal")
        # An identity (skip_connect at stride 1) has no layer of its own: the node reads its input.
        with_layers = {(dst - 2, src) for dst, src, op in drawn if op != "skip_connect"}
        assert with_layers <= edges <= {(dst - 2, src) for dst, src, _ in drawn}, c


def test_markdown_summary(report):
    run_dir, _, md_path, _ = report
    text = md_path.read_text(encoding="utf-8")
    rows = _pareto(run_dir)
    assert text.startswith(f"# nasco run report: {run_dir.name}\n")
    for heading in ("## Best per objective", "## Front members"):
        assert heading in text
    best_acc = max(float(r["accuracy"]) for r in rows)
    assert f"| accuracy | {100 * best_acc:.4g} % |" in text
    ids_listed = [line.split(" | ")[0][2:] for line in text.split("## Front members")[1].splitlines()
                  if line.startswith("| ") and not line.startswith("| id ")]
    assert len(ids_listed) == min(len(rows), 40) and set(ids_listed) <= {r["id"] for r in rows}


def test_a_folder_without_a_run_is_one_line(tmp_path):
    with pytest.raises(RunDirError) as err:
        write_report(tmp_path)
    assert str(err.value) == (f"{tmp_path}: expected a run directory with run.json, found none; give the "
                              f"--out of a finished nasco search")


def test_failed_reasons_are_grouped_by_their_first_line(train_run, tmp_path):
    """Three failed rows appended to a copy of the run: two divergences (their first lines equal,
    the details after them not) and a timeout."""
    import shutil

    from nasco.core import Candidate

    run_dir, _ = train_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rows = _ledger(copy)
    first = rows[0]
    seq = max(r["seq"] for r in rows) + 1
    reasons = ["TrainingDiverged: loss is nan\nat epoch 1", "TrainingDiverged: loss is nan\nat epoch 2",
               "timeout"]
    with open(copy / "ledger.jsonl", "a") as fh:
        for k, reason in enumerate(reasons):
            hw = {**first["hw"], "failed_probe": k}  # a distinct candidate id per row
            row = {"seq": seq + k, "id": Candidate.make(first["arch"], hw).id, "arch": first["arch"],
                   "hw": hw, "status": "failed", "reason": reason, "objectives": {}, "metrics": {},
                   "violations": {}}
            fh.write(json.dumps(row) + "\n")
    html_path, md_path = write_report(copy, tmp_path / "out")
    page = _Page()
    page.feed(html_path.read_text(encoding="utf-8"))
    assert json.loads(page.data[COUNTS_DATA_ID])["failed"] == 3
    text = html_path.read_text(encoding="utf-8")
    assert ("<h4>Failed candidates, by reason</h4><table class=\"\"><thead><tr><th>reason</th>"
            "<th>rows</th></tr></thead><tbody><tr><td>TrainingDiverged: loss is nan</td>"
            "<td class=\"num\">2</td></tr><tr><td>timeout</td><td class=\"num\">1</td></tr>"
            "</tbody></table>") in text
    md = md_path.read_text(encoding="utf-8").splitlines()
    assert "- failed (2): TrainingDiverged: loss is nan" in md and "- failed (1): timeout" in md


def test_study_report_writes_the_run_s_report_where_asked(train_run, tmp_path):
    import nasco

    run_dir, _ = train_run
    got = nasco.load_study(run_dir).report(tmp_path)
    assert got == (tmp_path / "report.html", tmp_path / "report.md")
    rows = _ledger(run_dir)
    md = got[1].read_text(encoding="utf-8")
    assert f"- front: {len(_pareto(run_dir))} pairs" in md and f"- {len(rows)} evaluations:" in md
    assert "Front architectures" in got[0].read_text(encoding="utf-8")
