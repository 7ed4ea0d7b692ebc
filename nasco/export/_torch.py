"""The torch format: the network's weights in safetensors, rebuilt as a plain module.

The export folder holds ``network.safetensors`` and the sidecar, whose ``network`` section
(the resolved space, the cell, the input shape and the classes) is what
:func:`load_torch` rebuilds the :class:`nasco.nn.GraphNet` from: reloading reads JSON and
safetensors only, never a pickle. A plain module rather than a ``torch.export`` program,
whose saved form keeps constants through ``torch.save``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from nasco.export._errors import ExportError

__all__ = ["WEIGHTS_FILE", "load_torch", "write_torch"]

WEIGHTS_FILE = "network.safetensors"


def write_torch(plan: Any, space: Any, state: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write ``state`` to ``out_dir/network.safetensors``; the sidecar facts of the format."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(out_dir / WEIGHTS_FILE))
    return {"files": [WEIGHTS_FILE], "tensors": len(state),
            "load": "nasco.export.load_torch(DIR) -> nasco.nn.GraphNet (eval mode)"}


def load_torch(export_dir: str | Path) -> Any:
    """The :class:`nasco.nn.GraphNet` of a torch export folder, its weights loaded, in eval mode."""
    from safetensors.torch import load_file

    from nasco.dsl import ArchSpace, build
    from nasco.export._export import SIDECAR
    from nasco.nn import GraphNet, plan_network

    export_dir = Path(export_dir)
    sidecar = export_dir / SIDECAR
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        net = meta["network"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(str(sidecar), f"expected the sidecar of a nasco torch export, found {exc}",
                          "give the folder that 'nasco export --format torch' wrote") from None
    if meta.get("format") != "torch":
        raise ExportError(str(export_dir), f"expected a torch export, found format {meta.get('format')!r}",
                          "export with --format torch")
    space = build(ArchSpace, net["space"])
    plan = plan_network(space, net["cell"], tuple(net["input_shape"]), int(net["num_classes"]))
    model = GraphNet(plan, space)
    model.load_state_dict(load_file(str(export_dir / WEIGHTS_FILE)))
    return model.eval()
