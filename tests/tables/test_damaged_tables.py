"""Damaged copies of the shipped nb201 table (search_spaces/nb201_table.csv.gz): a file cut
mid-row, short and long rows, infinite and out-of-range metrics, a cache swapped for another
table's, and a space whose official index is not an index file. Each is one line naming the
file and the fault (or, for a cache, a rebuild with a warning), and nothing faulty is cached
or served."""
from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

from nasco.cli import main
from nasco.dsl import SpecError, builtin_dir
from nasco.tables import STATS, TableError, load_table

SHIPPED = builtin_dir() / "nb201_table.csv.gz"
SHORT_HINT = ("the row is short: the file may be cut off mid-row, or the row lacks values (leave a field "
              "empty for a missing value, but keep its separator)")
RANGE_HINT = "correct the value, or the column's unit in the table's DSL file"
HEADER = gzip.decompress(SHIPPED.read_bytes()).decode().split("\n", 1)[0].split(",")


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """The shipped table's lines (header first), each with its line end."""
    return gzip.decompress(SHIPPED.read_bytes()).decode().splitlines(keepends=True)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _table(folder, text: str, *, name: str = "t", data: str = "t.csv.gz", space: str = "nb201.yaml",
           dsl_edit=lambda s: s):
    """A copy of the shipped table's DSL file in ``folder``, reading ``text`` from ``data``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("nb201.yaml", "nb201_index.csv.gz"):
        shutil.copy(builtin_dir() / f, folder / f)
    raw = text.encode()
    (folder / data).write_bytes(gzip.compress(raw) if data.endswith(".gz") else raw)
    dsl = (builtin_dir() / "nb201_table.yaml").read_text()
    dsl = dsl.replace("name: nb201_table", f"name: {name}").replace("space: nb201\n", f"space: {space}\n")
    dsl = dsl.replace("data: nb201_table.csv.gz", f"data: {data}")
    spec = folder / f"{name}.yaml"
    spec.write_text(dsl_edit(dsl))
    return spec


def _with_field(line: str, column: str, value: str) -> str:
    """``line`` of the shipped table with the field of ``column`` set to ``value``."""
    fields = line.rstrip("\n").split(",")
    fields[HEADER.index(column)] = value
    return ",".join(fields) + "\n"


def _error(spec, cache) -> str:
    with pytest.raises(TableError) as e:
        load_table(spec, cache=cache)
    assert not cache.exists()
    return str(e.value)


# ------------------------------------------------------------------ rows of the wrong length
def test_csv_cut_mid_row_inside_an_intact_gzip(tmp_path, cache, lines):
    # The probe's case: data row 7795 (line 7796) cut after '43.8' of its 13th field, 43.86 in
    # the source; pandas alone loaded 7,795 rows with that row's last 31 columns NaN.
    assert lines[7795].split(",")[12] == "43.86"
    cut = lines[7795][: lines[7795].index(",43.86,") + len(",43.8")]
    spec = _table(tmp_path, "".join(lines[:7795]) + cut)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the missing line end is warned about too
        msg = _error(spec, cache)
    data = tmp_path / "t.csv.gz"
    assert msg == f"{data}: line 7796 (row 7795): 13 fields, expected 44 as in the header; {SHORT_HINT}"


def test_short_row_after_a_blank_line(tmp_path, cache, lines):
    # A blank line (line 101, just before it) holds no row, so data row 100 starts on line 102.
    short = ",".join(lines[100].split(",")[:41]) + "\n"
    text = "".join(lines[:100]) + "\n" + short + "".join(lines[101:200])
    msg = _error(_table(tmp_path, text), cache)
    data = tmp_path / "t.csv.gz"
    assert msg == f"{data}: line 102 (row 100): 41 fields, expected 44 as in the header; {SHORT_HINT}"


def test_long_row(tmp_path, cache, lines):
    spec = _table(tmp_path, "".join(lines[:10]) + lines[10].rstrip("\n") + ",7\n" + "".join(lines[11:20]))
    assert _error(spec, cache) == (f"{tmp_path / 't.csv.gz'}: line 11 (row 10): 45 fields, expected 44 as in "
                                   "the header; a value holds the separator: quote it, or remove the extra "
                                   "fields")


def test_a_last_line_without_its_line_end_is_loaded_with_a_warning(tmp_path, cache, lines):
    spec = _table(tmp_path, "".join(lines[:31]).rstrip("\n"))
    with pytest.warns(RuntimeWarning) as rec:
        t = load_table(spec, cache=cache)
    assert [str(w.message) for w in rec] == [
        f"{tmp_path / 't.csv.gz'}: line 31 (row 30), the last, has no line end; if the file was cut off "
        "there, the row's last value is incomplete"]
    assert len(t) == 30 and t.query(29, "pi5_energy") == float(lines[30].rstrip("\n").split(",")[-1])


def test_a_whole_file_loads_without_a_warning(tmp_path, cache, lines):
    spec = _table(tmp_path, "".join(lines[:31]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = load_table(spec, cache=cache)
    assert len(t) == 30


# ------------------------------------------------------------------ metric values
LATENCY = "'eyeriss_latency' is never negative"


# Data row 5 (line 6), index 4: c10_test_200ep (accuracy, unit '%'), n_seeds (no unit),
# eyeriss_ms (metric eyeriss_latency, unit ms), pi5_onnx_cifar100_energy_mj (pi5_energy, mJ).
@pytest.mark.parametrize("column,value,found,expected", [
    ("c10_test_200ep", "1e400", "1e400 (read as inf)", "a number in [0, 100] (an accuracy in %)"),
    ("c10_test_200ep", "inf", "inf", "a number in [0, 100] (an accuracy in %)"),
    ("c10_test_200ep", "-Infinity", "-inf", "a number in [0, 100] (an accuracy in %)"),
    ("c10_test_200ep", "100.001", "100.001", "a number in [0, 100] (an accuracy in %)"),
    ("c10_test_200ep", "-0.5", "-0.5", "a number in [0, 100] (an accuracy in %)"),
    ("n_seeds", "inf", "inf", "a finite number"),
    ("eyeriss_ms", "-1e-9", "-1e-9", f"a finite number >= 0 ({LATENCY})"),
    ("eyeriss_ms", "1e999", "1e999 (read as inf)", f"a finite number >= 0 ({LATENCY})"),
    ("pi5_onnx_cifar100_energy_mj", "-2", "-2", "a finite number >= 0 ('pi5_energy' is never negative)"),
])
def test_infinite_and_out_of_range_metrics(tmp_path, cache, lines, column, value, found, expected):
    text = "".join(lines[:5]) + _with_field(lines[5], column, value) + "".join(lines[6:40])
    assert _error(_table(tmp_path, text), cache) == (
        f"{tmp_path / 't.csv.gz'}: row 5 (line 6): column '{column}' holds {found}, expected {expected}; "
        f"{RANGE_HINT}")


def test_a_range_error_after_a_blank_line_names_the_rows_line(tmp_path, cache, lines):
    # Blank lines 2 and 7 (just before it) hold no rows, so data row 5 starts on line 8.
    text = lines[0] + "\n" + "".join(lines[1:5]) + "\r\n" + _with_field(lines[5], "eyeriss_ms", "-3") \
        + "".join(lines[6:20])
    assert _error(_table(tmp_path, text), cache) == (
        f"{tmp_path / 't.csv.gz'}: row 5 (line 8): column 'eyeriss_ms' holds -3, expected a finite number "
        f">= 0 ({LATENCY}); {RANGE_HINT}")


def test_a_negative_value_in_a_physical_unit(tmp_path, cache, lines):
    # A metric whose name says nothing of its kind, measured in ms: the unit alone bounds it.
    text = "".join(lines[:3]) + _with_field(lines[3], "fpga_ms", "-0.25") + "".join(lines[4:20])
    spec = _table(tmp_path, text, dsl_edit=lambda s: s.replace("metric: fpga_latency,", "metric: fpga_t,"))
    assert _error(spec, cache) == (
        f"{tmp_path / 't.csv.gz'}: row 3 (line 4): column 'fpga_ms' holds -0.25, expected a finite number "
        f">= 0 (a quantity in ms is never negative); {RANGE_HINT}")


def test_range_edges_are_accepted(tmp_path, cache, lines):
    rows = [_with_field(lines[1], "c10_test_200ep", "0"), _with_field(lines[2], "c10_test_200ep", "100"),
            _with_field(lines[3], "eyeriss_ms", "0"), _with_field(lines[4], "n_seeds", "-7.5")]
    t = load_table(_table(tmp_path, lines[0] + "".join(rows) + "".join(lines[5:20])), cache=cache)
    assert [t.query(0, "c10_test_200ep"), t.query(1, "c10_test_200ep"), t.query(2, "eyeriss_ms"),
            t.query(3, "n_seeds")] == [0.0, 100.0, 0.0, -7.5]


def test_accuracy_without_unit_percent_is_a_fraction(tmp_path, cache, lines):
    declared = "c10_test_200ep: {metric: accuracy, dataset: c10, split: test, fidelity: 200,"
    spec = _table(tmp_path, "".join(lines[:20]),
                  dsl_edit=lambda s: s.replace(declared + " unit: '%',", declared))
    assert _error(spec, cache) == (
        f"{tmp_path / 't.csv.gz'}: row 1 (line 2): column 'c10_test_200ep' holds 85.86333, expected a number "
        f"in [0, 1] (an accuracy as a fraction, its unit not being '%'); {RANGE_HINT}")


def test_infinite_metric_in_a_parquet_source(tmp_path, cache, lines):
    import pandas as pd

    spec = _table(tmp_path, "".join(lines[:20]), data="t.csv")
    df = pd.read_csv(tmp_path / "t.csv")
    df.loc[6, "fpga_ms"] = np.inf
    df.to_parquet(tmp_path / "t.parquet", index=False)
    spec.write_text(spec.read_text().replace("data: t.csv", "data: t.parquet"))
    assert _error(spec, cache) == (f"{tmp_path / 't.parquet'}: row 7: column 'fpga_ms' holds inf, expected a "
                                   f"finite number >= 0 ('fpga_latency' is never negative); {RANGE_HINT}")


# ------------------------------------------------------------------ the cache
def _column_of(lines, column: str) -> list[float]:
    i = lines[0].rstrip("\n").split(",").index(column)
    return [float(line.split(",")[i]) for line in lines[1:]]


def test_a_cache_swapped_for_another_tables_is_rebuilt(tmp_path, cache, lines):
    a = _table(tmp_path / "a", "".join(lines[:21]), name="a")
    b = _table(tmp_path / "b", lines[0] + "".join(lines[21:41]), name="b")
    ta, tb = load_table(a, cache=cache), load_table(b, cache=cache)
    shutil.copy(ta.cache_path, tb.cache_path)   # a valid parquet of the same columns, 20 other rows
    parsed = STATS["parsed"]
    with pytest.warns(RuntimeWarning) as rec:
        again = load_table(b, cache=cache)
    assert [str(w.message) for w in rec] == [
        f"{tb.cache_path}: not the cache of b.yaml: it was built from other data (sha256 "
        f"{_sha(tmp_path / 'a' / 't.csv.gz')[:16]}..., the data file's is "
        f"{_sha(tmp_path / 'b' / 't.csv.gz')[:16]}...); rebuilding it from {tmp_path / 'b' / 't.csv.gz'}"]
    assert STATS["parsed"] == parsed + 1
    assert list(again.index) == list(range(20, 40))
    assert list(again.columns["c10_test_200ep"]) == _column_of([lines[0]] + lines[21:41], "c10_test_200ep")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_table(b, cache=cache).cache_path == tb.cache_path   # its own cache now: served
    assert STATS["parsed"] == parsed + 1


def test_a_cache_of_the_same_data_for_another_table_file_is_rebuilt(tmp_path, cache, lines):
    text = "".join(lines[:21])
    a = _table(tmp_path / "a", text, name="same")
    b = _table(tmp_path / "b", text, name="same",
               dsl_edit=lambda s: s.replace("description: NAS", "description: My"))
    ta, tb = load_table(a, cache=cache), load_table(b, cache=cache)
    assert ta.cache_path != tb.cache_path
    key_a = pq.read_schema(ta.cache_path).metadata[b"nasco.cache_key"].decode()
    key_b = pq.read_schema(tb.cache_path).metadata[b"nasco.cache_key"].decode()
    shutil.copy(ta.cache_path, tb.cache_path)
    with pytest.warns(RuntimeWarning) as rec:
        load_table(b, cache=cache)
    assert [str(w.message) for w in rec] == [
        f"{tb.cache_path}: not the cache of same.yaml: it was built for another table or space file (key "
        f"{key_a[:16]}..., expected {key_b[:16]}...); rebuilding it from {tmp_path / 'b' / 't.csv.gz'}"]


def test_a_cache_without_a_record_of_its_source_is_rebuilt(tmp_path, cache, lines):
    spec = _table(tmp_path, "".join(lines[:21]))
    t = load_table(spec, cache=cache)
    pq.write_table(pq.read_table(t.cache_path).replace_schema_metadata(None), t.cache_path)
    with pytest.warns(RuntimeWarning) as rec:
        load_table(spec, cache=cache)
    assert [str(w.message) for w in rec] == [
        f"{t.cache_path}: not the cache of t.yaml: it records no source hash; rebuilding it from "
        f"{tmp_path / 't.csv.gz'}"]


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ the official index
INDEX_EXPECTED = ("expected an index table: a CSV (or .csv.gz) with columns index and arch_str, one cell "
                  "per row")
PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def _bad_index_space(tmp_path, index_text: str | None, lines) -> tuple:
    spec = _table(tmp_path, "".join(lines[:21]), space="mine.yaml")
    if index_text is not None:
        (tmp_path / "passwd").write_text(index_text)
    space = (builtin_dir() / "nb201.yaml").read_text().replace("name: nb201\n", "name: mine\n")
    (tmp_path / "mine.yaml").write_text(space.replace("official_index: nb201_index.csv.gz",
                                                      f"official_index: {tmp_path / 'passwd'}"))
    return spec, tmp_path / "mine.yaml"


@pytest.mark.parametrize("index_text,found", [
    (PASSWD, "{p}:1: columns 'root:x:0:0:root:/root:/bin/bash'"),
    ("index,arch_str\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\nzero,|x|\n",
     "{p}:3: index 'zero' and arch_str '|x|'"),
    ("", "{p}:1: an empty file"),
    (None, "{p}: no such file"),
])
def test_an_official_index_that_is_not_an_index_file(tmp_path, cache, lines, index_text, found):
    spec, space = _bad_index_space(tmp_path, index_text, lines)
    hint = ("; official_index names the file of the space's official cell indices, e.g. nb201_index.csv.gz"
            if index_text is not None and found.startswith("{p}:1:") else "")
    want = f"{space}: official_index: {INDEX_EXPECTED}, found {found.format(p=tmp_path / 'passwd')}{hint}"
    with pytest.raises(SpecError) as e:
        load_table(spec, cache=cache)
    assert str(e.value) == want
    assert not cache.exists()


def test_wrong_index_on_the_command_line(tmp_path, lines, monkeypatch, capsys):
    """The probe's case: `nasco validate` passed and `nasco search` gave KeyError: 'arch_str'."""
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path / "cache"))
    spec, space = _bad_index_space(tmp_path, PASSWD, lines)
    want = (f"nasco: error: {space}: official_index: {INDEX_EXPECTED}, found {tmp_path / 'passwd'}:1: "
            "columns 'root:x:0:0:root:/root:/bin/bash'; official_index names the file of the space's "
            "official cell indices, e.g. nb201_index.csv.gz\n")
    search = ["search", "--space", str(space), "--evaluator", "table", "--table", str(spec), "--budget", "2",
              "--out", str(tmp_path / "run"), "--quiet"]
    for argv in (["validate", str(space)], ["validate", str(spec)], search):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert (e.value.code, capsys.readouterr().err) == (2, want), argv


def test_validate_reads_a_tables_data(tmp_path, lines, monkeypatch, capsys):
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path / "cache"))
    bad = _with_field(lines[5], "c10_test_200ep", "1e400")
    spec = _table(tmp_path, "".join(lines[:5]) + bad + "".join(lines[6:21]))
    with pytest.raises(SystemExit) as e:
        main(["validate", str(spec)])
    assert (e.value.code, capsys.readouterr().err) == (
        2, f"nasco: error: {tmp_path / 't.csv.gz'}: row 5 (line 6): column 'c10_test_200ep' holds 1e400 "
           f"(read as inf), expected a number in [0, 100] (an accuracy in %); {RANGE_HINT}\n")
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress("".join(lines[:21]).encode()))
    assert main(["validate", str(spec)]) == 0
    assert capsys.readouterr().out == f"{spec}: ok (LookupTableSpec 't', 0 choices, 20 rows)\n"


def test_an_index_file_edited_in_place_rebuilds_the_cache(tmp_path, cache, lines):
    """The official index maps arch strings to rows, so its content is part of the cache key:
    a cache built before the index file was edited in place is not served."""
    spec = _table(tmp_path / "a", "".join(lines[:21]))
    first = load_table(spec, cache=cache)
    parsed = STATS["parsed"]
    index = tmp_path / "a" / "nb201_index.csv.gz"
    text = gzip.decompress(index.read_bytes()).decode().splitlines(keepends=True)
    # Swap the arch strings of cells 0 and 1: a different, still valid index.
    a0, a1 = text[1].split(",", 1)[1], text[2].split(",", 1)[1]
    text[1], text[2] = f"0,{a1}", f"1,{a0}"
    index.write_bytes(gzip.compress("".join(text).encode()))
    again = load_table(spec, cache=cache)
    assert STATS["parsed"] == parsed + 1
    assert again.cache_path != first.cache_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_table(spec, cache=cache).cache_path == again.cache_path   # served from now on
    assert STATS["parsed"] == parsed + 1
