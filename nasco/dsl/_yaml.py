"""Safe YAML loading that also remembers the line of every key path."""
from __future__ import annotations

from typing import Any

import yaml

from nasco.dsl._errors import SpecError

__all__ = ["LoadedYaml", "load_yaml_text"]

# libyaml's parser (when PyYAML has it) with the same safe constructor: the same data and
# marks as yaml.SafeLoader, about ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LoadedYaml:
    """Plain data from ``yaml.safe_load`` plus a key-path -> line map for errors."""

    def __init__(self, data: Any, lines: dict[tuple[str | int, ...], int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line of ``path`` or of its nearest ancestor that YAML placed."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


def _walk(node: yaml.Node, path: tuple[str | int, ...], lines: dict, file: str,
          active: set[int], done: set[int]) -> None:
    lines[path] = node.start_mark.line + 1
    # An alias shares its anchor's node: descend into each node once (so nested aliases
    # cannot blow up), and refuse a node that contains itself.
    if id(node) in active:
        raise SpecError("no value that contains itself", "an alias inside its own anchor",
                        file=file, path=path, line=node.start_mark.line + 1,
                        hint="YAML anchors (&name) may not refer to themselves (*name)")
    if id(node) in done:
        return
    done.add(id(node))
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            line = key.start_mark.line + 1
            if k in seen:
                # yaml.safe_load keeps the last value silently; a repeated key is a typo.
                raise SpecError("each key once", f"'{k}' again (first on line {seen[k]})",
                                file=file, path=path + (k,), line=line,
                                hint="remove one of the two or merge them")
            seen[k] = line
            lines[path + (k,)] = line
            _walk(value, path + (k,), lines, file, active, done)
            lines[path + (k,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines, file, active, done)
    active.discard(id(node))


def load_yaml_text(text: str, file: str) -> LoadedYaml:
    """Parse ``text`` safely; a syntax error becomes a one-line SpecError."""
    # Parse once: the node tree gives the line of every key, and the SafeLoader then
    # constructs the data from that same tree (exactly what yaml.safe_load does).
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and (mark is None or cmark.line != mark.line):
            # e.g. an unclosed '{' is noticed a line later; name where it opened.
            problem += f"; {context} on line {cmark.line + 1}"
        raise SpecError(
            "valid YAML",
            f"a syntax error ({problem})",
            file=file,
            line=mark.line + 1 if mark else None,
            hint="check indentation and that every 'key: value' has a space after the colon",
        ) from None
    finally:
        loader.dispose()
    lines: dict[tuple[str | int, ...], int] = {}
    if root is not None:
        _walk(root, (), lines, file, set(), set())
    return LoadedYaml(data, lines, file)
