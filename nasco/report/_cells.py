"""Cell diagrams: a genotype's cell DAGs (:func:`nasco.space.cell_graph`) laid out left to right
and drawn with matplotlib, as inline SVG or a PNG file."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from nasco.space import cell_graph

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["cell_edges", "cell_figure", "cell_png", "cell_svg"]

OUT = "out"  # the cell's output node in a diagram


def cell_edges(spec: Any, cell: dict[str, Any], kind: str | None) -> list[tuple[int, int, str]]:
    """(destination, source, op) of each edge of a genotype's cell ``kind`` (darts: normal or
    reduce; dense cells: None), numbered as :func:`nasco.space.cell_graph` numbers nodes."""
    if spec.type == "dense":
        pairs = [(i, j) for i in range(1, spec.nodes + 1) for j in range(i)]
        return [(i, j, op) for (i, j), op in zip(pairs, cell["edges"])]
    k = spec.edges_per_node or 2
    return [(2 + pos // k, int(j), op) for pos, (op, j) in enumerate(cell[kind])]


def _diagram(spec: Any, edges: list[tuple[int, int, str]]) -> tuple[nx.DiGraph, dict[Any, str]]:
    """The cell DAG with its output node, and each node's label."""
    g = cell_graph(spec, edges)
    dense = spec.type == "dense"
    n_in = 1 if dense else 2
    labels: dict[Any, str] = {n: str(n - n_in) for n in g.nodes}
    if dense:
        labels.update({0: "in", n_in + spec.nodes - 1: "out"})
        return g, labels
    labels.update({0: "c[k-2]", 1: "c[k-1]"})
    for n in range(n_in, n_in + spec.nodes):  # a darts cell concatenates its nodes
        if n in g:
            g.add_edge(n, OUT, op="")
    labels[OUT] = "c[k]"
    return g, labels


def _layout(g: nx.DiGraph, n_in: int) -> dict[Any, tuple[float, float]]:
    """An arc diagram: the cell's nodes in a row, in order, the output (darts) at its end; a darts
    cell's two inputs to the left, above and below the row."""
    pos: dict[Any, tuple[float, float]] = {}
    for n in g:
        if n == OUT:
            pos[n] = (float(max(x for x in g if x != OUT) - n_in + 2), 0.0)
        elif n_in == 2 and n < 2:
            pos[n] = (0.0, 0.55 if n == 0 else -0.55)
        else:
            pos[n] = (float(n - n_in + 1), 0.0)
    return pos


def _bends(g: nx.DiGraph, n_in: int) -> list[tuple[float, list]]:
    """The edges in groups that share a bend (matplotlib's arc3 ``rad``: negative bulges up on a
    left-to-right edge): edges along the row and from the upper input above the row, edges from
    the lower input and into the output below it, so that no edge runs through a node."""
    up, down = [], []
    for e in g.edges:
        below = e[1] == OUT or (n_in == 2 and e[0] == 1)
        (down if below else up).append(e)
    return [(-0.35, up), (0.35, down)]


def _draw(ax: Axes, spec: Any, edges: list[tuple[int, int, str]], title: str,
          colours: dict[str, Any]) -> None:
    g, labels = _diagram(spec, edges)
    n_in = 1 if spec.type == "dense" else 2
    pos = _layout(g, n_in)
    ops = nx.get_edge_attributes(g, "op")
    ends = [n for n in g if g.in_degree(n) == 0 or g.out_degree(n) == 0]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=700, edgecolors="0.3",
                           node_color=["#cfe3f7" if n in ends else "#eeeeee" for n in g])
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=7)
    for rad, chosen in _bends(g, n_in):
        parts = (("solid", [e for e in chosen if ops[e]]), ("dashed", [e for e in chosen if not ops[e]]))
        for style, part in parts:
            if part:
                nx.draw_networkx_edges(g, pos, edgelist=part, ax=ax, node_size=700, arrowsize=11, width=1.8,
                                       style=style, connectionstyle=f"arc3,rad={rad}",
                                       edge_color=[colours[ops[e]] if ops[e] else "0.65" for e in part])
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    ax.margins(0.06, 0.12)


def cell_figure(spec: Any, cell: dict[str, Any]) -> Figure:
    """The figure of a genotype's cells: normal and reduction side by side (darts), or the one
    dense cell; each edge coloured by its op (one legend), concatenation into the cell output
    dashed."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    kinds = [None] if spec.type == "dense" else ["normal", "reduce"]
    ops = [o for o in spec.ops if o != "none"]
    cmap = colormaps["tab10"]
    colours = {op: cmap.colors[i % len(cmap.colors)] for i, op in enumerate(ops)}
    width = 4.4 * len(kinds) + 1.4
    fig = Figure(figsize=(width, 2.3), dpi=100)
    # Fixed margins (a constrained layout would be solved again at every save): the legend's column
    # on the right, the panels side by side to its left.
    fig.subplots_adjust(left=0.01, right=1 - 1.4 / width, bottom=0.02, top=0.9, wspace=0.04)
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        title = "cell" if kind is None else ("normal cell" if kind == "normal" else "reduction cell")
        _draw(ax, spec, cell_edges(spec, cell, kind), title, colours)
    handles = [Line2D([], [], color=colours[op], lw=2, label=op) for op in ops]
    if spec.type != "dense":
        handles.append(Line2D([], [], color="0.65", lw=2, ls="--", label="concatenated"))
    fig.legend(handles=handles, loc="center right", fontsize=7, title="op", title_fontsize=7, frameon=False)
    return fig


def cell_svg(spec: Any, cell: dict[str, Any]) -> str:
    """:func:`cell_figure` as an inline ``<svg>`` element (no XML header)."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):  # text as text: the browser draws it, the file stays small
        cell_figure(spec, cell).savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def cell_png(spec: Any, cell: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`cell_figure` as a PNG at ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cell_figure(spec, cell).savefig(path, format="png", dpi=120)
    return path
