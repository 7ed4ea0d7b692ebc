"""One registry helper for every pluggable kind (searchers, executors, predictors, DSL kinds,
datasets, zero-cost proxies): a name -> object table kept in registration order, whose
lookups of unknown names list the known ones with a close-match hint."""
from __future__ import annotations

import difflib
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView
from types import MappingProxyType
from typing import Generic, TypeVar, overload

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")
_MISSING = object()


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered. A ``KeyError`` (a failed lookup) and a ``ValueError``
    (a bad argument), so callers may catch either; ``str()`` is the one-line message."""

    def __init__(self, message: str, name: str, known: tuple[str, ...]) -> None:
        super().__init__(message)
        self.message, self.name, self.known = message, name, known

    def __str__(self) -> str:
        return self.message


class Registry(Generic[T]):
    """Name -> object, in registration order.

    ``kind`` names what is registered in messages ("searcher", "dataset"). Register with a
    call, ``reg.register("name", obj)``, or as a decorator, ``@reg.register("name")``; a name
    is taken once (``replace=True`` rebinds it). ``get(name)`` and ``reg[name]`` raise
    :class:`UnknownNameError` for an unknown name, listing the known names and the closest
    matches. Iteration, ``names()``, ``keys()``, ``values()`` and ``items()`` follow
    registration order; ``in`` tests a name.

    >>> reg = Registry("colour")
    >>> _ = reg.register("red", 1)
    >>> @reg.register("green")
    ... def green():
    ...     return 2
    >>> reg.names(), "red" in reg, reg.get("green")()
    (['red', 'green'], True, 2)
    >>> reg.get("gren")
    Traceback (most recent call last):
    ...
    nasco.core._registry.UnknownNameError: unknown colour 'gren'; known: red, green; did you mean 'green'?
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str, obj: T, *, replace: bool = False) -> T: ...

    @overload
    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]: ...

    def register(self, name: str, obj: object = _MISSING, *, replace: bool = False):  # type: ignore[misc]
        """Register ``obj`` as ``name`` and return it; without ``obj``, a decorator that does."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} is registered under a non-empty string name, got {name!r}")

        def add(value: T) -> T:
            if name in self._items and not replace and self._items[name] is not value:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._items[name]!r}); "
                                 "pass replace=True to rebind it")
            self._items[name] = value
            return value

        return add if obj is _MISSING else add(obj)  # type: ignore[arg-type]

    def unknown(self, name: object) -> UnknownNameError:
        """The error for an unregistered ``name``: the known names and a did-you-mean hint."""
        known = tuple(self._items)
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
        listed = ", ".join(known) if known else f"no {self.kind} is registered"
        return UnknownNameError(f"unknown {self.kind} {name!r}; known: {listed}{hint}", str(name), known)

    def get(self, name: str) -> T:
        """The object registered as ``name``; :class:`UnknownNameError` if there is none."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    __getitem__ = get

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._items)

    def keys(self) -> KeysView[str]:
        return MappingProxyType(self._items).keys()

    def values(self) -> ValuesView[T]:
        return MappingProxyType(self._items).values()

    def items(self) -> ItemsView[str, T]:
        return MappingProxyType(self._items).items()

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:  # an unhashable value is no registered name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
