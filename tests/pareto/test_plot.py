"""What the run's plots draw: engineering units, design-spec lines, template colours, the
front, and the best-so-far history (hand-computed hypervolumes)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.markers import MarkerStyle

from nasco.core import BUILTIN_OBJECTIVES, NascoError, Objective
from nasco.pareto import (
    axis_label,
    front_figure,
    history_figure,
    hypervolume_history,
    plot_front,
    plot_history,
    template_colours,
)

PNG = b"\x89PNG\r\n\x1a\n"
OBJ3 = tuple(BUILTIN_OBJECTIVES[n] for n in ("accuracy", "energy", "latency"))


def _frame(rows: list[dict]) -> pd.DataFrame:
    """A flat ledger frame as Ledger.to_frame() writes it (hw as sorted JSON)."""
    return pd.DataFrame([{**r, "hw": json.dumps(r.get("hw", {}), sort_keys=True)} for r in rows])


def _joint_rows() -> list[dict]:
    # seq 0 and 1 are the front; seq 2 is dominated by seq 0; seq 3 is infeasible (better
    # than everything, so it would be on the front if infeasible rows counted); seq 4 failed.
    nan = float("nan")
    return [
        {"seq": 0, "id": "a0", "status": "ok", "hw": {"template": "A", "x": 1},
         "accuracy": 0.75, "energy": 2.5e-5, "latency": 4e-4},
        {"seq": 1, "id": "b1", "status": "ok", "hw": {"template": "B"},
         "accuracy": 0.5, "energy": 1e-5, "latency": 2e-4},
        {"seq": 2, "id": "a2", "status": "ok", "hw": {"template": "A"},
         "accuracy": 0.625, "energy": 3e-5, "latency": 5e-4},
        {"seq": 3, "id": "b3", "status": "infeasible", "hw": {"template": "B"},
         "accuracy": 0.75, "energy": 5e-6, "latency": 9e-4},
        {"seq": 4, "id": "a4", "status": "failed", "hw": {"template": "A"},
         "accuracy": nan, "energy": nan, "latency": nan},
    ]


def _artist(ax, gid: str):
    found = [a for a in [*ax.collections, *ax.lines, *ax.texts] if a.get_gid() == gid]
    assert len(found) == 1, (gid, [a.get_gid() for a in [*ax.collections, *ax.lines, *ax.texts]])
    return found[0]


def _points(ax, gid: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p)) for p in np.asarray(_artist(ax, gid).get_offsets())]


def _rgb(ax, gid: str) -> tuple[float, ...]:
    return tuple(float(c) for c in _artist(ax, gid).get_facecolor()[0][:3])


def test_axis_labels_and_units():
    assert [axis_label(o) for o in OBJ3] == ["accuracy [%]", "energy [µJ]", "latency [ms]"]
    assert axis_label(BUILTIN_OBJECTIVES["area"]) == "area [mm²]"
    # An objective in a unit of its own keeps it: a table's latency is already in ms.
    assert axis_label(Objective("eyeriss_latency", "min", "ms")) == "eyeriss_latency [ms]"
    assert axis_label(Objective("score", "max")) == "score"


def test_front_figure_values_limits_and_template_colours():
    fig = front_figure(_frame(_joint_rows()), OBJ3,
                       limits={"latency": 5e-4, "energy": 4e-5, "area": 2.0})  # area: not an objective here
    acc_en, acc_lat, en_lat = fig.axes
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [
        ("accuracy [%]", "energy [µJ]"), ("accuracy [%]", "latency [ms]"), ("energy [µJ]", "latency [ms]")]
    # Values converted exactly (hand-computed: 0.75 -> 75 %, 2.5e-5 J -> 25 uJ, 4e-4 s -> 0.4 ms).
    assert _points(acc_en, "front:A") == [(75.0, 25.0)]
    assert _points(acc_en, "front:B") == [(50.0, 10.0)]
    assert _points(acc_en, "ok:A") == [(62.5, 30.0)]
    assert _points(acc_en, "ok:B") == []
    assert _points(acc_en, "infeasible:B") == [(75.0, 5.0)] and _points(acc_en, "infeasible:A") == []
    assert _points(en_lat, "front:A") == [(25.0, 0.4)]
    assert _points(en_lat, "infeasible:B") == [(5.0, 0.9)]
    # Infeasible points are crosses; front points are larger than the others, with a black edge.
    cross = MarkerStyle("x")
    np.testing.assert_array_equal(_artist(acc_en, "infeasible:B").get_paths()[0].vertices,
                                  cross.get_path().transformed(cross.get_transform()).vertices)
    assert _artist(acc_en, "front:A").get_sizes()[0] > _artist(acc_en, "ok:A").get_sizes()[0]
    assert tuple(_artist(acc_en, "front:A").get_edgecolor()[0]) == (0.0, 0.0, 0.0, 1.0)
    # Spec lines at the limit in displayed units, on the axes they constrain.
    assert list(_artist(acc_lat, "limit:latency").get_ydata()) == [0.5, 0.5]
    assert list(_artist(en_lat, "limit:latency").get_ydata()) == [0.5, 0.5]
    assert list(_artist(en_lat, "limit:energy").get_xdata()) == [40.0, 40.0]
    assert list(_artist(acc_en, "limit:energy").get_ydata()) == [40.0, 40.0]
    assert [ln.get_gid() for ln in acc_en.lines] == ["limit:energy"]
    assert all(ln.get_linestyle() == "--" for ax in fig.axes for ln in ax.lines)
    # One colour per template, the same for its ok, front and infeasible points, in every panel.
    colours = template_colours(["B", "A"])
    assert colours["A"] != colours["B"]
    for ax in fig.axes:
        for t in ("A", "B"):
            assert _rgb(ax, f"front:{t}") == colours[t] and _rgb(ax, f"ok:{t}") == colours[t]
        assert _rgb(ax, "infeasible:B") == colours["B"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["A", "B", "Pareto front", "infeasible", "latency limit 0.5 ms", "energy limit 40 µJ"]
    assert fig.legends[0].get_title().get_text() == "template"
    assert fig.get_suptitle() == "5 evaluations: 3 ok, 1 infeasible, 1 failed; front of 2"


def test_front_figure_without_templates_and_own_units():
    rows = [{"seq": i, "id": f"r{i}", "status": "ok", "accuracy": a, "eyeriss_latency": lat}
            for i, (a, lat) in enumerate([(0.5, 4.0), (0.75, 6.5), (0.625, 8.0)])]
    defs = (BUILTIN_OBJECTIVES["accuracy"], Objective("eyeriss_latency", "min", "ms"))
    fig = front_figure(_frame(rows), defs, limits={"eyeriss_latency": 7.0})
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("accuracy [%]", "eyeriss_latency [ms]")
    assert _points(ax, "front:ok") == [(50.0, 4.0), (75.0, 6.5)]  # ms values unscaled
    assert _points(ax, "ok:ok") == [(62.5, 8.0)]
    assert list(_artist(ax, "limit:eyeriss_latency").get_ydata()) == [7.0, 7.0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ok", "Pareto front",
                                                                   "eyeriss_latency limit 7 ms"]


def test_single_objective_panel_against_seq(tmp_path):
    rows = [{"seq": i, "id": f"r{i}", "status": s, "accuracy": a}
            for i, (s, a) in enumerate([("ok", 0.5), ("infeasible", 0.875), ("ok", 0.75)])]
    fig = front_figure(_frame(rows), ("accuracy",))
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("evaluation (seq)", "accuracy [%]")
    assert _points(ax, "front:ok") == [(2.0, 75.0)] and _points(ax, "ok:ok") == [(0.0, 50.0)]
    path = plot_front(_frame(rows), ("accuracy",), tmp_path / "sub" / "p.png")
    assert path.read_bytes()[:8] == PNG


# The toy ledger of the history test. Bounds are set so that every normalised value is a
# binary fraction, which makes the hypervolumes exact sums of products.
HIST_OBJ = (Objective("accuracy", "max", "fraction", 1.0, 0.0), Objective("energy", "min", "J", 0.0, 1.0))


def _history_rows() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        {"seq": 0, "status": "ok", "accuracy": 0.5, "energy": 0.5},          # z = (0.5, 0.5)
        {"seq": 1, "status": "ok", "accuracy": 0.75, "energy": 0.75},        # z = (0.25, 0.75)
        {"seq": 2, "status": "infeasible", "accuracy": 1.0, "energy": 0.0},  # the ideal, but infeasible
        {"seq": 3, "status": "ok", "accuracy": 0.625, "energy": 0.375},      # z = (0.375, 0.375), beats seq 0
        {"seq": 4, "status": "failed", "accuracy": nan, "energy": nan},
    ]
    return _frame(rows).iloc[[3, 0, 4, 2, 1]]  # out of order: the history follows seq


# Hand-computed normalised hypervolumes of each prefix (reference (1, 1)):
#   {(.5,.5)}:                 .5 * .5                            = .25
#   {(.5,.5), (.25,.75)}:      .25 + .75*.25 - .5*.25             = .3125
#   + infeasible, + nothing:                                        .3125
#   {(.375,.375), (.25,.75)}:  .625*.625 + .75*.25 - .625*.25     = .421875
#   + failed:                                                       .421875
HAND_HV = [0.25, 0.3125, 0.3125, 0.421875, 0.421875]


def test_hypervolume_history_hand_computed():
    hv = hypervolume_history(_history_rows(), HIST_OBJ)
    assert hv.tolist() == HAND_HV
    assert (np.diff(hv) >= 0).all()
    with pytest.raises(NascoError, match="'naswot' has no ideal"):
        hypervolume_history(_history_rows(), (HIST_OBJ[0], Objective("naswot", "max")))


def test_history_figure_panels(tmp_path):
    fig = history_figure(_history_rows(), HIST_OBJ)
    hv_ax, acc_ax = fig.axes
    line = _artist(hv_ax, "hypervolume")
    assert list(line.get_xdata()) == [1, 2, 3, 4, 5] and list(line.get_ydata()) == HAND_HV
    best = _artist(acc_ax, "best:accuracy")
    assert list(best.get_ydata()) == [50.0, 75.0, 75.0, 75.0, 75.0]  # in %, the infeasible 100 % left out
    assert acc_ax.get_ylabel() == "best accuracy [%]"
    # Without a bound, a note replaces the hypervolume panel; without accuracy, no second panel.
    fig = history_figure(_history_rows(), (HIST_OBJ[0], Objective("naswot", "max")))
    assert "'naswot' has no ideal" in _artist(fig.axes[0], "hypervolume-note").get_text()
    assert not fig.axes[0].lines and len(fig.axes) == 2
    assert len(history_figure(_history_rows(), HIST_OBJ[1:]).axes) == 1
    assert plot_history(_history_rows(), HIST_OBJ, tmp_path / "h.png").read_bytes()[:8] == PNG


def test_write_outputs_draws_limits_and_history(tmp_path, monkeypatch):
    from nasco.run import Ledger, _outputs

    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.extend([{"seq": r["seq"], "id": r["id"], "status": r["status"], "hw": r["hw"],
                    "objectives": {} if r["status"] == "failed" else
                    {k: r[k] for k in ("accuracy", "energy", "latency")}} for r in _joint_rows()])
    seen = {}
    real = _outputs.plot_front

    def spy(df, objectives, path, **kw):
        seen.update(kw)
        return real(df, objectives, path, **kw)

    monkeypatch.setattr(_outputs, "plot_front", spy)
    _outputs.write_outputs(tmp_path, ledger, OBJ3, {"latency": 5e-4}, {})
    assert seen == {"limits": {"latency": 5e-4}}
    for name in ("pareto.png", "history.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
