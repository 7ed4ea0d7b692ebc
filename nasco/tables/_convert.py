"""Converters from the official NAS-Bench-201 family release files to one flat table per format.

Experimental API. ``convert(path, fmt, trust_pickle=..., max_rows=...)`` returns a ``pandas.DataFrame`` with
one row per architecture: ``index`` (the official NAS-Bench-201 index, 0..15624), ``arch_str`` (the official
string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``) and metric columns named like the files in shared/data/nb201.

Formats and where their layout was read (the official readers, not re-implemented here):

``nats``
    NATS-Bench topology ``NATS-tss-v1_0-3ffb9-simple``: a directory (or a ``.tar`` of it) holding
    ``meta.pickle.pbz2`` (``{'meta_archs': [arch_str, ...], ...}``) and one ``{index:06d}.pickle.pbz2`` per
    architecture, each a bz2-compressed pickle of ``{hp: ArchResults.state_dict()}`` with ``hp`` in ``'12'``,
    ``'200'`` (D-X-Y/NATS-Bench ``nats_bench/api_topology.py`` fast_mode and ``api_utils.py`` ``reload``,
    ``pickle_load``). The single-file ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (one bz2 pickle of
    ``{'meta_archs', 'arch2infos': {index: {hp: state}}, 'evaluated_indexes'}``) is accepted too.
``nb201-pth``
    NAS-Bench-201 ``NAS-Bench-201-v1_1-096897.pth`` (and v1_0): a ``torch.save`` of ``{'meta_archs',
    'arch2infos': {index: {'less': state, 'full': state}}, 'evaluated_indexes', 'total_archs'}``, where
    ``'less'`` is the 12-epoch and ``'full'`` the 200-epoch schedule (NAS-Bench-201
    ``nas_201_api/api_201.py``:
    ``hp2archres['12'] = ...(all_info['less'])``, ``hp2archres['200'] = ...(all_info['full'])``).
``hwnasbench-pickle``
    HW-NAS-Bench ``HW-NAS-Bench-v1_0.pickle``: a plain pickle of ``{'nasbench201': {dataset: {metric: values
    indexed by arch index, 'config': [{'arch_str': ..., ...}, ...]}}, 'fbnet': ...}`` with dataset in
    ``cifar10``, ``cifar100``, ``ImageNet16-120`` (GATECH-EIC/HW-NAS-Bench ``hw_nas_bench_api.py``
    ``query_by_index`` and ``get_net_config``). Latencies are in ms, energies in mJ (its README).

An ``ArchResults`` state dict is ``{'arch_index', 'arch_str', 'all_results': {(dataset, seed): ResultsCount
state}, 'dataset_seed': {dataset: [seed, ...]}}``; a ``ResultsCount`` state holds ``epochs``, ``eval_names``,
``eval_acc1es`` keyed ``'<set>@<epoch>'``, ``train_acc1es`` keyed by epoch, ``flop`` (M), ``params`` (MB) and
``latency`` (a list, seconds) (``api_utils.py`` ``ArchResults``/``ResultsCount``).

Column mapping for ``nats`` and ``nb201-pth`` (``<hp>`` is 12 or 200; every figure is the final epoch,
``epochs - 1``, averaged over the seeds, as ``get_more_info(..., is_random=False)`` does):

================================  =====================================================================
column                            source
================================  =====================================================================
``c10valid_valid_<hp>ep``         ``cifar10-valid`` / ``x-valid``
``c10valid_test_<hp>ep``          ``cifar10-valid`` / ``ori-test``
``c10_test_<hp>ep``               ``cifar10`` / ``ori-test`` (trained on train+valid)
``c100_valid_<hp>ep``             ``cifar100`` / ``x-valid``; ``in16_valid_<hp>ep`` likewise (ImageNet16-120)
``c100_test_<hp>ep``              ``cifar100`` / ``x-test``; ``in16_test_<hp>ep`` likewise
``c100_valtest_<hp>ep``           ``cifar100`` / ``ori-test`` (valid+test); ``in16_valtest_<hp>ep`` likewise
``<p>_train_<hp>ep``              ``train_acc1es`` at the last epoch, ``<p>`` in c10valid, c10, c100, in16
``n_seeds``                       number of seeds behind ``c10valid_valid_200ep``
``<p>_flops_m``, ``<p>_params_mb``  ``flop``, ``params`` (200-epoch entry, else 12-epoch)
``<p>_bench_latency_ms``          mean of the benchmark's own ``latency`` field x 1000 (absent when -1/None)
================================  =====================================================================

Column mapping for ``hwnasbench-pickle``: CIFAR-10 figures carry no prefix (as in
shared/data/nb201/nb201_device_latency.csv.gz), CIFAR-100 ``c100_``, ImageNet16-120 ``in16_``;
``<device>_latency`` -> ``<device>_ms``, ``<device>_energy`` -> ``<device>_mj``,
``eyeriss_arithmetic_intensity`` -> ``eyeriss_arith_intensity``; any other per-architecture numeric list keeps
its name. ``arch_str`` comes from ``config[index]['arch_str']``.

Memory. ``nats`` reads one architecture file at a time (tar members are read one by one, never extracted), so
the peak is one architecture plus the rows built so far. The ``.pth`` and the single-file NATS pickle are one
pickle each and cannot be read lazily: the whole dict is unpickled (``torch.load(mmap=True)`` when the file is
a zip-format torch file, which keeps any tensor storage on disk, but the dict of Python floats is in RAM), and
each architecture's entry is dropped from the dict as soon as its row is built, so memory falls as the
conversion runs. This avoids the official API's ``deepcopy`` and its per-trial objects (the ~28 GB figure) but
still needs roughly the unpickled size of the file. The HW-NAS-Bench pickle is small (tens of MB).

Every format here is a pickle, and unpickling runs code named in the file, so ``convert`` refuses unless
``trust_pickle=True`` (``--trust-pickle`` on the command line). A problem in the file raises ``ConvertError``
with one line naming the file and what is wrong; no partial table is ever returned.
"""
from __future__ import annotations

import bz2
import difflib
import os
import pickle
import re
import tarfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMATS", "ConvertError", "convert", "describe"]

FORMATS: tuple[str, ...] = ("nats", "nb201-pth", "hwnasbench-pickle")

_DESCRIPTIONS = {
    "nats": "NATS-Bench topology archive NATS-tss-v1_0-3ffb9-simple (directory or .tar of "
            "{index:06d}.pickle.pbz2 + meta.pickle.pbz2; the single-file .pickle.pbz2 also works): "
            "accuracies at 12 and 200 epochs on CIFAR-10/100 and ImageNet16-120, FLOPs, params",
    "nb201-pth": "NAS-Bench-201 NAS-Bench-201-v1_1-096897.pth (torch.save of meta_archs/arch2infos, "
                 "'less' = 12 epochs, 'full' = 200 epochs): accuracies, FLOPs, params",
    "hwnasbench-pickle": "HW-NAS-Bench HW-NAS-Bench-v1_0.pickle ('nasbench201' part): latency (ms) and "
                         "energy (mJ) on EdgeGPU, Raspberry Pi 4, Edge TPU, Pixel 3, Eyeriss and FPGA",
}

# The five NB201 ops (NATS-Bench api_topology.py str2matrix default search space).
_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_OP = "(?:" + "|".join(_OPS) + ")"
_ARCH_RE = re.compile(rf"^\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|$")

_PREFIX = {"cifar10-valid": "c10valid", "cifar10": "c10", "cifar100": "c100", "ImageNet16-120": "in16"}
# What each evaluation set means per dataset (api_utils.py ArchResults.get_metrics docstring).
_SET_NAME = {
    "cifar10-valid": {"x-valid": "valid", "ori-test": "test"},
    "cifar10": {"ori-test": "test"},
    "cifar100": {"x-valid": "valid", "x-test": "test", "ori-test": "valtest"},
    "ImageNet16-120": {"x-valid": "valid", "x-test": "test", "ori-test": "valtest"},
}
_NB201_HP = {"less": "12", "full": "200"}
# The per-architecture metrics HWNASBenchAPI.query_by_index reads for 'nasbench201' (hw_nas_bench_api.py).
_HW_METRICS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency", "pixel3_latency",
               "eyeriss_latency", "eyeriss_energy", "eyeriss_arithmetic_intensity", "fpga_latency",
               "fpga_energy")
_HW_PREFIX = {"cifar10": "", "cifar100": "c100_", "ImageNet16-120": "in16_"}
_PICKLE_EXT = ".pickle.pbz2"


class ConvertError(ValueError):
    """A benchmark file cannot be converted; the message is one line naming the file and the problem."""


def describe(fmt: str) -> str:
    """One line on what ``fmt`` reads and which columns it yields."""
    _check_fmt(fmt)
    return f"{fmt}: {_DESCRIPTIONS[fmt]}"


def convert(path: str | os.PathLike[str], fmt: str, *, trust_pickle: bool = False,
            max_rows: int | None = None) -> pd.DataFrame:
    """Convert an official benchmark release file at ``path`` to a table (see the module docstring).

    ``max_rows`` stops after that many architectures (in index order). Raises ``ConvertError``.
    """
    _check_fmt(fmt)
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ConvertError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    p = Path(path)
    if not p.exists():
        raise ConvertError(f"{p}: no such file or directory")
    if not trust_pickle:
        raise ConvertError(
            f"{p}: the {fmt} format is stored as Python pickles and unpickling runs code named in the file; "
            f"pass --trust-pickle (trust_pickle=True) only for a file from a source you trust")
    reader = {"nats": _iter_nats, "nb201-pth": _iter_pth, "hwnasbench-pickle": _iter_hw}[fmt]
    rows: list[dict[str, Any]] = []
    try:
        for row in reader(p):
            rows.append(row)
            if max_rows is not None and len(rows) >= max_rows:
                break
    except ConvertError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        # A value of an unexpected type deep in the structure: still the user's file, not our bug.
        raise ConvertError(f"{p}: not in the {fmt} layout ({type(exc).__name__}: {_one_line(exc)})") from None
    if not rows:
        raise ConvertError(f"{p}: holds no architectures")
    return _frame(rows)


# ---------------------------------------------------------------------------------------------- helpers


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        close = difflib.get_close_matches(str(fmt), FORMATS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConvertError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}{hint}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def _reading(where: str, what: str) -> Iterator[None]:
    """Turn low-level read errors (truncation, bad compression, bad pickle) into one-line ConvertErrors."""
    try:
        yield
    except ConvertError:
        raise
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ConvertError(f"{where}: cannot unpickle {what}; it names code that is not installed "
                           f"({_one_line(exc)})") from None
    except EOFError as exc:
        raise ConvertError(f"{where}: {what} is truncated ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - any failure while decoding the file is the file's fault
        raise ConvertError(f"{where}: {what} is corrupt or not in the expected format "
                           f"({type(exc).__name__}: {_one_line(exc)})") from None


def _sniff(p: Path) -> str:
    """A short description of what ``p`` looks like, for wrong-format messages."""
    if p.is_dir():
        return "a directory"
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return "a zip file (torch.save)"
    if head.startswith(b"BZh"):
        return "a bz2 file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if head[:1] == b"\x80":
        return "a pickle"
    try:
        if tarfile.is_tarfile(p):
            return "a tar archive"
    except OSError:
        pass
    return "an unrecognised file"


def _wrong(p: Path, expected: str, found: str) -> ConvertError:
    hint = {"a zip file (torch.save)": " (use fmt 'nb201-pth')", "a tar archive": " (use fmt 'nats')",
            "a directory": " (use fmt 'nats')"}.get(found, "")
    return ConvertError(f"{p}: not {expected}; found {found}{hint}")


def _need(mapping: Any, key: Any, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ConvertError(f"{where}: expected a dict, found {type(mapping).__name__}")
    if key not in mapping:
        keys = ", ".join(repr(k) for k in list(mapping)[:8])
        raise ConvertError(f"{where}: missing key {key!r} (has {keys})")
    return mapping[key]


def _number(value: Any, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConvertError(f"{where}: expected a number, found {type(value).__name__} "
                           f"{value!r:.40}") from None
    return out


def _arch(arch: Any, where: str) -> str:
    if not isinstance(arch, str) or not _ARCH_RE.match(arch):
        raise ConvertError(f"{where}: bad arch string {arch!r:.120}; expected "
                           f"|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op in {', '.join(_OPS)}")
    return arch


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols: dict[str, None] = {"index": None, "arch_str": None}
    for row in rows:
        cols.update(dict.fromkeys(row))
    lead = ["index", "arch_str"] + (["n_seeds"] if "n_seeds" in cols else [])
    order = lead + sorted(c for c in cols if c not in lead)
    df = pd.DataFrame(rows, columns=order)
    df["index"] = df["index"].astype("int64")
    if "n_seeds" in df and not df["n_seeds"].isna().any():
        df["n_seeds"] = df["n_seeds"].astype("int64")
    return df


# ------------------------------------------------------------------------- NATS / NB201 ArchResults


def _hp_name(key: Any, where: str) -> str:
    key = str(key)
    if key in _NB201_HP:
        return _NB201_HP[key]
    if key.isdigit():
        return str(int(key))
    raise ConvertError(f"{where}: unknown training-schedule key {key!r}; "
                       f"expected '12'/'200' or 'less'/'full'")


def _arch_row(index: int, arch_str: str, hp2state: Any, where: str) -> dict[str, Any]:
    """One table row from ``{hp: ArchResults.state_dict()}`` (api_utils.py ArchResults/ResultsCount)."""
    if not isinstance(hp2state, Mapping) or not hp2state:
        raise ConvertError(f"{where}: expected a non-empty dict of training schedules, "
                           f"found {type(hp2state).__name__}")
    row: dict[str, Any] = {"index": index, "arch_str": arch_str}
    costs: dict[str, list[Mapping[str, Any]]] = {}
    for hp_key, state in hp2state.items():
        hp = _hp_name(hp_key, where)
        at = f"{where} schedule {hp_key!r}"
        if not isinstance(state, Mapping):
            raise ConvertError(f"{at}: expected an ArchResults state dict, found {type(state).__name__}")
        got = state.get("arch_str", arch_str)
        if got != arch_str:
            raise ConvertError(f"{at}: arch_str {got!r} differs from the index's {arch_str!r}")
        if "arch_index" in state and int(_number(state["arch_index"], at)) != index:
            raise ConvertError(f"{at}: arch_index {state['arch_index']} differs from the file's "
                               f"index {index}")
        results = _need(state, "all_results", at)
        seeds_by_ds = _need(state, "dataset_seed", at)
        if not isinstance(seeds_by_ds, Mapping) or not isinstance(results, Mapping):
            raise ConvertError(f"{at}: 'dataset_seed' and 'all_results' must be dicts")
        for dataset, seeds in seeds_by_ds.items():
            if dataset not in _PREFIX:
                raise ConvertError(f"{at}: unknown dataset {dataset!r}; known: {', '.join(_PREFIX)}")
            prefix = _PREFIX[dataset]
            sums: dict[str, list[float]] = {}
            for seed in seeds:
                rat = f"{at} {dataset} seed {seed}"
                res = _need(results, (dataset, seed), f"{at} all_results")
                epochs = int(_number(_need(res, "epochs", rat), rat + " epochs"))
                last = epochs - 1
                accs = _need(res, "eval_acc1es", rat)
                for name in _need(res, "eval_names", rat):
                    if name not in _SET_NAME[dataset]:
                        raise ConvertError(f"{rat}: unknown evaluation set {name!r} for {dataset}; "
                                           f"known: {', '.join(_SET_NAME[dataset])}")
                    key = f"{name}@{last}"
                    col = f"{prefix}_{_SET_NAME[dataset][name]}_{hp}ep"
                    sums.setdefault(col, []).append(_number(_need(accs, key, rat + " eval_acc1es"), rat))
                train = res.get("train_acc1es") if isinstance(res, Mapping) else None
                if train:
                    col = f"{prefix}_train_{hp}ep"
                    sums.setdefault(col, []).append(_number(_need(train, last, rat + " train_acc1es"), rat))
                costs.setdefault(f"{prefix}|{hp}", []).append(res)
            for col, values in sums.items():
                row[col] = sum(values) / len(values)
            if hp == "200" and dataset == "cifar10-valid":
                row["n_seeds"] = len(seeds)
    for prefix in _PREFIX.values():
        picked = costs.get(f"{prefix}|200") or costs.get(f"{prefix}|12")
        if picked:
            row.update(_cost_columns(prefix, picked, where))
    return row


def _cost_columns(prefix: str, results: Sequence[Mapping[str, Any]], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for field, col in (("flop", "flops_m"), ("params", "params_mb")):
        values = [_number(r[field], f"{where} {field}") for r in results if r.get(field) is not None]
        if values:
            out[f"{prefix}_{col}"] = sum(values) / len(values)
    lat = []
    for r in results:
        seconds = r.get("latency")
        if isinstance(seconds, Sequence) and len(seconds) > 0:
            mean = sum(_number(s, f"{where} latency") for s in seconds) / len(seconds)
            if mean > 0:  # -1 / None mean "not measured" (ResultsCount.get_latency)
                lat.append(mean)
    if lat:
        out[f"{prefix}_bench_latency_ms"] = 1000.0 * sum(lat) / len(lat)
    return out


def _iter_dict(obj: Any, where: str) -> Iterator[dict[str, Any]]:
    """Rows from a whole-benchmark dict (.pth or single-file NATS pickle), dropping each entry once used."""
    if not isinstance(obj, dict):
        raise ConvertError(f"{where}: expected a dict with 'meta_archs' and 'arch2infos', "
                           f"found {type(obj).__name__}")
    metas = _need(obj, "meta_archs", where)
    infos = _need(obj, "arch2infos", where)
    if not isinstance(metas, Sequence) or not isinstance(infos, dict):
        raise ConvertError(f"{where}: 'meta_archs' must be a list and 'arch2infos' a dict")
    for index in sorted(infos):
        at = f"{where} arch {index}"
        if not isinstance(index, int) or not 0 <= index < len(metas):
            raise ConvertError(f"{at}: index outside meta_archs (0..{len(metas) - 1})")
        arch_str = _arch(metas[index], f"{where} meta_archs[{index}]")
        hp2state = infos.pop(index)  # drop as we go: memory falls while converting
        yield _arch_row(index, arch_str, hp2state, at)
        del hp2state


# ---------------------------------------------------------------------------------------------- nats


def _load_bz2_pickle(data: bytes, where: str) -> Any:
    with _reading(where, "this bz2 pickle"):
        unzip = bz2.BZ2Decompressor()
        raw = unzip.decompress(data)
        if not unzip.eof:
            raise ConvertError(f"{where}: this bz2 pickle is truncated (the compressed stream ends early)")
        return pickle.loads(raw)


def _iter_nats(p: Path) -> Iterator[dict[str, Any]]:
    found = _sniff(p)
    if found == "a directory":
        names = {n for n in os.listdir(p) if n.endswith(_PICKLE_EXT)}

        def read(name: str) -> bytes:
            with _reading(str(p / name), "this file"):
                return (p / name).read_bytes()
        yield from _iter_nats_files(p, names, read, "/")
    elif found == "a tar archive":
        with _reading(str(p), "this tar archive"):
            tar = tarfile.open(p, "r:*")
        with tar:
            with _reading(str(p), "this tar archive"):
                members = {os.path.basename(m.name): m for m in tar.getmembers()
                           if m.isfile() and m.name.endswith(_PICKLE_EXT)}

            def read_member(name: str) -> bytes:
                with _reading(f"{p}:{members[name].name}", "this archive member"):
                    fh = tar.extractfile(members[name])
                    if fh is None:
                        raise ConvertError(f"{p}:{members[name].name}: not a regular file")
                    return fh.read()
            yield from _iter_nats_files(p, set(members), read_member, ":")
    elif found == "a bz2 file":
        # The single-file release: one bz2 pickle of the whole benchmark (not lazily readable).
        with _reading(str(p), "this bz2 pickle"):
            with bz2.open(p, "rb") as fh:
                obj = pickle.load(fh)
        yield from _iter_dict(obj, str(p))
    else:
        raise _wrong(p, "a NATS-Bench topology archive (a directory or .tar holding meta.pickle.pbz2 and "
                        "{index:06d}.pickle.pbz2, or a .pickle.pbz2)", found)


def _iter_nats_files(p: Path, names: set[str], read: Any, sep: str) -> Iterator[dict[str, Any]]:
    """Rows from the per-architecture files; ``sep`` joins the archive and member names in messages."""
    meta_name = "meta" + _PICKLE_EXT
    if meta_name not in names:
        raise ConvertError(f"{p}: not a NATS-Bench topology archive; missing {meta_name} "
                           f"({len(names)} *{_PICKLE_EXT} files found)")
    meta = _load_bz2_pickle(read(meta_name), f"{p}{sep}{meta_name}")
    metas = _need(meta, "meta_archs", f"{p}{sep}{meta_name}")
    if not isinstance(metas, Sequence) or isinstance(metas, str):
        raise ConvertError(f"{p}{sep}{meta_name}: 'meta_archs' must be a list of arch strings")
    for index in range(len(metas)):
        arch_str = _arch(metas[index], f"{p}{sep}{meta_name} meta_archs[{index}]")
        name = next((n for n in (f"{index:06d}{_PICKLE_EXT}", f"{index}{_PICKLE_EXT}") if n in names), None)
        if name is None:
            raise ConvertError(f"{p}: missing {index:06d}{_PICKLE_EXT} (meta lists {len(metas)} "
                               f"architectures); the archive is incomplete")
        where = f"{p}{sep}{name}"
        hp2state = _load_bz2_pickle(read(name), where)
        yield _arch_row(index, arch_str, hp2state, where)
        del hp2state


# ----------------------------------------------------------------------------------------- nb201-pth


def _iter_pth(p: Path) -> Iterator[dict[str, Any]]:
    found = _sniff(p)
    if found not in ("a zip file (torch.save)", "a pickle"):
        raise _wrong(p, "a NAS-Bench-201 .pth (torch.save file)", found)
    import torch

    with _reading(str(p), "this .pth"):
        # mmap keeps tensor storages on disk; only the zip format supports it (legacy files load in full).
        obj = torch.load(p, map_location="cpu", weights_only=False, mmap=found.startswith("a zip"))
    yield from _iter_dict(obj, str(p))


# --------------------------------------------------------------------------------- hwnasbench-pickle


def _iter_hw(p: Path) -> Iterator[dict[str, Any]]:
    found = _sniff(p)
    if found != "a pickle":
        raise _wrong(p, "an HW-NAS-Bench pickle", found)
    with _reading(str(p), "this pickle"):
        with open(p, "rb") as fh:
            obj = pickle.load(fh)
    space = _need(obj, "nasbench201", str(p))
    if not isinstance(space, Mapping):
        raise ConvertError(f"{p}: 'nasbench201' must be a dict of datasets")
    unknown = [d for d in space if d not in _HW_PREFIX]
    if unknown:
        raise ConvertError(f"{p}: unknown dataset {unknown[0]!r} under 'nasbench201'; "
                           f"known: {', '.join(_HW_PREFIX)}")
    if "cifar10" not in space:
        raise ConvertError(f"{p}: missing key 'cifar10' under 'nasbench201'")
    columns: list[tuple[str, Sequence[Any]]] = []
    configs: dict[str, Sequence[Any]] = {}
    n = None
    for dataset, metrics in space.items():
        where = f"{p} nasbench201/{dataset}"
        cfg = _need(metrics, "config", where)
        for metric in _HW_METRICS:  # the official API reads all of them for every dataset
            _need(metrics, metric, where)
        if n is None:
            n = len(cfg)
        for name, values in list(metrics.items()):
            listlike = hasattr(values, "__len__") and not isinstance(values, (str, bytes, Mapping))
            if not listlike and name not in _HW_METRICS and name != "config":
                warnings.warn(f"{where}/{name}: not a per-architecture list ({type(values).__name__}); "
                              f"left out of the table", stacklevel=3)
                continue
            if not listlike:
                raise ConvertError(f"{where}/{name}: expected a list indexed by architecture, "
                                   f"found {type(values).__name__}")
            if len(values) != n:
                raise ConvertError(f"{where}/{name}: has {len(values)} entries, expected {n} "
                                   f"(one per architecture)")
            if name == "config":
                configs[dataset] = values
            else:
                columns.append((_HW_PREFIX[dataset] + _hw_name(name), values))
    assert n is not None
    for index in range(n):
        arch_str = None
        for dataset, cfg in configs.items():
            got = _arch(_need(cfg[index], "arch_str", f"{p} nasbench201/{dataset}/config[{index}]"),
                        f"{p} nasbench201/{dataset}/config[{index}]")
            if arch_str is not None and got != arch_str:
                raise ConvertError(f"{p} nasbench201/{dataset}/config[{index}]: arch_str {got!r} "
                                   f"differs from cifar10's {arch_str!r}")
            arch_str = got
        row: dict[str, Any] = {"index": index, "arch_str": arch_str}
        for col, values in columns:
            row[col] = _number(values[index], f"{p} {col}[{index}]")
        yield row


def _hw_name(metric: str) -> str:
    if metric == "eyeriss_arithmetic_intensity":
        return "eyeriss_arith_intensity"
    if metric.endswith("_latency"):
        return metric[: -len("_latency")] + "_ms"
    if metric.endswith("_energy"):
        return metric[: -len("_energy")] + "_mj"
    return metric

