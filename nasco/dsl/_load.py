"""Finding and loading DSL files: built-ins by name, user files by path, and the member files
that accelerator sets and multi-accelerators name."""
from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nasco.core import Registry
from nasco.dsl._build import build
from nasco.dsl._choice import is_choice_mapping, parse_choice
from nasco.dsl._errors import SpecError, clip, close_matches, shown
from nasco.dsl._hwsets import TEMPLATE_KEY, AcceleratorSet, MultiAccelerator
from nasco.dsl._lookup import LookupTableSpec
from nasco.dsl._specs import SCHEMA_VERSION, AcceleratorTemplate, ArchSpace, EnergyTable
from nasco.dsl._yaml import VALID_YAML, _SafeLoader, load_value, load_yaml_text

__all__ = ["HW_KINDS", "KINDS", "builtin_dir", "builtin_names", "find_file", "load_file", "load_spec",
           "load_energy_table", "parse_overrides"]

# The ``kind:`` of a file -> the spec class it is built into.
KINDS: Registry[type] = Registry("kind")
for _kind, _cls in (("arch_space", ArchSpace), ("accelerator", AcceleratorTemplate),
                    ("accelerator_set", AcceleratorSet), ("multi_accelerator", MultiAccelerator),
                    ("energy_table", EnergyTable), ("lookup_table", LookupTableSpec)):
    KINDS.register(_kind, _cls)
del _kind, _cls
# What --hw takes: any of these kinds.
HW_KINDS = ("accelerator", "accelerator_set", "multi_accelerator")


def builtin_dir() -> Path:
    """The folder of the built-in DSL files (installed as ``nasco.search_spaces``)."""
    spec = importlib.util.find_spec("nasco.search_spaces")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - broken install
        raise RuntimeError("nasco.search_spaces is not installed; reinstall nasco")
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_names(kind: str | None = None) -> list[str]:
    """Names of the built-in files, optionally of one kind, sorted."""
    names = []
    for path in sorted(builtin_dir().glob("*.yaml")):
        if kind is None:
            names.append(path.stem)
            continue
        try:
            data = yaml.load(path.read_text(), Loader=_SafeLoader)  # safe; libyaml when present
        except yaml.YAMLError:  # pragma: no cover - built-ins are tested
            continue
        if isinstance(data, dict) and data.get("kind") == kind:
            names.append(path.stem)
    return names


def find_file(name_or_path: str | Path, *, relative_to: Path | None = None, what: str = "space",
              kind: str | None = None) -> Path:
    """A built-in name (``darts_snn``) or a path to a YAML file -> the file's path.

    ``kind`` only narrows the built-ins that an error message lists and suggests.
    """
    text = str(name_or_path)
    candidates = [Path(text)]
    if relative_to is not None:
        candidates.append(relative_to / text)
    for p in candidates:
        if p.is_file():
            return p
    looks_like_path = "/" in text or text.endswith((".yaml", ".yml"))
    if not looks_like_path:
        p = builtin_dir() / f"{text}.yaml"
        if p.is_file():
            return p
    known = builtin_names(kind)
    raise SpecError(
        f"a built-in {what} ({', '.join(known)}) or the path of a .yaml file",
        "no such file" if looks_like_path else "no such built-in",
        file=text,
        hint=close_matches(Path(text).stem, known) or "run 'nasco spaces' to list the built-ins",
    )


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[tuple[str, ...], Any]:
    """``['macro.cells=4', 'pe_array.rows={choice: [8, 16]}']`` -> {path: value}."""
    out: dict[tuple[str, ...], Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError("--set KEY.PATH=VALUE", shown(item), hint="e.g. --set macro.cells=4")
        path = tuple(key.strip().split("."))
        try:
            value = load_value(raw, "--set")
        except SpecError as err:
            if err.expected != VALID_YAML:  # e.g. aliases that expand past the bound
                raise SpecError(err.expected, err.found, file=err.file, path=path + err.path,
                                hint=err.hint) from None
            raise SpecError("a YAML value after '='", shown(raw), path=path,
                            hint="quote strings with spaces, e.g. --set 'specs.latency.max=2 ms'") from None
        out[path] = value
    return out


def _apply_overrides(data: dict, overrides: dict[tuple[str, ...], Any]) -> None:
    for path, value in overrides.items():
        node = data
        for i, key in enumerate(path[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                raise SpecError("a mapping to set a key inside", nxt, path=path[: i + 1])
            node = nxt
        node[path[-1]] = value


# ------------------------------------------------------------------ members of sets
# Accelerator sets and multi-accelerators name member files; loading one loads those too.
_TEMPLATE_FIELDS = tuple(f.name for f in dataclasses.fields(AcceleratorTemplate) if f.init)
_LINKING: list[str] = []  # files being linked, outermost first (a set may not contain itself)


def _split(overrides: Mapping[tuple[str, ...], Any] | None, own: tuple[str, ...]):
    """``--set`` overrides -> (those on the set's own fields, the rest for its members)."""
    mine: dict = {}
    rest: dict = {}
    for path, value in (overrides or {}).items():
        (mine if path and path[0] in own else rest)[path] = value
    return mine, rest


def _not_a_spec(entry: str, err: SpecError) -> str:
    """What a referenced file that is no DSL file at all was found to be (its whole-file error)."""
    where = f"{err.file}:{err.line}" if err.line is not None else str(err.file)
    return f"'{entry}' ({where}: not a DSL file: {err.expected}, found {clip(str(err.found), 60)})"


def _load_member(entry: str, base: Path, i: int, overrides: dict | None) -> Any:
    try:
        path = find_file(entry, relative_to=base, what="accelerator template or set", kind="accelerator")
    except SpecError as err:
        raise SpecError(err.expected, f"'{entry}' ({err.found})", path=("members", i),
                        hint=err.hint) from None
    resolved = str(path.resolve())
    if resolved in _LINKING:
        raise SpecError("members that do not contain this set", f"'{entry}' (a set that lists it back)",
                        path=("members", i), hint="remove the cycle")
    try:
        spec = load_file(path, overrides=overrides or None)
    except SpecError as err:
        if err.path:
            raise  # a fault inside a member file names that file and key
        raise SpecError("an accelerator template or set file", _not_a_spec(entry, err), path=("members", i),
                        hint="list files of kind 'accelerator' or 'accelerator_set'") from None
    if not isinstance(spec, (AcceleratorTemplate, AcceleratorSet)) or isinstance(spec, MultiAccelerator):
        kind = getattr(spec, "kind", type(spec).__name__)
        raise SpecError("an accelerator template or an accelerator set",
                        f"'{entry}' (a file of kind '{kind}')", path=("members", i),
                        hint="list files of kind 'accelerator' or 'accelerator_set'")
    return spec


def _member_overrides(rest: dict, name_of: Mapping[str, str]) -> tuple[dict, dict, Any]:
    """Sort the overrides for members: (per template name, for every member, template pick)."""
    per: dict[str, dict] = {}
    every: dict = {}
    pick: Any = None
    names = list(name_of)
    for path, value in rest.items():
        head = path[0]
        if head == TEMPLATE_KEY and len(path) == 1:
            pick = value
        elif head in name_of and len(path) > 1:
            per.setdefault(head, {})[path[1:]] = value
        elif head in _TEMPLATE_FIELDS and head not in ("schema", "kind", "name"):
            every[path] = value
        else:
            raise SpecError(
                f"a key of the file, '{TEMPLATE_KEY}', a member name ({', '.join(names)}) or a template "
                "field",
                f"'{head}'", path=path,
                hint=close_matches(head, [TEMPLATE_KEY, *names, *_TEMPLATE_FIELDS])
                or f"e.g. {TEMPLATE_KEY}={names[0]}, {names[0]}.clock_mhz=400, clock_mhz=400 (every member)")
    return per, every, pick


def _link_members(spec: Any, file: Path, rest: dict) -> tuple[dict[str, AcceleratorTemplate], Any]:
    """Load the members of a set or multi-accelerator (with their overrides), flattened;
    and the value of a ``template`` override (None if there is none)."""
    base = file.parent
    _LINKING.append(str(file.resolve()))
    try:
        first = [_load_member(e, base, i, None) for i, e in enumerate(spec.members)]
        # Names first, so that overrides can address members by their template names.
        name_of: dict[str, tuple[int, Any]] = {}
        for i, m in enumerate(first):
            inner = m.templates.values() if isinstance(m, AcceleratorSet) else (m,)
            for t in inner:
                if t.name in name_of:
                    raise SpecError("members with distinct template names",
                                    f"'{t.name}' again (also from members[{name_of[t.name][0]}])",
                                    path=("members", i), hint="rename one template or drop the repeat")
                name_of[t.name] = (i, m)
        per, every, pick = _member_overrides(rest, name_of)
        out: dict[str, AcceleratorTemplate] = {}
        for i, (entry, m) in enumerate(zip(spec.members, first)):
            if isinstance(m, AcceleratorSet):
                inner_names = list(m.templates)
                ov = dict(every)
                for n in inner_names:
                    ov.update({(n, *p): v for p, v in per.get(n, {}).items()})
                if ov:
                    m = _load_member(entry, base, i, ov)
                out.update((n, m.member(n)) for n in m.templates)
            else:
                ov = {**every, **per.get(m.name, {})}
                if ov:
                    m = _load_member(entry, base, i, ov)
                out[m.name] = m
    finally:
        _LINKING.pop()
    return out, pick


def _pick_members(templates: dict[str, AcceleratorTemplate], pick: Any) -> dict[str, AcceleratorTemplate]:
    names = list(templates)
    path = (TEMPLATE_KEY,)
    if is_choice_mapping(pick):
        wanted = parse_choice(pick, path).options
    elif isinstance(pick, str):
        wanted = (pick,)
    else:
        raise SpecError("a member name or {choice: [names]}", shown(pick), path=path,
                        hint="members: " + ", ".join(names))
    for w in wanted:
        if w not in templates:
            raise SpecError("a member of the set (" + ", ".join(names) + ")", shown(w), path=path,
                            hint=close_matches(w, names))
    return {w: templates[w] for w in wanted}


def _link(spec: AcceleratorSet, file: Path, rest: dict) -> AcceleratorSet:
    """``spec`` (built from ``file``) with its members loaded, the ``--set`` overrides in
    ``rest`` applied to them, and a ``template`` override's pick kept."""
    templates, pick = _link_members(spec, file, rest)
    if spec.default is not None and spec.default not in templates:
        raise SpecError("a member template name (" + ", ".join(templates) + ")", shown(spec.default),
                        path=("default",), hint=close_matches(spec.default, templates))
    if pick is not None:
        templates = _pick_members(templates, pick)
    return spec.linked(templates)


def load_file(path: str | Path, *, overrides: dict | None = None,
              kind: str | tuple[str, ...] | None = None) -> Any:
    """Load and validate one DSL file into its frozen spec object.

    ``kind`` (one kind or several) is what the caller accepts. Kinds that name other files
    (accelerator sets) load those too; overrides on keys they do not hold go to the members.
    Raises SpecError (one line, with file, key path, line, expectation and hint).
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("a readable UTF-8 YAML file", type(exc).__name__, file=file) from None
    loaded = load_yaml_text(text, file)
    data = loaded.data
    try:
        if not isinstance(data, dict):
            raise SpecError("a mapping at the top (schema:, kind:, name:, ...)",
                            "an empty file" if data is None
                            else "a list" if isinstance(data, list) else shown(data))
        if "schema" not in data:
            raise SpecError(f"'schema: {SCHEMA_VERSION}'", "it missing", path=("schema",),
                            hint=f"add 'schema: {SCHEMA_VERSION}' as the first line")
        if data["schema"] != SCHEMA_VERSION:
            raise SpecError(f"schema {SCHEMA_VERSION}", shown(data["schema"]), path=("schema",),
                            hint="this nasco reads schema 1 files")
        file_kind = data.get("kind")
        if "kind" not in data:
            raise SpecError("a kind among " + ", ".join(KINDS), "it missing", path=("kind",),
                            hint="add e.g. 'kind: arch_space' after the schema line")
        if not isinstance(file_kind, str) or file_kind not in KINDS:
            hint = close_matches(file_kind, KINDS.names()) if isinstance(file_kind, str) else None
            raise SpecError("a kind among " + ", ".join(KINDS), shown(file_kind), path=("kind",), hint=hint)
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds is not None and file_kind not in kinds:
            wanted = " or ".join(f"'{k}'" for k in kinds)
            raise SpecError(f"a file of kind {wanted}", f"kind '{file_kind}'", path=("kind",),
                            hint="pass an architecture space to --space and an accelerator to --hw"
                            if set(kinds) & {"arch_space", *HW_KINDS} else f"give a {wanted} file here")
        cls = KINDS.get(file_kind)
        is_set = issubclass(cls, AcceleratorSet)
        own, rest = _split(overrides, cls.OWN_KEYS) if is_set else (overrides, None)
        if own:
            _apply_overrides(data, own)
        spec = build(cls, data)
        # The file a spec came from, for later error messages and summaries (not a field,
        # so not part of equality); nasco.dsl.resolve carries it over.
        object.__setattr__(spec, "source", file)
        if is_set:
            spec = _link(spec, path, rest or {})
            object.__setattr__(spec, "source", file)
    except SpecError as err:
        raise err.located(file=file, line=loaded.line_of(err.path)) from None
    return spec


def load_spec(name_or_path: str | Path, *, kind: str | None = None,
              overrides: dict | None = None) -> Any:
    """Load a built-in by name or a user file by path."""
    return load_file(find_file(name_or_path), overrides=overrides, kind=kind)


def _technology_error(template: AcceleratorTemplate, expected: str, found: object,
                      hint: str | None) -> SpecError:
    """An error on the template's 'technology' key, with its line where the file gives one."""
    source = getattr(template, "source", None)
    line = None
    if source:
        try:
            line = load_yaml_text(Path(source).read_text(encoding="utf-8"), source).line_of(("technology",))
        except (OSError, UnicodeDecodeError, SpecError):  # pragma: no cover - it loaded before
            line = None
    return SpecError(expected, found, file=source, path=("technology",), line=line, hint=hint)


def load_energy_table(template: AcceleratorTemplate) -> EnergyTable:
    """The energy table a template names, looked up beside the template, then among built-ins."""
    base = Path(getattr(template, "source", "") or ".").parent
    try:
        path = find_file(template.technology, relative_to=base, what="energy table", kind="energy_table")
    except SpecError as err:
        raise _technology_error(template, err.expected, f"'{template.technology}' ({err.found})",
                                err.hint) from None
    # Errors inside the table itself name the table's file; a file that is no DSL file at all
    # is reported at the template's key.
    try:
        table = load_file(path)
    except SpecError as err:
        if err.path:
            raise
        tables = ", ".join(builtin_names("energy_table"))
        found = _not_a_spec(template.technology, err)
        raise _technology_error(template, "the name or path of an energy_table file", found,
                                hint=f"energy tables: {tables}") from None
    if not isinstance(table, EnergyTable):
        kind = next(k for k, cls in KINDS.items() if isinstance(table, cls))
        raise _technology_error(template, "the name or path of an energy_table file",
                                f"'{template.technology}' ({path}, a file of kind '{kind}')",
                                hint="energy tables: " + ", ".join(builtin_names("energy_table")))
    return table
