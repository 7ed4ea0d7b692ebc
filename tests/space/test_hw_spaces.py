"""Hardware spaces: one template, a template set, a heterogeneous multi-accelerator."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from nasco.dsl import HW_KINDS, builtin_names, load_file, load_spec, parse_overrides
from nasco.space import (
    SUBS_KEY, TASKS_KEY, MultiAcceleratorSpace, SearchSpace, TemplateSetSpace, TemplateSpace, hw_space,
)
from nasco.testing import check_hw_space, write_standins


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_standins(tmp_path_factory.mktemp("hw"))


@pytest.fixture(scope="module")
def toy_set(files) -> TemplateSetSpace:
    return hw_space(load_file(files["toy_set"]))


@pytest.fixture(scope="module")
def toy_multi(files) -> MultiAcceleratorSpace:
    return hw_space(load_file(files["toy_multi"]))


# ---------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", [n for k in HW_KINDS for n in builtin_names(k)])
def test_builtin_hw_spaces_keep_the_contract(name):
    hw = hw_space(load_spec(name))
    seen = check_hw_space(hw, n=60)
    assert set(seen) == {t.name for t in hw.templates()}, seen  # every member sampled


def test_standins_keep_the_contract(files):
    for key in ("toy_os", "toy_set", "toy_multi"):
        check_hw_space(hw_space(load_file(files[key])), n=150)


# ---------------------------------------------------------------------- one template
def test_single_template_genotype_is_the_flat_choices(files):
    t = load_file(files["toy_os"])
    hw = hw_space(t)
    assert isinstance(hw, TemplateSpace) and hw.subs == 1
    g = hw.sample(np.random.default_rng(0))
    assert set(g) == {"pe_array.rows", "pe_array.cols", "bandwidth.dram_bytes_per_cycle", "clock_mhz"}
    assert hw.size() == 2 * 2 * 2 * 2


# A candidate of darts_snn x systolic_template, drawn with the generator seeded 0, as
# the joint space drew it before template sets existed (same genotype, same id).
SYSTOLIC_SEED0 = {"id": "cf5ba4b0d6be1f62"}


def test_single_template_ids_are_those_of_before(files):
    space = SearchSpace(load_spec("darts_snn"), load_spec("systolic_template"))
    c = space.sample(np.random.default_rng(0))
    assert set(c.hw) == set(space.hw_dims) and "template" not in c.hw
    assert c.id == SYSTOLIC_SEED0["id"]


# ---------------------------------------------------------------------- a template set
def test_set_sampling_covers_every_member_uniformly(toy_set):
    rng = np.random.default_rng(1)
    counts = Counter(toy_set.sample(rng)["template"] for _ in range(900))
    assert set(counts) == {"toy_os", "toy_ws", "toy_is"}
    assert all(250 < n < 350 for n in counts.values()), counts
    assert toy_set.size() == 16 + 3 * 2 * 2 + 2 * 2 * 2


def test_set_resolve_applies_the_set_specs(toy_set):
    g = toy_set.sample(np.random.default_rng(2))
    (t,) = toy_set.resolve(g)
    assert t.name == g["template"]
    assert t.limits() == {"latency": pytest.approx(2e-3)}  # the set's spec, not the member's 5 ms
    assert toy_set.limits(g) == t.limits() and toy_set.limits() == t.limits()
    assert t.source.endswith(f"{g['template']}.yaml")  # its energy table is found beside it


def test_set_mutation_switches_member_or_moves_one_choice(toy_set):
    rng = np.random.default_rng(3)
    g = toy_set.defaults()
    assert g["template"] == "toy_ws"
    switches = moves = 0
    for _ in range(400):
        m = toy_set.mutate(g, rng)
        toy_set.check(m)
        if m["template"] != g["template"]:
            switches += 1
        else:
            assert sum(g[k] != m[k] for k in g) == 1
            moves += 1
        g = m
    assert switches > 40 and moves > 40


def test_set_encoding_is_member_one_hot_plus_union(toy_set):
    dims = toy_set.dims()
    assert list(dims)[0] == "template" and dims["template"].options == ("toy_os", "toy_ws", "toy_is")
    assert dims["pe_array.rows"].options == (8, 16, 4, 12)  # the union, in member order
    g = {"template": "toy_is", "pe_array.rows": 12, "pe_array.cols": 14, "clock_mhz": 400.0,
         "bandwidth.dram_bytes_per_cycle": 4.0}
    v = toy_set.encode(g)
    assert v.size == sum(len(c) for c in dims.values())
    assert v[:3].tolist() == [0, 0, 1]
    assert v.sum() == 5  # template, rows, cols, clock, bandwidth
    toy_set.check(g)
    no_bw = {k: x for k, x in g.items() if k != "bandwidth.dram_bytes_per_cycle"}
    assert toy_set.encode(no_bw).sum() == 4  # a choice the member lacks: an all-zero block
    with pytest.raises(ValueError, match="pe_array.rows=16"):
        toy_set.check({**g, "pe_array.rows": 16})  # another member's option
    with pytest.raises(ValueError, match="not one of"):
        toy_set.check({**g, "template": "nope"})


def test_set_override_keeps_one_member(files):
    hw = hw_space(load_file(files["toy_set"], overrides=parse_overrides(["template=toy_os"])))
    assert hw.names == ["toy_os"]
    assert {hw.sample(np.random.default_rng(i))["template"] for i in range(20)} == {"toy_os"}


# ---------------------------------------------------------------------- multi-accelerator
def test_budget_is_never_exceeded_over_1000_samples_and_mutations(files):
    # A tight budget: two subs of at most 256 PEs each would often take more than 320.
    hw = hw_space(load_file(files["toy_multi"]))
    rng = np.random.default_rng(4)
    most = (0, 0.0)
    templates = Counter()
    for _ in range(1000):
        g = hw.sample(rng)
        hw.check(g)
        p, b = hw.total(g)
        assert p <= 320 and b <= 16, (p, b)
        most = max(most, (p, b))
    g = hw.sample(rng)
    for _ in range(1000):
        g = hw.mutate(g, rng)
        hw.check(g)
        p, b = hw.total(g)
        assert p <= 320 and b <= 16, (p, b)
        templates.update(s["template"] for s in g[SUBS_KEY])
    assert most[0] > 250  # the budget is used, not avoided
    assert set(templates) == {"toy_os", "toy_ws", "toy_is"}


def test_tight_budget_falls_back_to_the_sequential_sampler(tmp_path, caplog):
    # Only one kind of partition fits: a 4x8 toy_ws (32 PEs, 8 bytes/cycle) beside an 8x8 toy_os or
    # toy_is (64 PEs, 4 bytes/cycle). Two toy_ws would fit the PEs, not the bandwidth.
    files = write_standins(tmp_path, pes=96, bandwidth=12)
    hw = hw_space(load_file(files["toy_multi"]))
    rng = np.random.default_rng(5)
    with caplog.at_level("WARNING", logger="nasco.space"):
        seen = set()
        for _ in range(50):
            g = hw.sample(rng)
            hw.check(g)
            assert hw.total(g) == (96, 12.0)
            seen.add(tuple(sorted(s["template"] for s in g[SUBS_KEY])))
    assert seen == {("toy_os", "toy_ws"), ("toy_is", "toy_ws")}
    assert len([r for r in caplog.records if "one by one" in r.getMessage()]) == 1  # said once
    d = hw.defaults()  # the default member twice would not fit: the smallest partition that does
    hw.check(d)
    assert sorted(s["template"] for s in d[SUBS_KEY]) in (["toy_os", "toy_ws"], ["toy_is", "toy_ws"])


def test_multi_size_counts_partitions_within_budget(toy_multi):
    per = []  # (pes, bw) of every configuration of every member, brute force
    for m in toy_multi.pool.members.values():
        d = m.dims()
        for combo in itertools.product(*(c.options for c in d.values())):
            v = dict(zip(d, combo))
            per.append(toy_multi.usage({"template": m.name, **v}))
    n = sum(1 for a in per for b in per if a[0] + b[0] <= 320 and a[1] + b[1] <= 16)
    assert toy_multi.size() == n


def test_multi_check_rejects_an_over_budget_genotype(toy_multi):
    big = {"template": "toy_os", "pe_array.rows": 16, "pe_array.cols": 16,
           "bandwidth.dram_bytes_per_cycle": 8.0, "clock_mhz": 200.0}
    with pytest.raises(ValueError, match="512 PEs"):
        toy_multi.check({SUBS_KEY: [big, big]})
    with pytest.raises(ValueError, match="2 sub-accelerators"):
        toy_multi.check({SUBS_KEY: [big]})


def test_multi_resolve_drops_member_specs(toy_multi):
    g = toy_multi.sample(np.random.default_rng(6))
    ts = toy_multi.resolve(g)
    assert [t.name for t in ts] == [s["template"] for s in g[SUBS_KEY]]
    assert all(t.specs is None for t in ts)
    assert toy_multi.limits() == {"latency": pytest.approx(10e-3), "area": pytest.approx(10.0)}


# ---------------------------------------------------------------------- multi-task joint space
def test_multi_task_space_samples_and_mutates_every_part(files):
    space = SearchSpace([load_spec("darts_snn"), load_spec("darts")], load_file(files["toy_multi"]))
    rng = np.random.default_rng(7)
    c = space.sample(rng)
    assert set(c.arch) == {TASKS_KEY} and len(c.arch[TASKS_KEY]) == 2
    moved = Counter()
    for _ in range(300):
        m = space.mutate(c, rng)
        space.check(m)
        assert m.id != c.id
        a0, a1 = c.arch[TASKS_KEY], m.arch[TASKS_KEY]
        moved.update(f"task{i}" for i in range(2) if a0[i] != a1[i])
        moved.update(["hw"] if c.hw != m.hw else [])
        assert sum(1 for i in range(2) if a0[i] != a1[i]) + (c.hw != m.hw) == 1
        c = m
    assert all(moved[k] > 20 for k in ("task0", "task1", "hw")), moved
    v = space.encode(c)
    assert v.size == space.encode(space.sample(rng)).size
    archs, hws = space.resolve(c)
    assert [a.name for a in archs] == ["darts_snn", "darts"] and len(hws) == 2
    d = space.describe()
    assert d["arch"] == "darts_snn+darts" and d["tasks"] == ["darts_snn", "darts"] and d["hw"] == "toy_multi"
    json.dumps(d)


def test_task_count_must_match_the_sub_accelerators(files):
    with pytest.raises(ValueError, match="3 tasks need 3 sub-accelerators; 'toy_multi' has 2"):
        SearchSpace([load_spec("darts")] * 3, load_file(files["toy_multi"]))
    with pytest.raises(ValueError, match="multi_accelerator"):
        SearchSpace([load_spec("darts")] * 2, load_file(files["toy_set"]))


def test_ids_are_stable_across_processes(files):
    code = ("import sys, numpy as np; from nasco.dsl import load_file, load_spec; "
            "from nasco.space import SearchSpace; "
            "s = SearchSpace([load_spec('darts_snn'), load_spec('darts')], load_file(sys.argv[1])); "
            "r = np.random.default_rng(11); c = s.sample(r); "
            "print(' '.join([c.id] + [(c := s.mutate(c, r)).id for _ in range(5)]))")
    outs = set()
    for hashseed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        res = subprocess.run([sys.executable, "-c", code, str(files["toy_multi"])], capture_output=True,
                             text=True, env=env, timeout=120, check=True)
        outs.add(res.stdout.strip())
    assert len(outs) == 1
    space = SearchSpace([load_spec("darts_snn"), load_spec("darts")], load_file(files["toy_multi"]))
    r = np.random.default_rng(11)
    c = space.sample(r)
    ids = [c.id] + [(c := space.mutate(c, r)).id for _ in range(5)]
    assert outs == {" ".join(ids)}
