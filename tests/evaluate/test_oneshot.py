"""The one-shot evaluator: single paths of a supernet, SPOS training and its resume, BN
recalibration, and the evaluator end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nasco.core import NascoError
from nasco.dsl import load_spec, resolve
from nasco.evaluate import OneShotEvaluator, TrainConfig, epoch_reporter, recalibrate_bn, train_supernet
from nasco.evaluate._data import load_dataset
from nasco.evaluate._oneshot import shares_weights
from nasco.evaluate._spos import GRAD_CLIP, SupernetCheckpoint
from nasco.evaluate._train import reset_states
from nasco.nn import GraphNet, OneShotNet, plan_network
from nasco.space import Candidate, SearchSpace
from nasco.study import make_evaluator

# Small macros: two cells (one reduction) so that reduce cells and the s0 preprocessing stride run.
SMALL = {
    "darts_snn": {("macro", "cells"): 2, ("macro", "reductions"): [1], ("macro", "stem", "channels"): 8,
                  ("timesteps",): {"choice": [2, 3], "default": 2}},
    "darts": {("macro", "cells"): 2, ("macro", "reductions"): [1], ("macro", "stem", "channels"): 8},
    "nb201": {("macro", "cells"): 3, ("macro", "reductions"): [1], ("macro", "stem", "channels"): 4},
}
TINY = {("macro", "cells"): 1, ("macro", "stem", "channels"): {"choice": [4, 8], "default": 4},
        ("macro", "reductions"): [], ("timesteps",): {"choice": [1, 2], "default": 1}}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, limit=96)


def _oneshot(spec, hp, data, seed=0):
    """A OneShotNet for the shape choices of ``hp``, its BN affine parameters and running
    statistics randomised so that eval mode is not the identity."""
    base = resolve(spec, {k: v for k, v in hp.items() if not shares_weights(k)})
    taus = spec.neuron.tau.options if spec.neuron is not None else ()
    torch.manual_seed(seed)
    net = OneShotNet(base, data.input_shape, data.num_classes, taus=taus)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    for p in net.plif.values():
        p.data.add_(torch.randn(()))  # each PLIF position its own time constant
    return net.eval(), base


def _logits(model, x):
    with torch.no_grad():
        out = model.eval()(x)
    reset_states(model)
    return out


@pytest.mark.parametrize("name", ["darts_snn", "darts", "nb201"])
def test_single_path_and_extracted_weights_give_bit_identical_logits(name, digits):
    """The supernet fixed to a sampled cell, run as its single path, and the stand-alone
    network with the extracted weights agree bit for bit; where the supernet's own mixes can
    compute the cell (every edge fixed to its op, the others absent), they agree too."""
    spec = load_spec(name, overrides=SMALL[name])
    space = SearchSpace(spec)
    rng = np.random.default_rng(7)
    x = digits.x_train[:8]
    mixes_checked = 0
    for _ in range(4):
        cand = space.sample(rng)
        arch, _ = space.resolve(cand)
        cell = cand.arch["cell"]
        net, base = _oneshot(spec, cand.arch["hp"], digits)
        path = _logits(net.single_path(arch, cell), x)
        alone = GraphNet(plan_network(arch, cell, digits.input_shape, digits.num_classes), arch)
        alone.load_state_dict(net.path_state_dict(arch, cell))  # strict: every weight, nothing more
        assert torch.equal(path, _logits(alone, x))
        # The mixes run the supernet's own neurons and timesteps (its space's), and every
        # edge: dense cells only where no pruned edge reads a node without inputs (its BN
        # would add a bias that the pruned network does not have).
        if name != "nb201" or "none" not in cell["edges"]:
            net.supernet.fix_cell(cell)
            assert torch.equal(_logits(net.single_path(base, cell), x), _logits(net.supernet, x))
            mixes_checked += 1
    assert mixes_checked >= 1


def test_single_path_shares_the_supernet_layers_across_neuron_choices(digits):
    """A PLIF path with another tau and other timesteps runs on the same conv/BN layers and
    its own PLIF parameters; a LIF path of the same cell uses no PLIF parameter."""
    spec = load_spec("darts_snn", overrides=SMALL["darts_snn"])
    space = SearchSpace(spec)
    cand = space.sample(np.random.default_rng(3))
    cell = cand.arch["cell"]
    hp = dict(cand.arch["hp"])
    net, _ = _oneshot(spec, hp, digits)
    lif = resolve(spec, {**hp, "neuron.type": "lif", "timesteps": 2})
    plif = resolve(spec, {**hp, "neuron.type": "plif", "neuron.tau": 4.0, "timesteps": 3})
    a, b = net.single_path(lif, cell), net.single_path(plif, cell)
    for name, m in a.layers.items():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)):
            assert m is b.layers[name]
    plif_ids = {id(p) for p in net.plif.values()}
    assert not any(id(p) in plif_ids for p in a.parameters())
    used = [p for p in b.parameters() if id(p) in plif_ids]
    assert used and len(used) == sum(1 for n in b.plan.nodes if n.op == "neuron")
    tau4 = {id(p) for k, p in net.plif.items() if k.endswith(f"__tau{spec.neuron.tau.options.index(4.0)}")}
    assert all(id(p) in tau4 for p in used)
    alone = GraphNet(b.plan, plif)
    alone.load_state_dict(net.path_state_dict(plif, cell))
    assert torch.equal(_logits(b, digits.x_train[:8]), _logits(alone, digits.x_train[:8]))


def _spos_setup(data, epochs=2, encoding="direct"):
    spec = load_spec("darts_snn", overrides={**TINY, ("encoding",): encoding})
    space = SearchSpace(spec)
    part = space.tasks[0]
    base = resolve(spec, {"macro.stem.channels": 4})

    def sample(rng):
        cell, hp = part.sample(rng)
        return resolve(spec, {**hp, "macro.stem.channels": 4}), cell

    torch.manual_seed(0)
    net = OneShotNet(base, data.input_shape, data.num_classes, taus=spec.neuron.tau.options)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, seed=11)
    return net, sample, cfg


def test_spos_step_trains_only_the_sampled_path(tmp_path):
    """One step (one batch per epoch) on cell A, then one on cell B continued from the
    checkpoint (momentum buffers included): B's step leaves the layers of A that B does not
    use bit for bit as A's step left them, and layers of neither path at their initial values."""
    data = load_dataset("digits", seed=0, limit=32)
    net, sample, cfg = _spos_setup(data, epochs=1)
    rng = np.random.default_rng(0)
    (arch, a), (_, b) = sample(rng), sample(rng)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    train_supernet(net, lambda rng: (arch, a), data, cfg, checkpoint=SupernetCheckpoint(tmp_path))
    after_a = {k: v.clone() for k, v in net.state_dict().items()}
    train_supernet(net, lambda rng: (arch, b), data, TrainConfig(**{**cfg.__dict__, "epochs": 2}),
                   checkpoint=SupernetCheckpoint(tmp_path))
    on_a = {id(p) for p in net.single_path(arch, a).parameters()}
    on_b = {id(p) for p in net.single_path(arch, b).parameters()}
    assert on_a - on_b and on_b - on_a
    for name, p in net.named_parameters():
        if id(p) in on_b:
            assert not torch.equal(p, after_a[name]), name
        elif id(p) in on_a:
            assert torch.equal(p, after_a[name]) and not torch.equal(p, init[name]), name
        else:  # alphas (SPOS does not train them), PLIF (LIF paths), ops of neither cell
            assert torch.equal(p, init[name]), name


def test_spos_resumed_after_an_interruption_ends_bit_identical(digits, tmp_path):
    """Interrupted after epoch 1 of 2 (the epoch hook raises), then resumed from the
    checkpoint in a fresh process state: the final weights equal an uninterrupted training's.
    Rate-encoded input: the training draws from torch's generator too."""
    net, sample, cfg = _spos_setup(digits, encoding="rate")
    whole = train_supernet(net, sample, digits, cfg, checkpoint=SupernetCheckpoint(tmp_path / "a"))
    expected = net.state_dict()

    class Stop(Exception):
        pass

    def stop(epoch, metrics):
        if epoch == 1:
            raise Stop

    net_b, sample, cfg = _spos_setup(digits, encoding="rate")
    with epoch_reporter(stop, validate=False), pytest.raises(Stop):
        train_supernet(net_b, sample, digits, cfg, checkpoint=SupernetCheckpoint(tmp_path / "b"))
    assert json.loads((tmp_path / "b" / "state.json").read_text())["epochs"] == 1
    torch.manual_seed(12345)  # the resumed training must not depend on the process's RNG state
    net_c, sample, cfg = _spos_setup(digits, encoding="rate")
    resumed = train_supernet(net_c, sample, digits, cfg, checkpoint=SupernetCheckpoint(tmp_path / "b"))
    assert resumed.epoch_losses == whole.epoch_losses and resumed.epochs == 2
    got = net_c.state_dict()
    assert got.keys() == expected.keys()
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["epoch2.safetensors", "state.json"]


class _LinearPaths(torch.nn.Module):
    """A stand-in supernet whose every path is one shared linear layer on the flattened image
    times ``scale`` (the weight gradient grows with the input)."""

    def __init__(self, data, scale):
        super().__init__()
        torch.manual_seed(0)
        self.scale = scale
        self.lin = torch.nn.Linear(int(np.prod(data.input_shape)), data.num_classes)

    def weight_parameters(self):
        return list(self.parameters())

    def forward(self, x):
        return self.lin(x.flatten(1) * self.scale)

    def single_path(self, arch, cell):
        return self


@pytest.mark.parametrize("grad_clip", [GRAD_CLIP, None])
def test_spos_step_clips_the_gradient_norm(grad_clip):
    """One SPOS step (one batch, SGD without weight decay, cosine factor 1 at step 0, so the
    update is -lr x gradient) moves the weights by lr x min(|g|, grad_clip), |g| the gradient's
    L2 norm computed here by hand; the input is scaled so that |g| exceeds the clip."""
    data = load_dataset("digits", seed=0, limit=32)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, weight_decay=0.0, seed=3)
    ref = _LinearPaths(data, scale=100.0)
    loss = torch.nn.functional.cross_entropy(ref(data.x_train), data.y_train)
    g = torch.cat([t.flatten() for t in torch.autograd.grad(loss, ref.weight_parameters())])
    raw = float(g.norm())
    assert raw > 5 * GRAD_CLIP
    net = _LinearPaths(data, scale=100.0)
    before = torch.cat([p.detach().flatten().clone() for p in net.weight_parameters()])
    train_supernet(net, lambda rng: (None, {}), data, cfg, grad_clip=grad_clip)
    after = torch.cat([p.detach().flatten() for p in net.weight_parameters()])
    moved = float((after - before).norm())
    expected = cfg.lr * (raw if grad_clip is None else min(raw, grad_clip))
    # Measured: float32 round-off of the step and of the norms, relative error below 1e-5; bound 1e-4.
    assert moved == pytest.approx(expected, rel=1e-4)


def test_spos_refuses_a_non_positive_grad_clip():
    data = load_dataset("digits", seed=0, limit=32)
    with pytest.raises(ValueError, match="grad_clip=0.0 must be positive or None"):
        train_supernet(_LinearPaths(data, 1.0), lambda rng: (None, {}), data, TrainConfig(epochs=1),
                       grad_clip=0.0)


def test_recalibrated_bn_statistics_are_the_plain_average_over_the_fixed_batches(digits):
    """The stem BN's running mean after recalibration is the mean of the per-batch channel
    means of the stem conv's output over the seeded batches (direct encoding: the stem conv
    sees the images)."""
    spec = load_spec("darts_snn", overrides=TINY)
    arch = resolve(spec, {})
    cell = SearchSpace(spec).sample(np.random.default_rng(0)).arch["cell"]
    torch.manual_seed(0)
    model = GraphNet(plan_network(arch, cell, digits.input_shape, digits.num_classes), arch)
    model.module_of("stem.bn").running_mean.fill_(5.0)
    recalibrate_bn(model, digits.x_train, batches=3, batch_size=16, seed=4)
    order = torch.randperm(len(digits.x_train), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        means = [model.module_of("stem.conv")(digits.x_train[order[b * 16:(b + 1) * 16]]).mean(dim=(0, 2, 3))
                 for b in range(3)]
    expected = torch.stack(means).mean(0)
    # Measured: the two float32 averages (values up to 0.11) differ by 1.5e-8; the bound is 10x that.
    assert torch.allclose(model.module_of("stem.bn").running_mean, expected, rtol=0, atol=1.5e-7)
    assert model.module_of("stem.bn").momentum == 0.1 and not model.training


def test_evaluator_scores_inherited_weights_one_supernet_per_shape(digits, tmp_path):
    """Candidates that differ in timesteps or neuron settings share a supernet; another
    channel count trains another; the scored network is its path's weights with recalibrated
    BN statistics; a resumed evaluator reads the supernet back instead of training it."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    objs = ("accuracy", "energy", "latency", "area")
    ev = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    ev.attach_run_dir(tmp_path, resume=False, seed=5)
    cand = space.sample(np.random.default_rng(2))
    hp = dict(cand.arch["hp"])
    flip = {"timesteps": 3 - hp["timesteps"], "neuron.type": "plif" if hp["neuron.type"] == "lif" else "lif"}
    twin = space.make(cell=cand.arch["cell"], hp={**hp, **flip}, hw=cand.hw)
    channels = {"macro.stem.channels": 12 - hp["macro.stem.channels"]}
    other = space.make(cell=cand.arch["cell"], hp={**hp, **channels}, hw=cand.hw)
    r1, r2, r3 = (ev.evaluate(c, 0) for c in (cand, twin, other))
    for r in (r1, r2, r3):
        assert r.status in ("ok", "infeasible") and r.metrics["accuracy_source"] == "inherited"
        assert 0.0 <= r.objectives["accuracy"] <= 1.0
    assert r1.metrics["supernet"] == r2.metrics["supernet"] != r3.metrics["supernet"]
    assert len(list((tmp_path / "supernets").iterdir())) == 2
    # The scored network: the path's weights, BN statistics recalibrated.
    key, sup = r1.metrics["supernet"], ev._supernets[r1.metrics["supernet"]][0]
    arch, _ = space.resolve(cand)
    path = sup.path_state_dict(arch, cand.arch["cell"])
    scored = ev.load_trained(r1.metrics["training"]).state_dict()
    assert scored.keys() == path.keys()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    assert all(torch.equal(scored[k], path[k]) for k in path if not k.endswith(stats))
    assert any(not torch.equal(scored[k], path[k]) for k in path if k.endswith("running_mean"))
    # A fresh evaluator on the same run directory reads the checkpoint: same inherited score.
    again = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    again.attach_run_dir(tmp_path, resume=True, seed=5)
    again._store = type(again._store)()  # score afresh from the supernet, not from the stored record
    stamp = (tmp_path / "supernets" / key / "state.json").stat().st_mtime_ns
    assert again.evaluate(cand, 0).objectives == r1.objectives
    assert (tmp_path / "supernets" / key / "state.json").stat().st_mtime_ns == stamp


def test_evaluator_trains_its_supernets_with_the_gradient_clip(digits, tmp_path, monkeypatch):
    """The evaluator's supernet training clips at GRAD_CLIP, and the clip is part of what the
    checkpoint says the training is (so a training with another clip is another supernet)."""
    import nasco.evaluate._spos as spos

    seen = []
    real = spos.train_supernet

    def spy(*args, **kwargs):
        seen.append(kwargs.get("grad_clip", "default"))
        return real(*args, **kwargs)

    monkeypatch.setattr(spos, "train_supernet", spy)
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    ev = OneShotEvaluator(space, digits, ("accuracy", "energy", "latency", "area"), epochs=1, hw_inner=False)
    ev.attach_run_dir(tmp_path, resume=False, seed=5)
    ev.evaluate(space.sample(np.random.default_rng(2)), 0)
    assert seen == [GRAD_CLIP]
    (state,) = (tmp_path / "supernets").glob("*/state.json")
    assert json.loads(state.read_text())["inputs"]["grad_clip"] == GRAD_CLIP


def test_make_evaluator_oneshot_settings_and_errors():
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    ev, facts = make_evaluator("oneshot", space=space, objectives=None, seed=0, epochs=1, limit=60)
    assert isinstance(ev, OneShotEvaluator) and ev.epochs == 1 and facts["evaluator"] == "oneshot"
    assert ev.trains is False
    with pytest.raises(NascoError, match="unknown setting max_seconds"):
        make_evaluator("oneshot", space=space, objectives=None, seed=0, max_seconds=5)
    two = SearchSpace([load_spec("darts_snn", overrides=TINY)] * 2)
    with pytest.raises(NascoError, match="evaluator oneshot: expected a single-task space"):
        make_evaluator("oneshot", space=two, objectives=("accuracy",), seed=0, limit=60)


def _cli(capsys, *argv):
    from nasco.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code)
    return code, capsys.readouterr().err


def test_cli_search_oneshot_writes_a_run_and_resumes(tmp_path, capsys):
    """`nasco search --evaluator oneshot` writes the ledger, pareto.csv and summary; --resume
    to a larger budget keeps the rows and reads the supernets back instead of training them."""
    out = tmp_path / "run"
    argv = ["search", "--space", "darts_snn", "--hw", "asic_template", "--evaluator", "oneshot",
            "--epochs", "1", "--limit", "100", "--set", "macro.cells=1", "--set", "macro.reductions=[]",
            "--set", "macro.stem.channels={choice: [4, 8]}", "--set", "timesteps=1", "--hw-inner", "off",
            "--seed", "2", "--quiet", "--out", str(out)]
    assert _cli(capsys, *argv, "--budget", "3")[0] == 0
    for name in ("ledger.jsonl", "pareto.csv", "summary.json", "run.json"):
        assert (out / name).is_file(), name
    rows = (out / "ledger.jsonl").read_text().splitlines()
    assert len(rows) == 3
    first = [json.loads(r) for r in rows]
    assert all(r["metrics"]["accuracy_source"] == "inherited" for r in first if r["status"] != "failed")
    assert json.loads((out / "run.json").read_text())["budget_counts"] == "evaluations"
    stamps = {p: p.stat().st_mtime_ns for p in (out / "supernets").glob("*/state.json")}
    assert stamps
    assert _cli(capsys, *argv, "--budget", "5", "--resume")[0] == 0
    again = (out / "ledger.jsonl").read_text().splitlines()
    assert len(again) == 5 and again[:3] == rows
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_cli_oneshot_rejects_max_train_seconds_in_one_line(tmp_path, capsys):
    code, err = _cli(capsys, "search", "--space", "darts_snn", "--evaluator", "oneshot",
                     "--max-train-seconds", "5", "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--max-train-seconds" in err
    assert "Traceback" not in err


def test_supernet_epochs_default_to_a_multiple_of_the_space_epochs(digits):
    """Without ``epochs`` a supernet trains 16 times the space's epochs (darts_snn: 2 -> 32), and
    the epochs are part of what the supernet's key says it is; ``epochs`` sets them exactly."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    geno = space.sample(np.random.default_rng(2)).arch
    assert space.resolve(space.make(cell=geno["cell"], hp=geno["hp"]))[0].training.epochs == 2
    default = OneShotEvaluator(space, digits, ("accuracy",), hw_inner=False)
    key, inputs, cfg, _ = default._supernet_of(geno)
    assert cfg.epochs == 32 and inputs["training"]["epochs"] == 32
    three = OneShotEvaluator(space, digits, ("accuracy",), epochs=3, hw_inner=False)
    key3, inputs3, cfg3, _ = three._supernet_of(geno)
    assert cfg3.epochs == 3 and inputs3["training"]["epochs"] == 3 and key3 != key


def test_an_evaluator_given_the_supernet_weights_scores_without_training(digits, tmp_path):
    """The weights one evaluator's shared_state made, adopted by another evaluator on the same
    run directory (as a worker's copy is): the same scores, bit for bit, and no training."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    objs = ("accuracy", "energy", "latency", "area")
    rng = np.random.default_rng(2)
    cands = [space.sample(rng) for _ in range(3)]
    driver = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    driver.attach_run_dir(tmp_path, resume=False, seed=5)
    state = driver.shared_state(cands)
    keys = {driver._supernet_of(space.task_archs(c)[0])[0] for c in cands}
    assert len(keys) == 2 and set(state) == keys and sorted(driver._made) == sorted(keys)  # each trained once
    again = driver.shared_state(cands)  # made once: the same values, no training, no new bytes
    assert again.keys() == state.keys() and all(again[k] is state[k] for k in state)
    assert sorted(driver._made) == sorted(keys)
    worker = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    worker.attach_run_dir(tmp_path, resume=True, seed=5)
    worker.adopt_shared_state(state)
    got = [worker.evaluate(c, 0) for c in cands]
    assert worker._made == [] and not any(r.metrics["supernet_trained"] for r in got)
    driver._store = type(driver._store)()  # score afresh from the supernet, not from the stored record
    want = [driver.evaluate(c, 0) for c in cands]
    assert [r.objectives for r in got] == [r.objectives for r in want]
    assert [r.metrics["valid_accuracy"] for r in got] == [r.metrics["valid_accuracy"] for r in want]


def test_a_diverged_supernet_reaches_the_worker_as_its_reason(digits, tmp_path, monkeypatch):
    """A supernet whose training diverged where shared_state made it fails the worker's
    evaluation with the reason the maker's own evaluation records, and is not trained again."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    objs = ("accuracy", "energy", "latency", "area")
    cand = space.sample(np.random.default_rng(2))
    driver = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    driver.attach_run_dir(tmp_path / "driver", resume=False, seed=5)
    monkeypatch.setattr(driver, "_train_supernet", lambda inputs, cfg, arch: "TrainingDiverged: loss is nan")
    state = driver.shared_state([cand])
    assert list(state.values()) == ["TrainingDiverged: loss is nan"]
    worker = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    worker.attach_run_dir(tmp_path / "worker", resume=False, seed=5)
    worker.adopt_shared_state(state)
    got, want = worker.evaluate(cand, 0), driver.evaluate(cand, 0)
    assert (got.status, got.reason) == (want.status, want.reason) == ("failed", want.reason)
    assert "loss is nan" in want.reason and worker._made == []


def test_cli_predictor_guided_search_on_oneshot_scores(tmp_path, capsys):
    """`nasco search --searcher predictor-guided --evaluator oneshot`: every row scored with
    inherited weights, and the searcher's predictor fitted on those one-shot scores once the
    initial batch was told."""
    out = tmp_path / "run"
    tiny = ["--set", "macro.cells=1", "--set", "macro.reductions=[]", "--set",
            "macro.stem.channels={choice: [4, 8]}", "--set", "timesteps={choice: [1, 2]}"]
    code, err = _cli(capsys, "search", "--space", "darts_snn", "--hw", "asic_template",
                     "--evaluator", "oneshot", "--searcher", "predictor-guided",
                     "--searcher-opt", "n_initial=2", "--searcher-opt", "pool_size=20",
                     "--epochs", "1", "--limit", "100", *tiny, "--hw-inner", "off", "--seed", "2",
                     "--budget", "4", "--quiet", "--out", str(out))
    assert code == 0, err
    rows = [json.loads(r) for r in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] in ("ok", "infeasible") for r in rows)
    assert [r["metrics"]["accuracy_source"] for r in rows] == ["inherited"] * 4
    state = json.loads((out / "summary.json").read_text())["searcher_state"]
    assert state["name"] == "predictor-guided" and state["n_asked"] == 4
    # Asks 3 and 4 came from predictors fitted on the results told by then (2, then 3 of them).
    assert state["fitted_n"] == 3
    told = {Candidate.from_json(h["candidate"]).id: h["result"]["objectives"]["accuracy"]
            for h in state["history"]}
    assert told == {r["id"]: r["objectives"]["accuracy"] for r in rows}


# ------------------------------------------------------------------ few-shot supernets
def _with_op(cell, kind, node, src, op):
    """A darts genotype with edge ``src -> node`` of cell ``kind`` carrying ``op`` (the node's
    first kept input replaced by ``src`` when the node does not keep it)."""
    out = {k: [list(e) for e in v] for k, v in cell.items()}
    edges = out[kind][2 * node:2 * node + 2]
    at = next((e for e in edges if e[1] == src), edges[0])
    at[0], at[1] = op, src
    return out


def _darts_op(cell, kind, node, src):
    """The op on edge ``src -> node`` of a darts genotype, by hand; 'none' when absent."""
    ops = [op for op, j in cell[kind][2 * node:2 * node + 2] if j == src]
    assert len(ops) <= 1
    return ops[0] if ops else "none"


def _few_shot_pair(digits, tmp_path, few_shot="normal.n0.e0", epochs=1, ops=("conv_3x3", "avg_pool_3x3")):
    """A few-shot evaluator on a tiny darts_snn and two candidates of one shape that differ
    only in the op on edge n0.e0 of the normal cell."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY))
    ev = OneShotEvaluator(space, digits, ("accuracy",), epochs=epochs, few_shot=few_shot)
    ev.attach_run_dir(tmp_path, resume=False, seed=5)
    cand = space.sample(np.random.default_rng(2))
    a, b = (space.make(cell=_with_op(cand.arch["cell"], "normal", 0, 0, op), hp=cand.arch["hp"])
            for op in ops)
    return space, ev, a, b


def test_few_shot_candidate_inherits_from_the_sub_supernet_of_its_op(digits, tmp_path):
    """Two candidates that differ only in the op on the split edge inherit from two
    sub-supernets (one key and one checkpoint folder each, the edge and op in its inputs); each
    scored network holds its own sub-supernet's path weights (BN statistics recalibrated),
    not the other's."""
    space, ev, a, b = _few_shot_pair(digits, tmp_path)
    ra, rb = ev.evaluate(a, 0), ev.evaluate(b, 0)
    for r, op in ((ra, "conv_3x3"), (rb, "avg_pool_3x3")):
        assert r.status == "ok" and r.metrics["accuracy_source"] == "inherited"
        assert (r.metrics["few_shot_edge"], r.metrics["few_shot_op"]) == ("normal.n0.e0", op)
    assert ra.metrics["supernet"] != rb.metrics["supernet"]
    folders = sorted((tmp_path / "supernets").iterdir())
    assert sorted(p.name for p in folders) == sorted([ra.metrics["supernet"], rb.metrics["supernet"]])
    for r, op in ((ra, "conv_3x3"), (rb, "avg_pool_3x3")):
        state = json.loads((tmp_path / "supernets" / r.metrics["supernet"] / "state.json").read_text())
        assert state["inputs"]["few_shot"] == {"edge": "normal.n0.e0", "op": op}
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for cand, r, other in ((a, ra, rb), (b, rb, ra)):
        arch, _ = space.resolve(cand)
        own = ev._supernets[r.metrics["supernet"]][0].path_state_dict(arch, cand.arch["cell"])
        theirs = ev._supernets[other.metrics["supernet"]][0].path_state_dict(arch, cand.arch["cell"])
        scored = ev.load_trained(r.metrics["training"]).state_dict()
        assert scored.keys() == own.keys()
        weights = [k for k in own if not k.endswith(stats)]
        assert all(torch.equal(scored[k], own[k]) for k in weights)
        assert any(not torch.equal(scored[k], theirs[k]) for k in weights)


@pytest.mark.parametrize("edge,ops", [("normal.n1.e2", ("none", "sep_conv_3x3")),
                                      ("normal.n0.e1", ("max_pool_3x3",))])
def test_few_shot_sub_supernet_training_samples_only_its_op(digits, tmp_path, monkeypatch, edge, ops):
    """Every cell a sub-supernet's training samples (every step of every epoch) has the
    sub-supernet's op on the split edge, read off the genotype by hand; an edge its node may
    drop ('normal.n1.e2': node 1 keeps 2 of 3 inputs) has a sub-supernet 'none' of the cells
    without it. The other edges still vary."""
    import nasco.evaluate._spos as spos

    sampled: dict[str, list] = {}
    real = spos.train_supernet

    def spy(net, sample, data, cfg, **kwargs):
        def recording(rng):
            arch, cell = sample(rng)
            sampled.setdefault(kwargs["checkpoint"].inputs["few_shot"]["op"], []).append(cell)
            return arch, cell
        return real(net, recording, data, cfg, **kwargs)

    monkeypatch.setattr(spos, "train_supernet", spy)
    space = SearchSpace(load_spec("darts_snn", overrides=TINY))
    ev = OneShotEvaluator(space, digits, ("accuracy",), epochs=2, few_shot=edge)
    ev.attach_run_dir(tmp_path, resume=False, seed=5)
    node, src = int(edge.split(".")[1][1:]), int(edge.split(".")[2][1:])
    cand = space.sample(np.random.default_rng(4))
    for op in ops:
        normal = cand.arch["cell"]["normal"]
        cell = _with_op(cand.arch["cell"], "normal", node, src, op) if op != "none" else \
            {**cand.arch["cell"], "normal": normal[:2] + [["conv_1x1", 0], ["conv_1x1", 1]] + normal[4:]}
        assert _darts_op(cell, "normal", node, src) == op
        r = ev.evaluate(space.make(cell=cell, hp=cand.arch["hp"]), 0)
        assert r.status == "ok" and r.metrics["few_shot_op"] == op
    # digits limit 96: 96 training images, 3 batches of 32 per epoch, 2 epochs.
    assert len(digits.y_train) == 96
    assert sorted(sampled) == sorted(ops)
    for op in ops:
        cells = sampled[op]
        assert len(cells) == 3 * 2
        assert all(_darts_op(c, "normal", node, src) == op for c in cells)
        assert len({json.dumps(c, sort_keys=True) for c in cells}) == len(cells)


def test_few_shot_sub_supernet_path_is_exact(digits, tmp_path):
    """On a trained sub-supernet, a candidate's single path, the stand-alone network with the
    extracted weights and the sub-supernet's own mixes fixed to the cell give bit-identical
    logits."""
    space, ev, a, _ = _few_shot_pair(digits, tmp_path)
    r = ev.evaluate(a, 0)
    net = ev._supernets[r.metrics["supernet"]][0]
    arch, _ = space.resolve(a)
    cell = a.arch["cell"]
    x = digits.x_train[:8]
    path = _logits(net.single_path(arch, cell), x)
    alone = GraphNet(plan_network(arch, cell, digits.input_shape, digits.num_classes), arch)
    alone.load_state_dict(net.path_state_dict(arch, cell))
    assert torch.equal(path, _logits(alone, x))
    base = resolve(load_spec("darts_snn", overrides=TINY),
                   {k: v for k, v in a.arch["hp"].items() if not shares_weights(k)})
    net.supernet.fix_cell(cell)
    assert torch.equal(_logits(net.single_path(base, cell), x), _logits(net.supernet, x))


def test_few_shot_resume_continues_each_sub_supernet(digits, tmp_path):
    """One sub-supernet interrupted after epoch 1 of 2, the other trained to the end; a fresh
    evaluator on the run directory continues the first from its own checkpoint and reads the
    second back untouched: both end bit-identical to an uninterrupted run's."""
    space, ev, a, b = _few_shot_pair(digits, tmp_path / "whole", epochs=2)
    keys = [ev.evaluate(c, 0).metrics["supernet"] for c in (a, b)]
    expected = {k: ev._supernets[k][0].state_dict() for k in keys}

    class Stop(Exception):
        pass

    def stop(epoch, metrics):
        if epoch == 1:
            raise Stop

    _, cut, _, _ = _few_shot_pair(digits, tmp_path / "cut", epochs=2)
    with epoch_reporter(stop, validate=False), pytest.raises(Stop):
        cut.evaluate(a, 0)
    cut.evaluate(b, 0)
    root = tmp_path / "cut" / "supernets"
    assert [json.loads((root / k / "state.json").read_text())["epochs"] for k in keys] == [1, 2]
    stamp = (root / keys[1] / "state.json").stat().st_mtime_ns
    torch.manual_seed(12345)  # the resumed training must not depend on the process's RNG state
    again = OneShotEvaluator(space, digits, ("accuracy",), epochs=2, few_shot="normal.n0.e0")
    again.attach_run_dir(tmp_path / "cut", resume=True, seed=5)
    again._store = type(again._store)()  # score afresh from the sub-supernets, not from the stored records
    assert [again.evaluate(c, 0).metrics["supernet"] for c in (a, b)] == keys
    assert (root / keys[1] / "state.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in root.iterdir()) == sorted(keys)
    for k in keys:
        assert json.loads((root / k / "state.json").read_text())["epochs"] == 2
        got = again._supernets[k][0].state_dict()
        assert got.keys() == expected[k].keys()
        assert all(torch.equal(got[n], expected[k][n]) for n in got), k


def test_make_evaluator_few_shot_records_the_split_and_refuses_an_unknown_edge():
    space = SearchSpace(load_spec("darts_snn", overrides=TINY))
    ev, facts = make_evaluator("oneshot", space=space, objectives=None, seed=0, few_shot=True, limit=60)
    ops = ["skip_connect", "conv_1x1", "conv_3x3", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3",
           "max_pool_3x3"]
    assert facts["few_shot_split"] == {"edge": "normal.n0.e0", "ops": ops}
    assert facts["evaluator_options"]["few_shot"] is True
    _, facts = make_evaluator("oneshot", space=space, objectives=None, seed=0, few_shot="reduce.n2.e3",
                              limit=60)
    assert facts["few_shot_split"] == {"edge": "reduce.n2.e3", "ops": ops + ["none"]}
    nb = SearchSpace(load_spec("nb201", overrides=SMALL["nb201"]))
    _, facts = make_evaluator("oneshot", space=nb, objectives=None, seed=0, few_shot=True, limit=60)
    assert facts["few_shot_split"] == {"edge": "n1.e0", "ops": ["none", "skip_connect", "nor_conv_1x1",
                                                                 "nor_conv_3x3", "avg_pool_3x3"]}
    with pytest.raises(NascoError, match=r"few_shot: expected an edge of nb201's dense cell, nI.eJ .*, found "
                                         r"'n4.e0'; did you mean"):
        make_evaluator("oneshot", space=nb, objectives=None, seed=0, few_shot="n4.e0", limit=60)


def test_cli_few_shot_errors_are_one_line(tmp_path, capsys):
    base = ["search", "--space", "darts_snn", "--set", "macro.cells=1", "--set", "macro.reductions=[]",
            "--limit", "60", "--quiet"]
    code, err = _cli(capsys, *base, "--evaluator", "oneshot", "--few-shot", "normal.n0.e9",
                     "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "few_shot: expected an edge of darts_snn's darts cell" in err and "'normal.n0.e9'" in err
    code, err = _cli(capsys, *base, "--few-shot", "--out", str(tmp_path / "y"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--few-shot applies to --evaluator oneshot" in err and "not train" in err


def test_cli_search_few_shot_records_the_split_and_resumes_with_it(tmp_path, capsys):
    """`--few-shot` is a recorded evaluator setting: the run's rows name their sub-supernet,
    run.json holds the split, a --resume without the flag keeps it (no supernet trained
    again), and a --resume with another edge is refused in one line."""
    out = tmp_path / "run"
    argv = ["search", "--space", "darts_snn", "--evaluator", "oneshot", "--epochs", "1", "--limit", "100",
            "--set", "macro.cells=1", "--set", "macro.reductions=[]", "--set", "macro.stem.channels=4",
            "--set", "timesteps=1", "--seed", "2", "--quiet", "--out", str(out)]
    assert _cli(capsys, *argv, "--few-shot", "--budget", "2")[0] == 0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["evaluator_options"]["few_shot"] is True
    assert run["config"]["few_shot_split"]["edge"] == "normal.n0.e0"
    rows = [json.loads(r) for r in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        op = _darts_op(r["arch"]["cell"], "normal", 0, 0)
        assert (r["metrics"]["few_shot_edge"], r["metrics"]["few_shot_op"]) == ("normal.n0.e0", op)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "supernets").glob("*/state.json")}
    assert len(stamps) == len({r["metrics"]["few_shot_op"] for r in rows})
    assert _cli(capsys, *argv, "--budget", "3", "--resume")[0] == 0
    again = [json.loads(r) for r in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(again) == 3 and again[:2] == rows and again[2]["metrics"]["few_shot_edge"] == "normal.n0.e0"
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    code, err = _cli(capsys, *argv, "--few-shot", "normal.n0.e1", "--budget", "4", "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--few-shot" in err


# ---------------------------------------------------------------------- supernet ensembles
def test_ensemble_scores_the_mean_of_its_supernets(digits, tmp_path):
    """supernets=2: replica 0 is the single supernet, replica 1 another one (its own key, seed and
    checkpoint); the candidate's float accuracy, spike rates and quantized accuracy are the means
    of the two path networks', each recomputed here from its supernet with the public functions;
    a resumed evaluator scores the same without training."""
    from nasco.evaluate import calibrate, quantized_accuracy
    from nasco.evaluate._precision import as_precision
    from nasco.evaluate._train import evaluate_accuracy

    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    objs = ("accuracy", "energy", "latency", "area")
    cand = space.sample(np.random.default_rng(2))
    ens = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False, supernets=2)
    ens.attach_run_dir(tmp_path / "ens", resume=False, seed=5)
    one = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False)
    one.attach_run_dir(tmp_path / "one", resume=False, seed=5)
    r, r1 = ens.evaluate(cand, 0), one.evaluate(cand, 0)
    assert r.metrics["supernets"] == 2 and "supernets" not in r1.metrics
    assert r.metrics["supernet"] == r1.metrics["supernet"]  # replica 0 is the single supernet
    assert len(ens._supernets) == 2 and len(list((tmp_path / "ens" / "supernets").iterdir())) == 2
    geno = space.task_archs(cand)[0]
    keys = [ens._supernet_of(geno, k)[0] for k in range(2)]
    assert keys[0] == r.metrics["supernet"] != keys[1]
    arch, _ = space.resolve(cand)
    plan = plan_network(arch, cand.arch["cell"], digits.input_shape, digits.num_classes)
    members = ens._store.get(r.metrics["training"]).inputs["ensemble"]
    assert len(members) == 2 and members[0] == r1.metrics["training"]
    accs, rates, quant = [], [], []
    bits = r.metrics["precision"]  # the proposed configuration's widths
    precision = as_precision((bits["weight"], bits["activation"], bits["membrane"]), spiking=True)
    assert not precision.is_float()
    for key, member in zip(keys, members):
        model = GraphNet(plan, arch)
        model.load_state_dict(ens._supernets[key][0].path_state_dict(arch, cand.arch["cell"]))
        recalibrate_bn(model, digits.x_train, batches=ens.recalibration_batches, batch_size=32, seed=5)
        accs.append(evaluate_accuracy(model, digits.x_valid, digits.y_valid))
        rates.append(ens._store.get(member).spike_rates)
        seed = int(ens._store.get(member).inputs["seed"])
        quant.append(quantized_accuracy(model, digits, precision, ranges=calibrate(model, digits, seed=seed),
                                        seed=seed))
    assert accs[0] != accs[1] or rates[0] != rates[1]  # two supernets, two scores
    assert r.metrics["valid_accuracy"] == (accs[0] + accs[1]) / 2
    assert r1.metrics["valid_accuracy"] == accs[0]
    assert r.metrics["spike_rates"] == {k: round((rates[0][k] + rates[1][k]) / 2, 6) for k in rates[0]}
    assert r.objectives["accuracy"] == (quant[0] + quant[1]) / 2
    again = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False, supernets=2)
    again.attach_run_dir(tmp_path / "ens", resume=True, seed=5)
    again._store = type(again._store)()  # score afresh from the supernets' checkpoints
    states = sorted((tmp_path / "ens" / "supernets").glob("*/state.json"))
    stamps = [f.stat().st_mtime_ns for f in states]
    assert again.evaluate(cand, 0).objectives == r.objectives
    assert [f.stat().st_mtime_ns for f in states] == stamps  # read back, not trained again


def test_ensemble_settings_and_errors(tmp_path, capsys):
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    ev, facts = make_evaluator("oneshot", space=space, objectives=None, seed=0, supernets=3, limit=60)
    assert ev.supernets == 3 and facts["evaluator_options"]["supernets"] == 3
    ev, facts = make_evaluator("oneshot", space=space, objectives=None, seed=0, limit=60)
    assert ev.supernets == 1 and facts["evaluator_options"]["supernets"] is None
    with pytest.raises(NascoError, match="supernets must be a positive integer"):
        make_evaluator("oneshot", space=space, objectives=None, seed=0, supernets=0, limit=60)
    base = ["search", "--space", "darts_snn", "--limit", "60", "--quiet"]
    code, err = _cli(capsys, *base, "--supernets", "2", "--out", str(tmp_path / "x"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--supernets applies to --evaluator oneshot" in err and "not train" in err
    code, err = _cli(capsys, *base, "--evaluator", "oneshot", "--supernets", "0",
                     "--out", str(tmp_path / "y"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "expected an integer >= 1, found '0'" in err


def test_an_ensemble_shares_every_replica_with_its_workers(digits, tmp_path):
    """shared_state makes each replica of each supernet once; a worker that adopts them scores
    every candidate as the driver does, bit for bit, and trains nothing."""
    space = SearchSpace(load_spec("darts_snn", overrides=TINY), load_spec("asic_template"))
    objs = ("accuracy", "energy", "latency", "area")
    rng = np.random.default_rng(2)
    cands = [space.sample(rng) for _ in range(3)]
    driver = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False, supernets=2)
    driver.attach_run_dir(tmp_path, resume=False, seed=5)
    state = driver.shared_state(cands)
    keys = {driver._supernet_of(space.task_archs(c)[0], r)[0] for c in cands for r in range(2)}
    assert len(keys) == 4 and set(state) == keys and sorted(driver._made) == sorted(keys)
    worker = OneShotEvaluator(space, digits, objs, epochs=1, hw_inner=False, supernets=2)
    worker.attach_run_dir(tmp_path / "worker", resume=False, seed=5)
    worker.adopt_shared_state(state)
    got = [worker.evaluate(c, 0) for c in cands]
    assert worker._made == [] and not any(r.metrics["supernet_trained"] for r in got)
    want = [driver.evaluate(c, 0) for c in cands]
    assert [r.objectives for r in got] == [r.objectives for r in want]
