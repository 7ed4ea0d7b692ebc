"""nasco.core.Registry: registration (call and decorator), ordered iteration, lookups of unknown
names that list the known ones with a close-match hint."""
from __future__ import annotations

import pytest

from nasco.core import Registry
from nasco.core._registry import UnknownNameError


def make() -> Registry:
    reg: Registry = Registry("colour")
    reg.register("red", 1)

    @reg.register("green")
    def green() -> int:
        return 2

    reg.register("blue", 3)
    return reg


def test_register_by_call_and_decorator_in_order():
    reg = make()
    assert reg.names() == ["red", "green", "blue"]
    assert list(reg) == ["red", "green", "blue"]
    assert len(reg) == 3
    assert reg.get("red") == 1 and reg["blue"] == 3 and reg.get("green")() == 2
    assert [k for k, _ in reg.items()] == ["red", "green", "blue"]
    assert list(reg.values())[2] == 3
    assert "red" in reg and "pink" not in reg and [] not in reg
    assert {"red": 1, "blue": 3}.items() <= reg.items()
    assert {**reg}["blue"] == 3  # usable where a mapping is unpacked


def test_the_decorator_returns_the_object():
    reg: Registry = Registry("thing")

    @reg.register("f")
    def f() -> str:
        return "f"

    assert f() == "f" and reg.get("f") is f


def test_unknown_name_lists_known_names_and_close_matches():
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("gren")
    assert str(info.value) == "unknown colour 'gren'; known: red, green, blue; did you mean 'green'?"
    assert info.value.name == "gren" and info.value.known == ("red", "green", "blue")
    # Both a KeyError and a ValueError, so existing callers of either kind keep working.
    with pytest.raises(KeyError):
        reg["purple"]
    with pytest.raises(ValueError, match=r"^unknown colour 'purple'; known: red, green, blue$"):
        reg.get("purple")
    with pytest.raises(UnknownNameError, match=r"unknown colour \[1\]"):
        reg.get([1])  # unhashable: still a clean unknown-name error


def test_a_name_is_taken_once_unless_replaced():
    reg = make()
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        reg.register("red", 10)
    reg.register("red", 1)  # the same object again is harmless (module reloads)
    reg.register("red", 10, replace=True)
    assert reg.get("red") == 10 and reg.names() == ["red", "green", "blue"]
    with pytest.raises(TypeError):
        reg.register("", 4)


def test_empty_registry_message():
    assert str(Registry("proxy").unknown("x")) == "unknown proxy 'x'; known: no proxy is registered"


def test_core_imports_nothing_else_from_nasco():
    import ast
    from pathlib import Path

    import nasco.core

    for path in Path(nasco.core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nasco"):
                assert node.module.startswith("nasco.core"), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("nasco") and not a.name.startswith("nasco.core")
                               for a in node.names), path.name
