"""The accelerator_set and multi_accelerator kinds: members, overrides, budgets, errors."""
from __future__ import annotations

import pytest

from nasco import dsl
from nasco.dsl import AcceleratorSet, MultiAccelerator, SpecError, load_file, parse_overrides
from nasco.testing import write_standins


@pytest.fixture
def files(tmp_path):
    return write_standins(tmp_path)


def _error(path, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_file(path, **kw)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path) + ":"), text
    return info.value


def test_set_links_its_members(files):
    s = load_file(files["toy_set"])
    assert isinstance(s, AcceleratorSet) and not isinstance(s, MultiAccelerator)
    assert list(s.templates) == ["toy_os", "toy_ws", "toy_is"]
    assert s.default_member == "toy_ws"
    assert s.templates["toy_os"].limits()["latency"] == pytest.approx(5e-3)  # its own, unchanged
    assert s.member("toy_os").limits()["latency"] == pytest.approx(2e-3)      # the set's
    assert s.source == str(files["toy_set"])
    assert dsl.to_data(s)["members"] == ["toy_os.yaml", "toy_ws.yaml", "toy_is.yaml"]


def test_multi_flattens_a_set_member(files):
    m = load_file(files["toy_multi"])
    assert isinstance(m, MultiAccelerator) and m.sub_accelerators == 2
    assert list(m.templates) == ["toy_os", "toy_ws", "toy_is"]
    assert m.member("toy_is").specs is None  # the system's specs apply to the totals
    assert m.limits() == {"latency": pytest.approx(0.01), "area": pytest.approx(10.0)}


def test_over_budget_file_is_one_line_with_its_line_number(files):
    path = files["toy_multi"]
    text = path.read_text().replace("pes: 320", "pes: 60")
    path.write_text(text)
    line = text.splitlines().index("  pes: 60") + 1
    err = _error(path)
    assert str(err) == (
        f"{path}:{line}: budget.pes: expected at least 64 PEs (the smallest partition: 2 sub-accelerators x "
        f"32 PEs of 'toy_ws'), found 60; raise budget.pes to 64 or more, or list members with smaller "
        f"PE arrays")


def test_over_bandwidth_budget(files):
    path = files["toy_multi"]
    path.write_text(path.read_text().replace("dram_bytes_per_cycle: 16", "dram_bytes_per_cycle: 6"))
    err = _error(path)
    assert err.path == ("budget", "dram_bytes_per_cycle")
    assert "expected at least 8 bytes/cycle (the smallest partition: 2 sub-accelerators x 4 bytes/cycle" in str(err)
    # the same through an override: the budget a --set makes too small is caught the same way
    ok = files["toy_multi"].read_text().replace("dram_bytes_per_cycle: 6", "dram_bytes_per_cycle: 16")
    path.write_text(ok)
    load_file(path, overrides=parse_overrides(["budget.pes=64"]))  # exactly the smallest partition
    err = _error(path, overrides=parse_overrides(["budget.pes=63"]))
    assert err.path == ("budget", "pes") and "found 63" in str(err)


def test_budget_must_fit_pes_and_bandwidth_at_once(tmp_path):
    # Each budget alone holds 2 x the smallest member (32 PEs of toy_ws, 4 bytes/cycle of toy_os),
    # but no two members take both so little: toy_ws needs 8 bytes/cycle, toy_os and toy_is 64 PEs.
    files = write_standins(tmp_path, pes=64, bandwidth=8)
    err = _error(files["toy_multi"])
    assert str(err).endswith(
        ":6: budget: expected a budget that fits 2 sub-accelerators in PEs and bandwidth at once (the smallest "
        "partitions take 128 PEs within 8 bytes/cycle or 16 bytes/cycle within 64 PEs), found 64 PEs and "
        "8 bytes/cycle; raise budget.pes to 128 or budget.dram_bytes_per_cycle to 16")
    load_file(files["toy_multi"], overrides=parse_overrides(["budget.pes=96", "budget.dram_bytes_per_cycle=12"]))


@pytest.mark.parametrize("edit,path,fragment", [
    (("toy_is.yaml]", "toy_iss.yaml]"), "members[2]", "no such file"),
    (("members: [toy_os.yaml", "members: [toy_ws.yaml"), "members[1]", "distinct template names"),
    (("default: toy_ws", "default: toy_wss"), "default", "did you mean 'toy_ws'"),
    (("members: [toy_os.yaml, toy_ws.yaml, toy_is.yaml]", "members: []"), "members", "at least one member"),
    (("members: [toy_os.yaml", "members: [toy_set.yaml"), "members[0]", "a set that lists it back"),
    (("members: [toy_os.yaml", "members: [other_multi.yaml"), "members[0]", "an accelerator template or an "),
])
def test_set_errors_name_the_key(files, edit, path, fragment):
    other = files["toy_multi"].read_text().replace("[toy_set.yaml]", "[toy_os.yaml]")
    (files["toy_multi"].parent / "other_multi.yaml").write_text(other)
    f = files["toy_set"]
    f.write_text(f.read_text().replace(*edit))
    err = _error(f)
    assert dsl._errors.format_path(err.path) == path and fragment in str(err), str(err)
    assert err.line is not None


def test_member_errors_name_the_member_file(files):
    f = files["toy_ws"]
    f.write_text(f.read_text().replace("dataflow: ws", "dataflow: wss"))
    with pytest.raises(SpecError) as info:
        load_file(files["toy_set"])
    assert str(info.value).startswith(f"{f}:4: dataflow: expected one of")


def test_overrides_reach_the_members(files):
    s = load_file(files["toy_set"], overrides=parse_overrides([
        "template={choice: [toy_is, toy_os]}", "toy_os.pe_array.rows=8", "clock_mhz=200",
        "specs.latency.max=3 ms"]))
    assert list(s.templates) == ["toy_is", "toy_os"]
    assert s.templates["toy_os"].pe_array.rows == 8
    assert all(t.clock_mhz == 200 for t in s.templates.values())
    assert s.limits()["latency"] == pytest.approx(3e-3)
    assert s.default_member == "toy_is"  # the file's default (toy_ws) is not kept


@pytest.mark.parametrize("item,fragment", [
    ("templat=toy_os", "did you mean 'template'"),
    ("template=toy_xx", "expected a member of the set (toy_os, toy_ws, toy_is), found 'toy_xx'"),
    ("toy_oss.clock_mhz=200", "did you mean 'toy_os'"),
])
def test_bad_set_overrides(files, item, fragment):
    err = _error(files["toy_set"], overrides=parse_overrides([item]))
    assert fragment in str(err), str(err)


def test_member_override_errors_name_the_member_file(files):
    with pytest.raises(SpecError) as info:
        load_file(files["toy_set"], overrides=parse_overrides(["toy_os.pe_array.rowz=8"]))
    assert str(info.value).startswith(str(files["toy_os"]) + ":") and "did you mean 'rows'" in str(info.value)


def test_kind_filter_accepts_every_hw_kind(files):
    for key in ("toy_os", "toy_set", "toy_multi"):
        load_file(files[key], kind=dsl.HW_KINDS)
    with pytest.raises(SpecError, match="expected a file of kind 'accelerator' or 'accelerator_set' or "
                                        "'multi_accelerator', found kind 'arch_space'"):
        dsl.load_spec("darts", kind=dsl.HW_KINDS)
