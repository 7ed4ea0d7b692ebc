"""YAML alias blow-ups ("billion laughs") and huge values: refused fast, in little memory, with
one-line errors that show a capped value."""
from __future__ import annotations

import time
import tracemalloc

import pytest

from nasco.dsl import MAX_EXPANDED_SIZE, SpecError, find_file, load_file, load_value, parse_overrides
from nasco.dsl._errors import MAX_SHOWN, capped
from nasco.dsl._yaml import load_yaml_text

HEAD = "schema: 1\nkind: arch_space\nname: bomb\n"


def _nested_lists(levels: int = 9, width: int = 9) -> str:
    """The classic bomb: each anchor a list of ``width`` aliases of the one before (9**9 strings)."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _nested_mappings(levels: int = 9, width: int = 9) -> str:
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(width)) + "}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(width)) + "}")
    return "\n".join(lines) + "\n"


def _merge_keys(levels: int = 9, width: int = 9) -> str:
    """Merge keys: SafeLoader's flattening copies every merged pair, so the pairs multiply."""
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(width)) + "}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + "]}")
    return "\n".join(lines) + "\n"


def _string_list() -> str:
    """A list of strings: one 10,000-character string repeated 10,000 times (1e8 characters)."""
    return 's: &s "' + "x" * 10_000 + '"\nops: [' + ", ".join(["*s"] * 10_000) + "]\n"


BOMBS = {"nested_lists": _nested_lists, "nested_mappings": _nested_mappings, "merge_keys": _merge_keys,
         "string_list": _string_list}


def _measure(fn):
    """(exception raised, seconds, peak bytes traced) of ``fn()``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        fn()
    except SpecError as exc:
        err = exc
    else:
        err = None
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return err, seconds, peak


# Measured on the 2-core development machine, tracemalloc on: nested lists 0.005 s / <0.1 MB,
# nested mappings 0.002 s / 0.1 MB, merge keys 0.001 s / <0.1 MB, string list 0.17 s / 2.0 MB
# (its own 100 KB text and 10,000 nodes). The targets are 1 s and 200 MB.
@pytest.mark.parametrize("shape", sorted(BOMBS))
def test_alias_bomb_is_refused_fast_and_small(shape):
    text = HEAD + BOMBS[shape]()
    err, seconds, peak = _measure(lambda: load_yaml_text(text, "bomb.yaml"))
    assert err is not None, f"{shape}: the bomb loaded"
    assert seconds < 1.0, f"{shape}: {seconds:.2f} s"
    assert peak < 200 * 2**20, f"{shape}: {peak / 2**20:.0f} MB"
    msg = str(err)
    assert msg.startswith("bomb.yaml:") and "once its aliases are expanded" in msg
    assert f"at most {MAX_EXPANDED_SIZE:,}" in msg and "\n" not in msg and len(msg) < 600


def test_bomb_error_names_the_first_value_past_the_bound():
    # a_i expands to 9**(i+1) strings of 3 characters (4 units each) plus the lists: a5 is the
    # first past a million: 9**6 * 4 + (9**5 + ... + 1) = 2,192,194 (hand-computed).
    err, _, _ = _measure(lambda: load_yaml_text(HEAD + _nested_lists(), "b.yaml"))
    assert err.path == ("a5",) and err.line == 9
    assert err.found == "one that expands to 2,192,194"


def _flow_bomb(levels: int = 9, width: int = 9) -> str:
    """The nested-list bomb as one flow value: &a8 [&a7 [... &a0 [lol, ...] ...], *a7, ...]."""
    value = "&a0 [" + ", ".join(["lol"] * width) + "]"
    for i in range(1, levels):
        value = f"&a{i} [{value}, " + ", ".join([f"*a{i - 1}"] * (width - 1)) + "]"
    return value


def test_bomb_inside_an_accepted_field_through_load_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(HEAD + "description: " + _flow_bomb() + "\n")
    err, seconds, peak = _measure(lambda: load_file(path))
    assert err is not None and err.file == str(path) and err.line == 4
    assert err.path == ("description", 0, 0, 0)  # a5, the first value past the bound
    assert seconds < 1.0 and peak < 200 * 2**20


def test_aliases_below_the_bound_still_load():
    text = HEAD + _nested_lists(levels=4) + "b: [*a3, *a3]\n"  # 2 x 9**4 strings: 58,000 units
    assert len(load_yaml_text(text, "ok.yaml").data["b"][1][8][8][8]) == 9


def test_set_and_searcher_opt_values_are_bounded():
    err, seconds, peak = _measure(lambda: parse_overrides([f"hw.clock_mhz={_flow_bomb()}"]))
    assert err is not None and str(err).startswith("--set: hw.clock_mhz[0][0][0]: expected a value that ")
    assert seconds < 1.0 and peak < 200 * 2**20
    err, seconds, peak = _measure(lambda: load_value(_flow_bomb(), "--searcher-opt warmup"))
    assert err is not None and str(err).startswith("--searcher-opt warmup: [0][0][0]: expected a value ")
    assert seconds < 1.0 and peak < 200 * 2**20


def test_small_values_with_aliases_and_merge_keys_still_load():
    flow = "[&m {k: &l [x, x, x], j: 1}, {<<: [*m, *m], z: [*l, *l]}]"
    value = parse_overrides([f"x={flow}"])[("x",)]
    assert value == [{"k": ["x"] * 3, "j": 1}, {"k": ["x"] * 3, "j": 1, "z": [["x"] * 3] * 2}]


def test_recursive_alias_is_refused():
    with pytest.raises(SpecError, match="no value that contains itself"):
        load_yaml_text("a: &a [1, *a]\n", "r.yaml")


def test_deep_nesting_is_a_one_line_error_not_a_traceback():
    # 999 levels pass libyaml's depth limit (1000); the walk over them must not recurse.
    data = load_yaml_text("x: " + "[" * 999 + "]" * 999, "deep.yaml").data
    assert isinstance(data["x"], list)


# ------------------------------------------------------------------ capped values in messages
def _shared_nest(levels: int, width: int = 9):
    value: object = ["lol"] * width
    for _ in range(levels):
        value = [value] * width  # shared, as YAML aliases are: 9**(levels + 1) strings
    return value


def test_spec_error_caps_a_huge_found_value():
    # 9**8 = 43 million strings behind shared references: a full repr is about 300 MB.
    err, seconds, peak = _measure(lambda: (_ for _ in ()).throw(
        SpecError("a string", _shared_nest(7), file="f.yaml", path=("description",))))
    text = str(err)
    assert len(text) <= len("f.yaml: description: expected a string, found ") + MAX_SHOWN + 40
    assert seconds < 1.0 and peak < 50 * 2**20
    assert text.endswith("characters)") and "found [[[[...], [...], [...]," in text


def test_capped_shows_small_values_as_repr():
    for value in ("conv_3x3", 16, 2.5, [8, 16], {"choice": [1, 2]}, None, True):
        assert capped(value) == repr(value)


def test_long_string_values_are_capped_in_messages():
    long = "x" * 100_000
    with pytest.raises(SpecError) as info:
        load_file(find_file("systolic_template"), overrides={("clock_mhz",): long})
    text = str(info.value)
    assert "clock_mhz: expected a number, found 'xxxx" in text and len(text) < 2 * MAX_SHOWN + 200
    with pytest.raises(SpecError) as info:
        parse_overrides([f"hw.dataflow{long}"])  # no '=': the whole item is shown, capped
    assert len(str(info.value)) < 2 * MAX_SHOWN + 200


def test_searcher_opt_values_go_through_the_bounded_loader():
    import argparse

    from nasco.cli._search import _parse_searcher_opts

    args = argparse.Namespace(searcher_opt=[f"population_size={_flow_bomb()}"])
    err, seconds, peak = _measure(lambda: _parse_searcher_opts(args, "evolution"))
    assert err is not None and seconds < 1.0 and peak < 200 * 2**20
    assert str(err).startswith("--searcher-opt population_size: [0][0][0]: expected a value that expands")
