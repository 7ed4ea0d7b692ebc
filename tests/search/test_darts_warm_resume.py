"""The warm-up a DARTS search hands on to the run's later searches is the state after its
warm-up epochs, also when the search was killed past its warm-up and resumed from its checkpoint."""
from __future__ import annotations

import pytest
import torch

from nasco.dsl import load_energy_table, load_spec, resolve
from nasco.evaluate import load_dataset
from nasco.search import DartsConfig, fit_darts
from nasco.search._darts import load_checkpoint
from nasco.space import SearchSpace


class _Killed(BaseException):
    pass


def _kill_at(prefix: str):
    def log(line: str) -> None:
        if line.startswith(prefix):
            raise _Killed(line)
    return log


def test_search_resumed_past_its_warm_up_returns_the_warm_up_state(tmp_path):
    over = {("macro", "stem", "channels"): {"choice": [4], "default": 4},
            ("timesteps",): {"choice": [2], "default": 2}}
    spec = load_spec("darts_snn", overrides=over)
    space = SearchSpace(spec)
    arch = resolve(spec, {k: c.default for k, c in space.arch_dims.items()})
    hw = SearchSpace(load_spec("darts"), load_spec("nvdla_like")).hw
    template = hw.resolve(hw.defaults())[0]
    table = (template, load_energy_table(template))
    data = load_dataset("digits", seed=0, limit=96)
    cfg = DartsConfig(epochs=3, warmup_epochs=1, batch_size=16, seed=1, lam=1.0)

    # The state after the warm-up epoch, as a search stopped right after it left it on disk
    # (the line of epoch 2 is logged before epoch 2's checkpoint is written).
    with pytest.raises(_Killed):
        fit_darts(arch, data, cfg, hw=table, checkpoint=tmp_path / "a.pt", log=_kill_at("[darts] epoch 2/3"))
    after_warm_up = load_checkpoint(tmp_path / "a.pt")
    assert after_warm_up["epoch"] == 1

    with pytest.warns(RuntimeWarning, match="DARTS collapse warning"):
        whole = fit_darts(arch, data, cfg, hw=table)
    assert whole.warm is not None and whole.warm["epoch"] == 1 and len(whole.warm["history"]) == 1
    for name, value in after_warm_up["net"].items():
        assert torch.equal(whole.warm["net"][name], value), name

    # Killed after epoch 2 was saved: resumed past the warm-up, it still returns it.
    with pytest.raises(_Killed):
        fit_darts(arch, data, cfg, hw=table, checkpoint=tmp_path / "b.pt", log=_kill_at("[darts] epoch 3/3"))
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2
    with pytest.warns(RuntimeWarning, match="DARTS collapse warning"):
        resumed = fit_darts(arch, data, cfg, hw=table, checkpoint=tmp_path / "b.pt")
    assert resumed.resumed_from == 2 and resumed.cell == whole.cell
    assert resumed.warm is not None and resumed.warm["epoch"] == 1
    untimed = [[{k: v for k, v in h.items() if k != "seconds"} for h in f.warm["history"]]
               for f in (resumed, whole)]
    assert untimed[0] == untimed[1]
    for name, value in whole.warm["net"].items():
        assert torch.equal(resumed.warm["net"][name], value), name


def _equal(a, b) -> bool:
    """Nested states equal, tensors bit for bit."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        return torch.is_tensor(a) and torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_a_search_started_from_the_warm_up_leaves_it_as_it_was():
    """Every later search of a run starts from the same warm-up: one search must not change
    it for the next (its optimiser's momentum, for one)."""
    import copy

    spec = load_spec("darts_snn", overrides={("macro", "stem", "channels"): {"choice": [4], "default": 4},
                                             ("timesteps",): {"choice": [2], "default": 2}})
    space = SearchSpace(spec)
    arch = resolve(spec, {k: c.default for k, c in space.arch_dims.items()})
    hw = SearchSpace(load_spec("darts"), load_spec("nvdla_like")).hw
    template = hw.resolve(hw.defaults())[0]
    table = (template, load_energy_table(template))
    data = load_dataset("digits", seed=0, limit=60)
    cfg = DartsConfig(epochs=2, warmup_epochs=1, batch_size=16, seed=0, lam=1.0)
    warm = fit_darts(arch, data, cfg, hw=table).warm
    before = copy.deepcopy(warm)
    assert before["w_opt"]["state"], "the warm-up holds the SGD momentum"
    first = fit_darts(arch, data, cfg, hw=table, warm_start=warm)
    assert _equal(warm, before)
    again = fit_darts(arch, data, cfg, hw=table, warm_start=warm)
    assert again.weights == first.weights and again.cell == first.cell
