"""Candidates (stable ids, JSON) and the joint search space (sampling, mutation, counting,
encoding, NAS-Bench-201's official indices)."""
from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from nasco.dsl import builtin_dir, load_spec
from nasco.dsl._specs import CellSpec
from nasco.space import Candidate, DartsCells, DenseCell, SearchSpace, canonical_json

# The official arch strings by index, as the shipped nb201 lookup table holds them (joined from the
# NB201 release; search_spaces/nb201_table.md), a copy independent of the space's own index file.
NB201_CSV = builtin_dir() / "nb201_table.csv.gz"

FIXED = {
    "arch": {"hp": {"timesteps": 4, "macro.cells": 3, "neuron.tau": 2.0},
             "cell": {"normal": [["conv_3x3", 0], ["skip_connect", 1]], "reduce": [["sep_conv_3x3", 1]]}},
    "hw": {"pe_array.rows": 16, "dataflow": "ws", "buffers.ifmap_kb": 32.0},
}


@pytest.fixture(scope="module")
def snn_space() -> SearchSpace:
    return SearchSpace(load_spec("darts_snn"), load_spec("systolic_template"))


@pytest.fixture(scope="module")
def nb201_space() -> SearchSpace:
    return SearchSpace(load_spec("nb201"), load_spec("systolic_template"))


# ---------------------------------------------------------------------- candidates
def test_candidate_id_is_the_same_in_other_processes():
    text = json.dumps(FIXED)  # key order as written, not canonical
    here = Candidate.make(FIXED["arch"], FIXED["hw"])
    arch_c = canonical_json(FIXED["arch"])
    hw_c = canonical_json(FIXED["hw"])
    assert here.id == hashlib.sha256(f"{arch_c}|{hw_c}".encode()).hexdigest()[:16]
    code = ("import json,sys; from nasco.space import Candidate; d=json.loads(sys.argv[1]); "
            "print(Candidate.make(d['arch'], d['hw']).id)")
    ids = set()
    for seed in ("0", "12345"):  # different str-hash salts
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True,
                             env=env, timeout=60, check=True)
        ids.add(out.stdout.strip())
    assert ids == {here.id}


def test_candidate_json_round_trip_and_tampering():
    c = Candidate.make(FIXED["arch"], FIXED["hw"])
    back = Candidate.from_json(c.to_json())
    assert back == c and back.id == c.id and back.arch == FIXED["arch"] and back.hw == FIXED["hw"]
    # key order in the input does not matter
    shuffled = Candidate.make(dict(reversed(list(FIXED["arch"].items()))), FIXED["hw"])
    assert shuffled.id == c.id
    # the arch/hw properties are copies: mutating them does not change the candidate
    a = c.arch
    a["hp"]["timesteps"] = 2
    assert c.arch["hp"]["timesteps"] == 4
    data = json.loads(c.to_json())
    data["id"] = ("0" if data["id"][0] != "0" else "1") + data["id"][1:]
    with pytest.raises(ValueError, match="does not match"):
        Candidate.from_json(json.dumps(data))
    data = json.loads(c.to_json())
    data["hw"]["pe_array.rows"] = 32  # content changed, id kept
    with pytest.raises(ValueError):
        Candidate.from_json(json.dumps(data))
    # a different hw part is a different candidate
    assert Candidate.make(FIXED["arch"], {}).id != c.id


# ---------------------------------------------------------------------- sampling
def test_sample_is_deterministic_for_a_seed(snn_space):
    a = [snn_space.sample(np.random.default_rng(7)).id for _ in range(3)]
    assert len(set(a)) == 1
    r1, r2 = np.random.default_rng(42), np.random.default_rng(42)
    seq1 = [snn_space.sample(r1) for _ in range(20)]
    seq2 = [snn_space.sample(r2) for _ in range(20)]
    assert [c.id for c in seq1] == [c.id for c in seq2]
    assert len({c.id for c in seq1}) == 20
    other = [snn_space.sample(np.random.default_rng(43)).id for _ in range(1)]
    assert other[0] != seq1[0].id
    for c in seq1:
        snn_space.check(c)


def _darts_nodes(cell: dict, k: int) -> dict:
    return {(kind, i): sorted(map(tuple, edges[i * k:(i + 1) * k]))
            for kind, edges in cell.items() for i in range(len(edges) // k)}


def _darts_changes(old: dict, new: dict, k: int) -> int:
    """Number of single-edge changes (op or input) between two darts cells; raises if a
    node changed in any other way."""
    a, b = _darts_nodes(old, k), _darts_nodes(new, k)
    changes = 0
    for key in a:
        if a[key] == b[key]:
            continue
        removed = [e for e in a[key] if e not in b[key]]
        added = [e for e in b[key] if e not in a[key]]
        assert len(removed) == len(added) == 1, (key, a[key], b[key])
        (op0, j0), (op1, j1) = removed[0], added[0]
        assert (op0 != op1) + (j0 != j1) == 1, (removed, added)
        changes += 1
    return changes


def _is_canonical(cell: dict, k: int) -> bool:
    return all(edges[i * k:(i + 1) * k] == sorted(edges[i * k:(i + 1) * k], key=lambda e: (e[1], e[0]))
               for edges in cell.values() for i in range(len(edges) // k))


def test_mutate_changes_exactly_one_thing(snn_space):
    rng = np.random.default_rng(0)
    k = snn_space.cells.k
    c = snn_space.sample(rng)
    moved = {"cell": 0, "hp": 0, "hw": 0}
    for _ in range(200):
        m = snn_space.mutate(c, rng)
        assert m.id != c.id
        snn_space.check(m)
        assert _is_canonical(m.arch["cell"], k)
        hp_diff = [key for key in c.arch["hp"] if c.arch["hp"][key] != m.arch["hp"][key]]
        hw_diff = [key for key in c.hw if c.hw[key] != m.hw[key]]
        cell_diff = _darts_changes(c.arch["cell"], m.arch["cell"], k)
        assert len(hp_diff) + len(hw_diff) + cell_diff == 1, (c.arch, m.arch, c.hw, m.hw)
        moved["cell"] += cell_diff
        moved["hp"] += len(hp_diff)
        moved["hw"] += len(hw_diff)
        c = m
    assert all(v > 0 for v in moved.values()), moved
    # the first candidate of a fresh rng mutates identically (determinism)
    c0 = snn_space.sample(np.random.default_rng(1))
    assert snn_space.mutate(c0, np.random.default_rng(2)) == snn_space.mutate(c0, np.random.default_rng(2))


def test_mutate_nb201_one_edge_and_index_follows(nb201_space):
    rng = np.random.default_rng(3)
    c = nb201_space.from_index(123)
    hw_moves = 0
    for _ in range(200):
        m = nb201_space.mutate(c, rng)
        nb201_space.check(m)
        e0, e1 = c.arch["cell"]["edges"], m.arch["cell"]["edges"]
        n_edges = sum(a != b for a, b in zip(e0, e1))
        n_hw = sum(c.hw[key] != m.hw[key] for key in c.hw)
        assert n_edges + n_hw == 1
        hw_moves += n_hw
        if n_edges:
            assert m.arch["index"] != c.arch["index"]
            assert nb201_space.from_index(m.arch["index"]).arch == m.arch
        c = m
    assert 0 < hw_moves < 200


# ---------------------------------------------------------------------- darts cells
def test_darts_cells_sample_two_distinct_inputs_no_none():
    spec = CellSpec(type="darts", nodes=4, ops=("none", "skip_connect", "conv_3x3", "max_pool_3x3"),
                    edges_per_node=2)
    fam = DartsCells(spec)
    rng = np.random.default_rng(0)
    ops_seen = set()
    for _ in range(300):
        cell = fam.sample(rng)
        fam.check(cell)
        for edges in cell.values():
            assert len(edges) == 8
            for i in range(4):
                node = edges[2 * i:2 * i + 2]
                ins = [j for _op, j in node]
                assert len(set(ins)) == 2 and all(0 <= j < 2 + i for j in ins)
                ops_seen.update(op for op, _j in node)
        cell = fam.mutate(cell, rng)
        fam.check(cell)
        assert "none" not in {op for edges in cell.values() for op, _ in edges}
    assert ops_seen == {"skip_connect", "conv_3x3", "max_pool_3x3"}
    bad = fam.sample(rng)
    bad["normal"][0][0] = "none"
    with pytest.raises(ValueError):
        fam.check(bad)
    bad = fam.sample(rng)
    bad["normal"][3][1] = bad["normal"][2][1]  # node 1 repeats an input
    with pytest.raises(ValueError):
        fam.check(bad)


def test_darts_count_closed_form_and_brute_force():
    space = SearchSpace(load_spec("darts_snn"))
    n_ops = 7  # darts_snn's ops, none of them 'none'
    per_cell = math.prod(math.comb(2 + i, 2) for i in range(4)) * n_ops ** (2 * 4)
    assert space.size().cells == per_cell ** 2 == (180 * 7 ** 8) ** 2

    # a tiny spec, enumerated: node 0 sees {0,1}, node 1 picks 2 of {0,1,2}; 2 ops
    spec = CellSpec(type="darts", nodes=2, ops=("none", "skip_connect", "conv_1x1"), edges_per_node=2)
    fam = DartsCells(spec)
    ops = ("skip_connect", "conv_1x1")
    per = []
    for in1 in itertools.combinations(range(3), 2):
        for o in itertools.product(ops, repeat=4):
            per.append(((o[0], 0), (o[1], 1), (o[2], in1[0]), (o[3], in1[1])))
    assert fam.count() == len(per) ** 2 == 48 ** 2
    rng = np.random.default_rng(0)
    seen = {tuple(map(tuple, fam.sample(rng)["normal"])) for _ in range(3000)}
    assert seen == set(per)


def test_size_products_match_the_yaml_choices(snn_space):
    def choices(node):
        if isinstance(node, dict):
            if "choice" in node:
                return [len(node["choice"])]
            return [n for v in node.values() for n in choices(v)]
        return []

    arch_yaml = yaml.safe_load((builtin_dir() / "darts_snn.yaml").read_text())
    hw_yaml = yaml.safe_load((builtin_dir() / "systolic_template.yaml").read_text())
    size = snn_space.size()
    assert size.arch_choices == math.prod(choices(arch_yaml))
    assert size.hw_choices == math.prod(choices(hw_yaml))
    assert size.total == size.cells * size.arch_choices * size.hw_choices


def test_sample_and_mutate_keep_canonical_edge_order(snn_space):
    rng = np.random.default_rng(11)
    for _ in range(50):
        c = snn_space.sample(rng)
        assert _is_canonical(c.arch["cell"], 2)
        assert _is_canonical(snn_space.mutate(c, rng).arch["cell"], 2)


def _swap_first_node(cell: dict) -> dict:
    out = {k: [list(e) for e in v] for k, v in cell.items()}
    out["normal"][0], out["normal"][1] = out["normal"][1], out["normal"][0]
    return out


def test_swapped_edge_order_gives_the_same_id(snn_space):
    c = snn_space.sample(np.random.default_rng(5))
    cell = c.arch["cell"]
    assert snn_space.make(cell, c.arch["hp"], c.hw) == c
    swapped = snn_space.make(_swap_first_node(cell), c.arch["hp"], c.hw)
    assert swapped.id == c.id


def test_swapped_edge_order_has_the_same_network(snn_space):
    """Whatever the id, the network of a reordered genotype is the same (the plan
    builder walks the cell graph, not the edge list)."""
    from nasco.nn import plan_network, plan_workload

    c = snn_space.sample(np.random.default_rng(5))
    sw = snn_space.make(_swap_first_node(c.arch["cell"]), c.arch["hp"], c.hw)
    arch, _ = snn_space.resolve(c)
    w1 = plan_workload(plan_network(arch, c.arch["cell"], (1, 8, 8), 10))
    w2 = plan_workload(plan_network(arch, sw.arch["cell"], (1, 8, 8), 10))
    assert w1.macs == w2.macs and sorted(x.name for x in w1.layers) == sorted(x.name for x in w2.layers)


# ---------------------------------------------------------------------- NB201
def _official() -> dict[int, str]:
    import pandas as pd

    df = pd.read_csv(NB201_CSV, usecols=["index", "arch_str"])
    return dict(zip(df["index"].astype(int), df["arch_str"]))


def test_from_index_matches_the_official_strings(nb201_space):
    official = _official()
    rng = np.random.default_rng(2020)
    idx = rng.choice(len(official), size=200, replace=False)
    fam = nb201_space.cells
    for i in map(int, idx):
        c = nb201_space.from_index(i)
        assert c.arch["index"] == i
        assert c.arch["arch_str"] == official[i]
        assert fam.arch_str(c.arch["cell"]) == official[i]
        nb201_space.check(c)
    for i in (0, len(official) - 1):
        assert nb201_space.from_index(i).arch["arch_str"] == official[i]
    with pytest.raises(ValueError):
        nb201_space.from_index(len(official))
    with pytest.raises(ValueError):
        nb201_space.from_index(-1)
    with pytest.raises(ValueError):  # no official index for darts
        SearchSpace(load_spec("darts")).from_index(0)


def _packaged_table() -> list[tuple[int, str]]:
    with gzip.open(builtin_dir() / "nb201_index.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "index,arch_str"
    return [(int(i), s) for i, s in (line.split(",", 1) for line in lines[1:])]


def test_packaged_index_table_is_one_to_one_over_all_cells(nb201_space):
    rows = _packaged_table()
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    assert len(rows) == 15625 == len(ops) ** 6
    assert sorted(i for i, _ in rows) == list(range(15625))
    strings = [s for _, s in rows]
    assert len(set(strings)) == 15625
    fam: DenseCell = nb201_space.cells
    cells = set()
    for _i, s in rows:
        edges = [tok.split("~")[0] for grp in s.split("+") for tok in grp.strip("|").split("|")]
        inputs = [int(tok.split("~")[1]) for grp in s.split("+") for tok in grp.strip("|").split("|")]
        assert inputs == [0, 0, 1, 0, 1, 2]
        assert fam.arch_str({"edges": edges}) == s
        cells.add(tuple(edges))
    assert cells == set(itertools.product(ops, repeat=6))  # every cell exactly once
    assert nb201_space.size().cells == 15625 and nb201_space.size().arch == 15625
    # the space's lookup is the packaged table
    assert {s: i for i, s in rows} == nb201_space._index
    if NB201_CSV.is_file():
        assert dict(rows) == _official()


def test_make_fills_index_for_any_nb201_cell(nb201_space):
    rng = np.random.default_rng(8)
    rows = dict(_packaged_table())
    for _ in range(50):
        c = nb201_space.sample(rng)
        assert rows[c.arch["index"]] == c.arch["arch_str"]


# ---------------------------------------------------------------------- encode
@pytest.mark.parametrize("name", ["darts_snn", "darts", "nb201"])
def test_encode_fixed_length_one_hot(name):
    space = SearchSpace(load_spec(name), load_spec("systolic_template"))
    if name == "nb201":
        slots = 6
    else:
        slots = 2 * space.arch_spec.cell.nodes * space.cells.k
    slots += len(space.arch_dims) + len(space.hw_dims)
    rng = np.random.default_rng(4)
    cands = [space.sample(rng) for _ in range(40)]
    cands += [space.mutate(c, rng) for c in cands[:20]]
    vecs = [space.encode(c) for c in cands]
    assert len({v.shape for v in vecs}) == 1
    by_id = {}
    for c, v in zip(cands, vecs):
        assert set(np.unique(v)) <= {0.0, 1.0}
        assert v.sum() == slots
        by_id[c.id] = v.tobytes()
    # distinct candidates, distinct encodings
    assert len(set(by_id.values())) == len(by_id)
    # the choice part: one 1 per choice, at the chosen option
    c = cands[0]
    tail = space.encode(c)[len(space.cells.encode(c.arch["cell"])):]
    pos = 0
    for dims, values in ((space.arch_dims, c.arch["hp"]), (space.hw_dims, c.hw)):
        for key, choice in dims.items():
            block = tail[pos:pos + len(choice)]
            assert block.sum() == 1 and choice.options[int(block.argmax())] == values[key]
            pos += len(choice)
    assert pos == len(tail)
