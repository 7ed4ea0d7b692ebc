"""Search spaces from the names and files a user gives, with ``--set`` style overrides."""
from __future__ import annotations

from typing import Any, Sequence

from nasco.core import NascoError
from nasco.dsl import HW_KINDS, MultiAccelerator, find_file, load_file, parse_overrides
from nasco.space import SearchSpace

__all__ = ["build_space", "split_task_overrides"]


def split_task_overrides(items: Sequence[str] | None, n_tasks: int) -> tuple[list[dict], dict]:
    """Override items (``KEY=VALUE``) of a search with ``n_tasks`` spaces -> (overrides per
    space, accelerator overrides).

    ``KEY=V`` and ``space.KEY=V`` go to every space, ``taskI.KEY=V`` to space I only (0-based,
    in the order the spaces are given), ``hw.KEY=V`` to the accelerator file.
    """
    per: list[dict[tuple[str, ...], Any]] = [{} for _ in range(n_tasks)]
    hw: dict[tuple[str, ...], Any] = {}
    for path, value in parse_overrides(list(items or [])).items():
        head = path[0]
        if head == "hw" and len(path) > 1:
            hw[path[1:]] = value
        elif head.startswith("task") and head[4:].isdigit() and len(path) > 1:
            i = int(head[4:])
            if i >= n_tasks:
                raise NascoError(f"set {'.'.join(path)}: expected task0..task{n_tasks - 1} "
                                 f"(one per space), found task{i}")
            per[i][path[1:]] = value
        else:
            rest = path[1:] if head == "space" and len(path) > 1 else path
            for d in per:
                d[rest] = value
    return per, hw


def build_space(space: str | Sequence[str], hw: str | None = None,
                sets: Sequence[str] = ()) -> tuple[SearchSpace, dict[str, Any]]:
    """The joint space of architecture space(s) ``space`` and accelerator ``hw`` (built-in
    names or .yaml paths), with overrides ``sets`` applied; and the facts a run records
    about it (names, files, overrides).

    Several spaces make a multi-task search and need a multi_accelerator ``hw`` with one
    sub-accelerator per space.
    """
    names = [space] if isinstance(space, str) else list(space)
    if not names:
        raise NascoError("space: expected an architecture space (a built-in name such as darts_snn, or a "
                         ".yaml path), found none")
    space_over, hw_over = split_task_overrides(sets, len(names))
    hw_spec = load_file(find_file(hw, what="accelerator template, set or multi-accelerator"),
                        overrides=hw_over or None, kind=HW_KINDS) if hw else None
    if hw_spec is None and hw_over:
        raise NascoError(f"set {', '.join('hw.' + '.'.join(k) for k in hw_over)}: expected an accelerator to "
                         f"override (hw=...), found none")
    k = hw_spec.sub_accelerators if isinstance(hw_spec, MultiAccelerator) else 1
    if len(names) != k:
        if isinstance(hw_spec, MultiAccelerator):
            raise NascoError(f"--hw {hw} has {k} sub-accelerators, one per task: give --space {k} times "
                             f"(found {len(names)})")
        raise NascoError(f"{len(names)} --space (tasks) need a multi_accelerator --hw with {len(names)} "
                         f"sub-accelerators (e.g. --hw hetero_2task); found "
                         + (f"'{hw_spec.name}' ({hw_spec.kind})" if hw_spec is not None else "no --hw"))
    archs = [load_file(find_file(name), overrides=over or None, kind="arch_space")
             for name, over in zip(names, space_over)]
    multi = isinstance(hw_spec, MultiAccelerator)
    joint = SearchSpace(archs if multi else archs[0], hw_spec)
    facts = {
        "space": "+".join(a.name for a in archs), "space_file": getattr(archs[0], "source", None),
        "hw": hw_spec.name if hw_spec is not None else None,
        "hw_file": getattr(hw_spec, "source", None) if hw_spec is not None else None,
        "set": list(sets),
    }
    if multi:
        facts["space_files"] = [getattr(a, "source", None) for a in archs]
    return joint, facts
