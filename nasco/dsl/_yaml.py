"""Safe YAML loading that also remembers the line of every key path.

An alias (``*name``) stands for its anchor's whole value (``&name``), so a few hundred bytes of
nested aliases can stand for billions of values (the "billion laughs"). The loader measures
what each value expands to on the composed node graph, where an alias is one shared node, and
refuses a value that aliases blow up before any of it is built.
"""
from __future__ import annotations

from typing import Any

import yaml

from nasco.dsl._errors import SpecError

__all__ = ["MAX_EXPANDED_SIZE", "VALID_YAML", "LoadedYaml", "load_value", "load_yaml_text"]

# libyaml's parser (when PyYAML has it) with the same safe constructor: the same data and
# marks as yaml.SafeLoader, about ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The most a value that holds aliases may expand to, counting one per value (scalar, list,
# mapping) plus the characters of its scalars: about the size of the value written out without
# aliases. DSL files are a few kilobytes (the largest built-in is 7 KB; a choice or range holds
# at most 10,000 options), so a million leaves room for any hand-written file, while building,
# checking and printing a value of that size takes well under a second and a few tens of MB.
MAX_EXPANDED_SIZE = 1_000_000

# What a syntax error says was expected (callers tell it from the other errors by this).
VALID_YAML = "valid YAML"


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


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _children(node: yaml.Node, path: tuple, file: str) -> list[tuple[tuple, int | None, yaml.Node]]:
    """(child path, line of its key or None, child node) of every key and value of ``node``,
    in document order; a mapping's repeated key is a SpecError."""
    if isinstance(node, yaml.SequenceNode):
        return [(path + (i,), None, item) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    out: list[tuple[tuple, int | None, yaml.Node]] = []
    seen: dict[str, int] = {}
    for key, value in node.value:
        line = _line(key)
        if isinstance(key, yaml.ScalarNode):
            k = key.value
            if k in seen:
                # yaml.safe_load keeps the last value silently; a repeated key is a typo.
                raise SpecError("each key once", f"'{k}' again (first on line {seen[k]})",
                                file=file, path=path + (k,), line=line,
                                hint="remove one of the two or merge them")
            seen[k] = line
        else:  # a list or mapping used as a key: named by its place, never by its (maybe huge) value
            k = f"<key on line {line}>"
        out.append((path + (k,), None, key))  # the key's own size counts too
        out.append((path + (k,), line, value))
    return out


def _scan(root: yaml.Node, file: str) -> dict[tuple[str | int, ...], int]:
    """Check the composed graph and return the line of every key path.

    Every node is entered once (an alias shares its anchor's node), so the walk is linear in
    the text. On the way it refuses a value that contains itself, a repeated key and a value
    whose aliases expand it past :data:`MAX_EXPANDED_SIZE`; sizes are memoised per node, so
    nothing is expanded to measure it.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    size: dict[int, int] = {}        # id(node) -> expanded size, once its walk is done
    aliased: dict[int, bool] = {}    # id(node) -> an alias occurs inside it
    active: set[int] = set()         # nodes being walked (an alias to one is a cycle)

    def enter(node: yaml.Node, path: tuple) -> list:
        active.add(id(node))
        own = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)
        return [node, path, _children(node, path, file), 0, own, False]

    lines[()] = _line(root)
    stack = [enter(root, ())]
    while stack:
        frame = stack[-1]
        node, path, kids, i = frame[0], frame[1], frame[2], frame[3]
        if i < len(kids):
            frame[3] = i + 1
            cpath, key_line, child = kids[i]
            lines[cpath] = _line(child)
            cid = id(child)
            if cid in active:
                raise SpecError("no value that contains itself", "an alias inside its own anchor",
                                file=file, path=cpath, line=_line(child),
                                hint="YAML anchors (&name) may not refer to themselves (*name)")
            if cid in size:  # an alias: its anchor's value again
                frame[4] += size[cid]
                frame[5] = True
                if key_line is not None:
                    lines[cpath] = key_line
            else:
                stack.append(enter(child, cpath))
                frame.append(key_line)  # restored as the key's line once the child is done
            continue
        stack.pop()
        nid = id(node)
        active.discard(nid)
        total, has_alias = frame[4], frame[5]
        if has_alias and total > MAX_EXPANDED_SIZE:
            raise SpecError(
                f"a value that expands to at most {MAX_EXPANDED_SIZE:,} values and characters once its "
                "aliases are expanded", f"one that expands to {total:,}", file=file, path=path,
                line=_line(node),
                hint="an alias (*name) repeats its anchor's (&name) whole value; write the value out "
                     "or repeat it fewer times")
        size[nid], aliased[nid] = total, has_alias
        if stack:
            parent = stack[-1]
            parent[4] += total
            parent[5] = parent[5] or has_alias
            key_line = parent.pop()
            if key_line is not None:
                lines[path] = key_line
    return lines


def load_yaml_text(text: str, file: str) -> LoadedYaml:
    """Parse ``text`` safely; a syntax error or an alias blow-up becomes a one-line SpecError."""
    # Parse once: the node graph gives the line of every key and the size of every value, and
    # the SafeLoader then constructs the data from that same graph (exactly what
    # yaml.safe_load does), once the graph has passed the checks.
    loader = _SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
            lines = _scan(root, file) if root is not None else {}
            data = loader.construct_document(root) if root is not None else None
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, file) from None
    finally:
        loader.dispose()
    return LoadedYaml(data, lines, file)


def _syntax_error(exc: yaml.YAMLError, file: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and (mark is None or cmark.line != mark.line):
        # e.g. an unclosed '{' is noticed a line later; name where it opened.
        problem += f"; {context} on line {cmark.line + 1}"
    return SpecError(
        VALID_YAML,
        f"a syntax error ({problem})",
        file=file,
        line=mark.line + 1 if mark else None,
        hint="check indentation and that every 'key: value' has a space after the colon",
    )


def load_value(text: str, where: str) -> Any:
    """A command-line VALUE (``--set KEY=VALUE``, ``--searcher-opt KEY=VALUE``) read as YAML by
    the same bounded loader as the DSL files; ``where`` names the flag in errors. An empty
    VALUE is None."""
    if not text.strip():
        return None
    try:
        return load_yaml_text(text, where).data
    except SpecError as err:
        # a one-line value has no line worth naming
        raise SpecError(err.expected, err.found, file=where, path=err.path,
                        line=err.line if "\n" in text else None, hint=err.hint) from None
