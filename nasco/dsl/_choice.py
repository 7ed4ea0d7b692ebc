"""Choices: any searchable value in the DSL may be fixed or a discrete choice."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasco.dsl._errors import SpecError, capped, clip, close_matches, shown

__all__ = ["Choice", "parse_choice", "is_choice_mapping"]

_CHOICE_KEYS = {"choice", "range", "default", "step"}
# A range is expanded into its options; a slip such as [1, 100000000] must not hang the loader.
MAX_RANGE_OPTIONS = 10_000


@dataclass(frozen=True)
class Choice:
    """A discrete set of values one of which a candidate picks.

    ``{choice: [a, b, c], default: b}`` or ``{range: [lo, hi], step: s}`` (integers,
    both ends included) in YAML. Every search dimension in nasco is discrete, so
    mutation, encoding and the size of a space are exact.
    """

    options: tuple[Any, ...]
    default: Any

    def __post_init__(self) -> None:
        if self.default not in self.options:  # pragma: no cover - parse_choice guards
            raise ValueError("default must be one of the options")

    def __len__(self) -> int:
        return len(self.options)

    def index(self, value: Any) -> int:
        return self.options.index(value)

    def to_data(self) -> dict[str, Any]:
        return {"choice": list(self.options), "default": self.default}


def is_choice_mapping(value: Any) -> bool:
    return isinstance(value, dict) and ("choice" in value or "range" in value)


def parse_choice(value: dict, path: tuple) -> Choice:
    """Turn the YAML mapping of a choice into a :class:`Choice`."""
    unknown = set(value) - _CHOICE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise SpecError(
            "a choice with keys choice|range, default, step",
            f"unknown key '{clip(str(key))}'",
            path=path + (key,),
            hint=close_matches(key, sorted(_CHOICE_KEYS))
            or "write {choice: [a, b], default: a} or {range: [lo, hi], step: 1}",
        )
    if "choice" in value and "range" in value:
        raise SpecError("either 'choice' or 'range'", "both", path=path)
    if "choice" in value:
        opts = value["choice"]
        if not isinstance(opts, list):
            raise SpecError("a list of options", shown(opts), path=path + ("choice",),
                            hint="write choice: [a, b, c]")
        if not opts:
            raise SpecError("at least one option", "an empty list", path=path + ("choice",),
                            hint="list the values to search over, or write the value itself")
        if any(isinstance(o, (dict, list)) for o in opts):
            raise SpecError("scalar options", opts, path=path + ("choice",))
        if len(set(map(repr, opts))) != len(opts):
            raise SpecError("distinct options", opts, path=path + ("choice",),
                            hint="remove the repeated value")
        options = tuple(opts)
    else:
        rng = value["range"]
        step = value.get("step", 1)
        if (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
        ):
            raise SpecError("range: [low, high] with two integers", shown(rng), path=path + ("range",))
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise SpecError("a positive integer step", shown(step), path=path + ("step",))
        lo, hi = rng
        if hi < lo:
            raise SpecError("low <= high", rng, path=path + ("range",), hint="swap the two ends")
        if (hi - lo) // step + 1 > MAX_RANGE_OPTIONS:
            raise SpecError(f"a range of at most {MAX_RANGE_OPTIONS} options",
                            f"{(hi - lo) // step + 1} options", path=path + ("range",),
                            hint="narrow the range or raise 'step'")
        options = tuple(range(lo, hi + 1, step))
    default = value.get("default", options[0])
    # ``true in [1, 2]`` holds in Python; a bool default must not pick the option 1.
    if not any(o == default and isinstance(o, bool) == isinstance(default, bool) for o in options):
        raise SpecError(f"a default among {capped(list(options))}", shown(default), path=path + ("default",),
                        hint="make the default one of the options")
    return Choice(options, default)
