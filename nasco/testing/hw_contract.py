"""The contract every hardware space (:class:`nasco.space.HwSpace`) keeps, as one reusable check.

:func:`check_hw_space` runs plain asserts (no pytest needed) on any implementation: a
template, a template set, a multi-accelerator, or one of your own.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nasco.dsl import search_dimensions
from nasco.space import HwSpace, canonical_json

__all__ = ["STANDIN_TEMPLATES", "check_hw_space", "write_standins"]


def check_hw_space(hw: HwSpace, *, n: int = 200, seed: int = 0) -> dict[str, int]:
    """Check ``hw`` over ``n`` samples and ``n`` chained mutations; return how often each
    member template was seen (by name), for coverage checks.

    * genotypes are JSON data whose canonical text survives a round trip;
    * ``sample`` is a function of the generator alone, and every sample and mutation passes
      ``check`` (for a multi-accelerator: within its budget);
    * ``mutate`` returns a different genotype (or None only when nothing can move);
    * ``encode`` has one length for every genotype, holds only 0 and 1, and tells the sampled
      genotypes apart;
    * ``resolve`` gives one template per sub-accelerator with no choice left open;
    * ``complete(None)`` (the defaults) is a genotype; ``limits`` are non-negative numbers.
    """
    assert isinstance(hw, HwSpace), f"{type(hw).__name__} does not implement HwSpace"
    a = [canonical_json(hw.sample(np.random.default_rng(seed))) for _ in range(2)]
    assert a[0] == a[1], "sample() depends on more than the generator"
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {}
    codes: dict[str, bytes] = {}
    length = None
    g = hw.complete(None)
    hw.check(g)
    for i in range(2 * n):
        if i < n:
            g = hw.sample(rng)
        else:
            m = hw.mutate(g, rng)
            if m is None:  # nothing can move (e.g. no choice has a second option within budget)
                continue
            assert canonical_json(m) != canonical_json(g), "mutate() returned the same genotype"
            g = m
        text = canonical_json(g)
        assert json.loads(text) == g, "a genotype is not plain JSON data"
        hw.check(g)
        v = hw.encode(g)
        length = v.size if length is None else length
        assert v.size == length, f"encode() length {v.size} != {length}"
        assert set(np.unique(v)) <= {0.0, 1.0}, "encode() is not one-hot"
        codes.setdefault(text, v.tobytes())
        templates = hw.resolve(g)
        assert len(templates) == hw.subs, f"resolve() gave {len(templates)} templates for {hw.subs} subs"
        for t in templates:
            assert not search_dimensions(t), f"resolve() left choices open: {list(search_dimensions(t))}"
            seen[t.name] = seen.get(t.name, 0) + 1
    assert len(set(codes.values())) == len(codes), "two genotypes share an encoding"
    for k, v in hw.limits().items():
        assert isinstance(v, float) and v >= 0, (k, v)
    return seen


# Small stand-in templates: three dataflows, a few choices each, the built-in energy table.
_TEMPLATE = """schema: 1
kind: accelerator
name: {name}
dataflow: {dataflow}
pe_array: {{rows: {{choice: {rows}}}, cols: {{choice: {cols}}}}}
buffers: {{ifmap_kb: 64, filter_kb: 64, ofmap_kb: 64}}
bandwidth: {{dram_bytes_per_cycle: {{choice: {bw}}}}}
clock_mhz: {{choice: [200, 400]}}
technology: horowitz_45nm
specs: {{latency: {{max: "5 ms"}}}}
"""
STANDIN_TEMPLATES = {
    "toy_os": {"dataflow": "os", "rows": [8, 16], "cols": [8, 16], "bw": [4, 8]},
    "toy_ws": {"dataflow": "ws", "rows": [4, 8, 16], "cols": [8], "bw": [8, 16]},
    "toy_is": {"dataflow": "is", "rows": [8, 12], "cols": [8, 14], "bw": [4]},
}


def write_standins(folder: str | Path, *, pes: int = 320, bandwidth: float = 16) -> dict[str, Path]:
    """Write the stand-in templates, a set of them (``toy_set``) and a two-task
    multi-accelerator over that set (``toy_multi``, budget ``pes`` / ``bandwidth``) into
    ``folder``; return name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, kw in STANDIN_TEMPLATES.items():
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(_TEMPLATE.format(name=name, **kw))
    out["toy_set"] = folder / "toy_set.yaml"
    out["toy_set"].write_text(
        "schema: 1\nkind: accelerator_set\nname: toy_set\nmembers: [toy_os.yaml, toy_ws.yaml, toy_is.yaml]\n"
        "default: toy_ws\nspecs:\n  latency: {max: \"2 ms\"}\n")
    out["toy_multi"] = folder / "toy_multi.yaml"
    out["toy_multi"].write_text(
        "schema: 1\nkind: multi_accelerator\nname: toy_multi\nsub_accelerators: 2\nmembers: [toy_set.yaml]\n"
        f"budget:\n  pes: {pes}\n  dram_bytes_per_cycle: {bandwidth}\n"
        "specs:\n  latency: {max: \"10 ms\"}\n  area: {max: \"10 mm2\"}\n")
    return out
