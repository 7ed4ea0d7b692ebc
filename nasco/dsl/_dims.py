"""The search dimensions of a spec: every field that holds a Choice."""
from __future__ import annotations

import dataclasses
from typing import Any

from nasco.dsl._choice import Choice
from nasco.dsl._errors import capped

__all__ = ["search_dimensions", "resolve", "defaults"]


def _fields(spec: Any, prefix: str):
    """(field name, dotted key path, value) of every constructor field of a spec."""
    for f in dataclasses.fields(spec):
        if f.init:
            yield f.name, f"{prefix}{f.name}", getattr(spec, f.name)


def search_dimensions(spec: Any, prefix: str = "") -> dict[str, Choice]:
    """Dotted key path -> Choice, in field order (stable across runs)."""
    out: dict[str, Choice] = {}
    if not dataclasses.is_dataclass(spec):
        return out
    for _name, key, value in _fields(spec, prefix):
        if isinstance(value, Choice):
            out[key] = value
        elif dataclasses.is_dataclass(value):
            out.update(search_dimensions(value, key + "."))
        elif isinstance(value, dict):
            for k, v in value.items():
                out.update(search_dimensions(v, f"{key}.{k}."))
    return out


def resolve(spec: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """A copy of ``spec`` with each Choice replaced by ``values[path]`` (its default if absent)."""
    if not dataclasses.is_dataclass(spec):
        return spec
    changes: dict[str, Any] = {}
    for name, key, value in _fields(spec, prefix):
        if isinstance(value, Choice):
            picked = values.get(key, value.default)
            if picked not in value.options:
                raise ValueError(f"{key}={capped(picked)} is not one of {capped(list(value.options))}")
            changes[name] = picked
        elif dataclasses.is_dataclass(value):
            changes[name] = resolve(value, values, key + ".")
        elif isinstance(value, dict):
            changes[name] = {k: resolve(v, values, f"{key}.{k}.") for k, v in value.items()}
    new = dataclasses.replace(spec, **changes)
    if hasattr(spec, "source"):  # the file it came from (see nasco.dsl._load)
        object.__setattr__(new, "source", spec.source)
    return new


def defaults(spec: Any) -> dict[str, Any]:
    return {k: c.default for k, c in search_dimensions(spec).items()}
