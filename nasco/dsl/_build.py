"""Typed, frozen spec objects from plain YAML data.

Each spec is a frozen dataclass whose fields carry their rules in ``metadata``
(see :func:`spec_field`). :func:`build` walks the YAML data against those
dataclasses, so the rules live next to the types and every error names the key
path it came from.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from nasco.dsl._choice import Choice, is_choice_mapping, parse_choice
from nasco.dsl._errors import SpecError, clip, close_matches, shown

__all__ = ["spec_field", "build", "check_value", "to_data"]

_MISSING = dataclasses.MISSING


def spec_field(
    default: Any = _MISSING,
    *,
    doc: str = "",
    min: float | None = None,  # noqa: A002 - reads naturally in the schemas
    max: float | None = None,  # noqa: A002
    gt: float | None = None,
    enum: tuple[str, ...] | None = None,
    searchable: bool = False,
    hint: str | None = None,
    why: str | None = None,
) -> Any:
    """A dataclass field with its DSL rules.

    ``searchable`` fields accept ``{choice: [...]}`` / ``{range: [...]}`` and then hold a
    :class:`Choice`; every option is checked against the same rules. ``hint`` is added to
    an error about the field's value that has no hint of its own. ``why`` says where the
    bounds ``min`` / ``max`` / ``gt`` come from; a value out of them names it.
    """
    meta = {"doc": doc, "min": min, "max": max, "gt": gt, "enum": enum, "searchable": searchable,
            "hint": hint, "why": why}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple or None for mutable defaults")
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    return str(tp)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Choice]
        optional = type(None) in typing.get_args(tp)
        if len(args) == 1:
            return args[0], optional
    return tp, False


def check_value(value: Any, tp: Any, meta: dict, path: tuple) -> Any:
    """Check one (non-choice) value against a type and its rules; return it converted."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise SpecError(_type_name(tp), "nothing (null)", path=path,
                        hint="give a value or remove the key to use the default")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, list):
            raise SpecError("a list", shown(value), path=path, hint="write [a, b, ...]")
        (item_tp, _ellipsis) = typing.get_args(tp)
        item_meta = {**meta, "min": meta.get("min"), "max": meta.get("max")}
        return tuple(check_value(v, item_tp, item_meta, path + (i,)) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError("a mapping", shown(value), path=path)
        _k, val_tp = typing.get_args(tp)
        return {str(k): check_value(v, val_tp, meta, path + (str(k),)) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError("true or false", shown(value), path=path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError("an integer", shown(value), path=path)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError("a number", shown(value), path=path)
        value = float(value)
        if not math.isfinite(value):
            raise SpecError("a finite number", value, path=path)
    elif tp is str:
        if not isinstance(value, str):
            raise SpecError("a string", shown(value), path=path)
        enum = meta.get("enum")
        if enum and value not in enum:
            raise SpecError(
                "one of " + ", ".join(enum), shown(value), path=path,
                hint=close_matches(value, enum),
            )
        return value
    lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
    why = f" ({meta['why']})" if meta.get("why") else ""
    if lo is not None and value < lo:
        raise SpecError(f"a value >= {lo}{why}", value, path=path)
    if gt is not None and value <= gt:
        raise SpecError(f"a value > {gt}{why}", value, path=path)
    if hi is not None and value > hi:
        raise SpecError(f"a value <= {hi}{why}", value, path=path)
    return value


def build(cls: type, data: Any, path: tuple = ()) -> Any:
    """Build the frozen dataclass ``cls`` from YAML ``data``; raise SpecError on the first fault."""
    if not isinstance(data, dict):
        raise SpecError(f"a mapping for {cls.__name__}", shown(data), path=path,
                        hint="write 'key: value' lines under this key")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise SpecError(
                "one of the keys " + ", ".join(fields), f"unknown key '{clip(str(key))}'",
                path=path + (str(key),), hint=close_matches(key, fields),
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = path + (name,)
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:  # type: ignore[misc]
                raise SpecError(f"the key '{name}' ({f.metadata.get('doc') or _type_name(hints[name])})",
                                "it missing", path=sub, hint=f"add '{name}:' here")
            continue
        value = data[name]
        meta = dict(f.metadata)
        try:
            kwargs[name] = _field_value(name, value, hints[name], meta, sub)
        except SpecError as err:
            if err.hint or not meta.get("hint"):
                raise
            raise SpecError(err.expected, err.found, path=err.path, hint=meta["hint"]) from None
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check is not None:
        check(path)
    return obj


def _field_value(name: str, value: Any, tp: Any, meta: dict, sub: tuple) -> Any:
    """One field's value: a checked fixed value or a Choice of checked options."""
    if is_choice_mapping(value) and not dataclasses.is_dataclass(_strip_optional(tp)[0]):
        if not meta.get("searchable"):
            raise SpecError("a fixed value", "a choice", path=sub,
                            hint=f"'{name}' is not searchable; give one value")
        choice = parse_choice(value, sub)
        opts = tuple(check_value(o, tp, meta, sub + ("choice", i))
                     for i, o in enumerate(choice.options))
        for i, o in enumerate(opts):
            if o in opts[:i]:  # e.g. 2 and 2.0 once both are floats
                same = opts.index(o)
                raise SpecError("distinct options", shown(choice.options[i]), path=sub + ("choice", i),
                                hint=f"it equals option {same} ({shown(choice.options[same])}); "
                                     "remove the repeat")
        return Choice(opts, opts[choice.options.index(choice.default)])
    return check_value(value, tp, meta, sub)


def to_data(obj: Any) -> Any:
    """The inverse of :func:`build`: plain data that YAML/JSON can hold."""
    if isinstance(obj, Choice):
        return obj.to_data()
    if dataclasses.is_dataclass(obj):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    return obj
