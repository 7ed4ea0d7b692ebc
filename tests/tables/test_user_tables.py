"""User tables: a tiny CSV + lookup_table file round trip, and every faulty file gives one
line naming the file and the fault, with nothing cached."""
from __future__ import annotations

import gzip
import json
import shutil

import pytest

from nasco.cli import main
from nasco.dsl import builtin_dir
from nasco.tables import STATS, TableError, load_table

ARCH = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # 1
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"]  # 0

DSL = """schema: 1
kind: lookup_table
name: mine
space: {space}
data: {data}
key: {{arch_str: arch}}
metrics:
  acc: {{metric: accuracy, dataset: c10, split: valid, fidelity: 5, unit: '%', direction: max}}
  test: {{metric: accuracy, dataset: c10, split: test, fidelity: 5, unit: '%', direction: max}}
  lat: {{metric: my_latency, unit: ms, direction: min}}
"""


def _write(tmp_path, csv: str, name: str = "t.csv", raw: bytes | None = None):
    shutil.copy(builtin_dir() / "nb201.yaml", tmp_path / "nb201.yaml")
    shutil.copy(builtin_dir() / "nb201_index.csv.gz", tmp_path / "nb201_index.csv.gz")
    (tmp_path / name).write_bytes(raw if raw is not None else csv.encode())
    f = tmp_path / "mine.yaml"
    f.write_text(DSL.format(space="nb201.yaml", data=name))
    return f


GOOD = f"arch,acc,test,lat\n{ARCH[0]},80.5,81.25,3.5\n{ARCH[1]},60,61,1.25\n"


def test_round_trip(tmp_path):
    f = _write(tmp_path, GOOD)
    t = load_table(f, cache=tmp_path / "cache")
    assert list(t.index) == [0, 1]
    assert t.query(1, "accuracy", split="test") == 81.25
    assert t.query(ARCH[1], "my_latency") == 1.25
    again = load_table(f, cache=tmp_path / "cache")
    assert again.cache_path == t.cache_path and again.query(0, "acc") == 60


@pytest.mark.parametrize("csv,message", [
    (GOOD + ARCH[0] + ",1,2,3\n", "t.csv: duplicate key: index 1 appears in rows 1 and 3"),
    (GOOD + "|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|,1,2,3\n",
     "t.csv: row 3: arch_str '|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|' is not a cell of space 'nb201'"),
    (GOOD + ",1,2,3\n", "t.csv: row 3: key column 'arch' is empty (NaN) in 1 row"),
    (GOOD.replace("3.5", "fast"), "t.csv: row 1: column 'lat' holds 'fast', not a number"),
    ("arch,acc,test,lat\n", "t.csv: no data rows"),
])
def test_mis_schemad_tables(tmp_path, csv, message):
    f = _write(tmp_path, csv)
    with pytest.raises(TableError) as e:
        load_table(f, cache=tmp_path / "cache")
    assert str(e.value) == f"{tmp_path / 't.csv'}: {message[len('t.csv: '):]}"
    assert "\n" not in str(e.value)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("header,key", [("test,lat,x", "key.arch_str: column 'arch'"),
                                        ("arch,acc,test", "metrics.lat: column 'lat'")])
def test_a_declared_column_the_data_lacks_names_the_dsl_key_before_parsing(tmp_path, monkeypatch, header, key):
    """The DSL file and its key are at fault, and the rows are never parsed (a large table would
    take seconds to read only to be refused)."""
    f = _write(tmp_path, header + "\n" + "this row is never read\n")
    import nasco.tables._table as table_module
    monkeypatch.setattr(table_module, "read_frame", lambda *a: pytest.fail("the data rows were parsed"))
    with pytest.raises(TableError) as e:
        load_table(f, cache=tmp_path / "cache")
    assert str(e.value) == (f"{f}: {key} is not in the data file {tmp_path / 't.csv'}; its columns: "
                            f"{header.replace(',', ', ')}")


def test_a_data_file_of_unknown_format_names_the_dsl_file(tmp_path):
    f = _write(tmp_path, "root:x:0:0:root:/root:/bin/bash\n", name="passwd")
    with pytest.raises(TableError) as e:
        load_table(f, cache=tmp_path / "cache")
    assert str(e.value) == (f"{f}: data 'passwd': not a table file, the format of 'passwd' is unknown "
                            f"({tmp_path / 'passwd'}); use .csv, .csv.gz, .tsv or .parquet")


@pytest.mark.parametrize("space,found", [("systolic_template", "kind 'accelerator'"),
                                         ("nb_201", "no such built-in")])
def test_a_space_that_is_not_an_architecture_space_names_the_dsl_file(tmp_path, space, found):
    f = _write(tmp_path, GOOD)
    f.write_text(DSL.format(space=space, data="t.csv"))
    with pytest.raises(TableError) as e:
        load_table(f, cache=tmp_path / "cache")
    assert str(e.value).startswith(f"{f}: space '{space}': ")
    assert found in str(e.value)


def test_a_space_without_official_index_fails_before_parsing(tmp_path, monkeypatch):
    f = _write(tmp_path, GOOD)
    f.write_text(DSL.format(space="darts_snn", data="t.csv"))
    import nasco.tables._table as table_module
    monkeypatch.setattr(table_module, "read_frame", lambda *a: pytest.fail("the data rows were parsed"))
    with pytest.raises(TableError) as e:
        load_table(f, cache=tmp_path / "cache")
    assert str(e.value) == (f"{f}: space: 'darts_snn' has no official index; tables key their rows by it; "
                            "use a space with official_index, such as nb201")


def test_truncated_gzip_and_corrupt_parquet(tmp_path):
    data = gzip.compress(GOOD.encode() * 200)
    f = _write(tmp_path, "", name="t.csv.gz", raw=data[: len(data) // 2])
    with pytest.raises(TableError, match=r"t\.csv\.gz: cannot read the data file .*corrupt, truncated"):
        load_table(f, cache=tmp_path / "cache")
    f = _write(tmp_path, "", name="t.parquet", raw=b"PAR1 not really parquet")
    with pytest.raises(TableError, match=r"t\.parquet: cannot read the data file"):
        load_table(f, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    f = _write(tmp_path, GOOD)
    t = load_table(f, cache=tmp_path / "cache")
    t.cache_path.write_bytes(b"garbage")
    parsed = STATS["parsed"]
    with pytest.warns(RuntimeWarning, match="unreadable cache"):
        again = load_table(f, cache=tmp_path / "cache")
    assert STATS["parsed"] == parsed + 1 and again.query(1, "acc") == 80.5


def test_edited_source_is_reparsed(tmp_path):
    f = _write(tmp_path, GOOD)
    load_table(f, cache=tmp_path / "cache")
    (tmp_path / "t.csv").write_text(GOOD.replace("80.5", "90.5"))
    assert load_table(f, cache=tmp_path / "cache").query(1, "acc") == 90.5


def test_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path / "cache"))
    f = _write(tmp_path, GOOD)
    assert main(["table", "import", str(f)]) == 0
    assert main(["table", "query", str(f), "--metric", "accuracy", "--split", "test", "--index", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["values"] == [81.25] and out["column"] == "test"
    assert main(["table", "info", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    with pytest.raises(SystemExit) as e:
        main(["table", "query", str(f), "--metric", "accuracy", "--index", "1"])
    assert e.value.code == 2 and "matches 2 columns" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text(GOOD + ARCH[0] + ",1,2,3\n")
    with pytest.raises(SystemExit) as e:
        main(["table", "import", str(f)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "duplicate key" in err
    with pytest.raises(SystemExit) as e:
        main(["table", "--help"])
    assert e.value.code == 0
