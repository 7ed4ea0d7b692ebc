"""The report's interactive figures (plotly): the front as a scatter matrix, the best-so-far
history, and a member's per-layer energy and spike rates. Values are shown in the units of
:func:`nasco.pareto.display_unit`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from nasco.core import Objective
from nasco.pareto import axis_label, best_so_far, display_unit, hypervolume_history, template_colours
from nasco.pareto._plot import _use_log

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from nasco.report._member import LayerEnergy

__all__ = ["energy_figure", "front_figure", "history_figure", "spike_rate_figure"]

PANEL_PX = 250  # height of one scatter-matrix row
OTHER = "rgba(150,150,150,0.45)"  # evaluated pairs that are not on the front
# Energy parts, bottom to top, and their colours (the order of nasco.hw.ENERGY_PARTS).
PART_COLOURS = {"compute": "#4c78a8", "register": "#72b7b2", "noc": "#54a24b", "sram": "#eeca3b",
                "dram": "#e45756", "neuron": "#b279a2"}


def _rgb(colour: Sequence[float]) -> str:
    return "rgb({},{},{})".format(*(int(round(255 * c)) for c in colour[:3]))


def _axis(k: int) -> str:
    return "" if k == 0 else str(k + 1)


def front_figure(front: pd.DataFrame, others: pd.DataFrame, objectives: Sequence[Objective],
                 limits: dict[str, float], hover: Sequence[str]) -> go.Figure:
    """A scatter matrix (plotly splom, lower triangle) of the objectives: the front (``front``: one
    row per member, a ``template`` column) in its template's colour with ``hover`` as each point's
    text; the run's other evaluated pairs (``others``, with ``status``) in grey, infeasible ones as
    crosses; each design-spec limit (base units) a dashed line. Selecting points in one panel
    selects them in all. A single objective is drawn against the evaluation order."""
    import plotly.graph_objects as go

    defs = list(objectives)
    if len(defs) == 1:  # against the evaluation order: a seq "objective" of its own
        defs = [Objective("evaluation", "min", unit=""), defs[0]]
        front = front.assign(evaluation=front["seq"] if "seq" in front else np.arange(len(front)))
        others = others.assign(evaluation=others["seq"] if "seq" in others else np.arange(len(others)))

    def dims(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"label": axis_label(o), "values": display_unit(o)[1] * pd.to_numeric(
            df[o.name], errors="coerce").to_numpy(dtype=float)} for o in defs]

    common = {"showupperhalf": False, "diagonal": {"visible": False}}
    fig = go.Figure()
    for status, symbol in (("ok", "circle"), ("infeasible", "x")):
        sel = others[others["status"] == status] if len(others) else others
        if len(sel):
            fig.add_trace(go.Splom(dimensions=dims(sel), name=f"not on the front ({status})", **common,
                                   marker={"color": OTHER, "size": 4, "symbol": symbol},
                                   hovertext=[f"{i} ({status})" for i in sel["id"]], hoverinfo="text"))
    templates = [str(t) for t in front["template"]]
    colours = {t: _rgb(c) for t, c in template_colours(templates or [""]).items()}
    for t in sorted(set(templates)):
        sel = [i for i, name in enumerate(templates) if name == t]
        fig.add_trace(go.Splom(dimensions=dims(front.iloc[sel]), name=f"front: {t}" if t else "front",
                               **common, marker={"color": colours[t], "size": 8,
                                                 "line": {"color": "black", "width": 1}},
                               hovertext=[hover[i] for i in sel], hoverinfo="text"))
    _axes(fig, defs, limits, pd.concat([front, others]) if len(others) else front)
    n = len(defs) - 1
    # From a 2x2 matrix on, the empty upper triangle holds the legend; else it goes below.
    legend = ({"x": 0.62, "y": 1.0, "yanchor": "top"} if n > 1 else {"orientation": "h", "y": -0.3})
    fig.update_layout(height=PANEL_PX * n + 140, margin={"l": 70, "r": 20, "t": 20, "b": 60},
                      legend={**legend, "font": {"size": 12}}, hovermode="closest",
                      template="plotly_white", dragmode="select")
    return fig


def _axes(fig: go.Figure, defs: Sequence[Objective], limits: dict[str, float], points: pd.DataFrame) -> None:
    """Log axes for objectives spanning more than two decades; each limit a dashed line in every
    panel of its column (x) and row (y)."""
    n = len(defs)
    for k, o in enumerate(defs):
        values = display_unit(o)[1] * pd.to_numeric(points[o.name], errors="coerce").to_numpy(dtype=float)
        at = display_unit(o)[1] * limits[o.name] if o.name in limits else None
        if at is not None:
            values = np.append(values, at)
        kind = "log" if o.name != "evaluation" and _use_log(values) else "linear"
        fig.update_layout({f"xaxis{_axis(k)}": {"type": kind}, f"yaxis{_axis(k)}": {"type": kind}})
        if at is None:
            continue
        line = {"type": "line", "line": {"dash": "dash", "color": "#404040", "width": 1}}
        for other in range(n):
            if other > k:  # panel (row other, column k): a vertical line
                fig.add_shape(x0=at, x1=at, xref=f"x{_axis(k)}", y0=0, y1=1, yref=f"y{_axis(other)} domain",
                              **line)
            elif other < k:  # panel (row k, column other): a horizontal line
                fig.add_shape(y0=at, y1=at, yref=f"y{_axis(k)}", x0=0, x1=1, xref=f"x{_axis(other)} domain",
                              **line)


def history_figure(pairs: pd.DataFrame, objectives: Sequence[Objective]) -> go.Figure | None:
    """The normalised hypervolume of the front over the evaluations and, with an ``accuracy``
    objective, the best accuracy so far (%); None when an objective has no ideal or bound."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    defs = tuple(objectives)
    if any(o.ideal is None or o.bound is None for o in defs) or not len(pairs):
        return None
    hv = hypervolume_history(pairs, defs)
    acc = next((o for o in defs if o.name == "accuracy"), None)
    rows = 2 if acc is not None else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = np.arange(1, len(hv) + 1)
    fig.add_trace(go.Scatter(x=x, y=hv, mode="lines+markers", line_shape="hv", name="normalised hypervolume"),
                  row=1, col=1)
    fig.update_yaxes(title_text="normalised HV", rangemode="tozero", row=1, col=1)
    if acc is not None:
        unit, factor = display_unit(acc)
        fig.add_trace(go.Scatter(x=x, y=factor * best_so_far(pairs, acc), mode="lines+markers",
                                 line_shape="hv", name=f"best accuracy [{unit}]"), row=2, col=1)
        fig.update_yaxes(title_text=f"best {axis_label(acc)}", row=2, col=1)
    fig.update_xaxes(title_text="evaluations (ledger seq order)", row=rows, col=1)
    fig.update_layout(height=220 * rows + 80, margin={"l": 60, "r": 20, "t": 20, "b": 50},
                      template="plotly_white", showlegend=False)
    return fig


def energy_figure(energy: LayerEnergy) -> go.Figure:
    """Per-layer energy stacked by part (µJ per inference), layers in network order."""
    import plotly.graph_objects as go

    unit, factor = display_unit(Objective("energy", "min", unit="J"))
    fig = go.Figure()
    for part, values in energy.parts.items():
        fig.add_trace(go.Bar(x=list(energy.names), y=factor * values, name=part,
                             marker_color=PART_COLOURS.get(part),
                             hovertemplate="%{x}<br>" + part + ": %{y:.4g} " + unit + "<extra></extra>"))
    fig.update_layout(barmode="stack", height=360, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 20, "b": 110}, yaxis_title=f"energy [{unit}]",
                      legend={"orientation": "h", "y": 1.08},
                      xaxis={"tickangle": -60, "tickfont": {"size": 8}})
    return fig


def spike_rate_figure(rates: dict[str, float]) -> go.Figure:
    """Each spiking layer's measured input spike rate (fraction of inputs that spike)."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=list(rates), y=list(rates.values()), marker_color="#4c78a8",
                           hovertemplate="%{x}<br>spike rate %{y:.4f}<extra></extra>"))
    fig.update_layout(height=300, template="plotly_white", margin={"l": 60, "r": 20, "t": 20, "b": 110},
                      yaxis_title="input spike rate", xaxis={"tickangle": -60, "tickfont": {"size": 8}})
    return fig
