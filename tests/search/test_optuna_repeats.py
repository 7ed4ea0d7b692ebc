"""The study an Optuna searcher stores (the one optuna-dashboard opens) holds one trial per
evaluation: repeats the sampler proposed are counted on the trial after them, not stored as
trials, and the proposals (hence the ledger) are those of a run that stored them as FAIL trials."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState, create_trial

from nasco.cli import main
from nasco.space import Candidate

STUDY = "nasco-optuna-tpe-seed0"
ARGS = ["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--objectives",
        "accuracy,eyeriss_latency", "--searcher", "optuna-tpe", "--seed", "0", "--quiet"]
# The ledger ids of `nasco search ARGS --budget 50`, produced by nasco before this storage layout
# (commit d25c415, which stored every repeat as a FAIL trial: 220 trials, 170 of them FAIL, 50
# COMPLETE). The property is that the proposals did not change, so these ids are the reference.
# From its 21st ask on, TPE proposes only repeats and each ask ends in the random fallback.
IDS_BEFORE = [
    "344001304d4505b4", "1b2f604b5d926bdd", "43d817f2adbcf708", "b347d1b98a59d2c0", "cbdbbb2760ffa7c3",
    "06939a6ebeb36c12", "c491d72f68e6f34d", "f2dd1b039441d17d", "4aefd352cebe040c", "03facf9e294c8476",
    "797dbaed74fd690f", "381f6ee968f3c068", "39139025740a4078", "393f09fb15a075c2", "8f551c7231076fb8",
    "e15928282e1af7aa", "075c740b05c64562", "23092048b3347468", "32dc978a973b5af1", "3931f279dc80662d",
    "c009033bbd88cbfe", "6282005b919b0799", "260cb2c30a80ab5b", "8c4a0d971758ab74", "33368f691ddf1fae",
    "b004a4e4e2d887c2", "d9c27f95fc708a29", "9d2a0a697cf835a8", "9632db00ab03c510", "4aa28119688d6aa6",
    "c6e2bb56b3eca6cd", "a824ae160e7a5f51", "02d41cafd6b6c9c7", "dcf5b89c98f846ed", "f60c925fe12062f2",
    "93a68f40fed2a021", "7378c6797da75f2b", "15a8bdd077348121", "a0f6dbc491a9f092", "b6c95864c6e5344f",
    "b8fba246735fbac1", "8deff84a75b578ed", "65cbb4c6fe575af9", "9ea3a208197a3899", "f171aa76bdca1dad",
    "1270b8358cf57a21", "73c8c9aead6a86c0", "fc4dff4650cf27aa", "ed3ac66bbda45479", "07701efbbc07ce6c",
]
REPEATS_BEFORE = 170  # the FAIL trials of that run
# With one objective (accuracy), `--budget 50` by the same commit: 58 trials, 8 FAIL (repeats
# before asks 22, 35, 36, 37 and 40, so a run resumed after ask 25 depends on the trial numbers
# of the 3 repeats before it: TPE is reseeded from the trial number).
ARGS_1 = [a if a != "accuracy,eyeriss_latency" else "accuracy" for a in ARGS]
IDS_BEFORE_1 = [
    "344001304d4505b4", "1b2f604b5d926bdd", "43d817f2adbcf708", "b347d1b98a59d2c0", "cbdbbb2760ffa7c3",
    "06939a6ebeb36c12", "c491d72f68e6f34d", "f2dd1b039441d17d", "4aefd352cebe040c", "03facf9e294c8476",
    "1128757d760da889", "5d389826240f9288", "ad0be76e41166909", "5a40775a79ebcbb4", "59ddb7974a2b8763",
    "4c83a50897dde7fa", "f9dadaa53544097c", "d112a1677a7d5b65", "07d1e682feb3d2ef", "43dc553743ab448d",
    "54ea1848bca9f30c", "c113f05a97eb6095", "c5a17d25e23f3c21", "c8dd679821019d76", "52f9ecd7712ff695",
    "2721345253fa6e6d", "0235e874da648bdc", "98f70c1697478823", "be509786ae4b98ff", "7caebd0a8bbb4aa4",
    "18f80f024c087f21", "21018cf8ba44cb93", "9fd7c19be5e73056", "7c7ccbc17113ad0f", "fa02f68c96284b14",
    "f3aecdeaf754633e", "b4d6bbeb6578854a", "949b6914840628c1", "688fae4b4351f8fa", "577775711fec73bf",
    "4c06efade4d95c5c", "3b65a4da61e37d70", "3cac614d476f3b33", "0186fed01fbdbe63", "63de98f046f8c258",
    "5ed0f09d5d2c0d8c", "f134779248cae298", "f8e46cc8cf3e166a", "ee708c770bd3dc83", "9ec6cab468b728e7",
]
REPEATS_BEFORE_1 = 8


def _ledger_ids(out: Path) -> list[str]:
    lines = (out / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines if line.strip()]


def _stored(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{out / 'optuna.db'}")


def _check_stored(out: Path, ids: list[str], repeats: int) -> None:
    """One COMPLETE trial per ledger row, in ledger order; repeats only as counts and hidden records."""
    trials = _stored(out).trials
    assert Counter(t.state.name for t in trials) == {"COMPLETE": 50}
    assert [Candidate.from_json(t.user_attrs["nasco_candidate"]).id for t in trials] == ids
    assert sum(t.user_attrs["nasco_repeats"] for t in trials) == repeats
    asked: set[str] = set()
    for t in trials:
        hidden = t.system_attrs["nasco:repeats"]
        assert len(hidden) == t.user_attrs["nasco_repeats"]
        # Each hidden record is a proposal of a candidate already asked.
        assert {Candidate.from_json(r["user_attrs"]["nasco_candidate"]).id for r in hidden} <= asked
        asked.add(Candidate.from_json(t.user_attrs["nasco_candidate"]).id)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCO_CACHE", str(tmp_path / "cache"))


def test_repeats_are_not_stored_as_trials_and_proposals_are_unchanged(tmp_path):
    out = tmp_path / "run"
    assert main([*ARGS, "--budget", "50", "--out", str(out)]) == 0
    assert _ledger_ids(out) == IDS_BEFORE
    _check_stored(out, IDS_BEFORE, REPEATS_BEFORE)


def test_resume_rebuilds_the_samplers_study_from_the_hidden_repeats(tmp_path):
    out = tmp_path / "run"
    assert main([*ARGS_1, "--budget", "25", "--out", str(out)]) == 0
    assert main([*ARGS_1, "--budget", "50", "--out", str(out), "--resume"]) == 0
    assert _ledger_ids(out) == IDS_BEFORE_1
    _check_stored(out, IDS_BEFORE_1, REPEATS_BEFORE_1)


def _to_repeat_trials(out: Path) -> None:
    """Rewrite the stored study as nasco stored it before: each repeat a FAIL trial of its own."""
    study = _stored(out)
    trials, attrs, directions = study.trials, study.user_attrs, study.directions
    optuna.delete_study(study_name=STUDY, storage=f"sqlite:///{out / 'optuna.db'}")
    old = optuna.create_study(study_name=STUDY, storage=f"sqlite:///{out / 'optuna.db'}",
                              directions=directions)
    for k, v in attrs.items():
        old.set_user_attr(k, v)
    for t in trials:
        for r in t.system_attrs["nasco:repeats"]:
            old.add_trial(create_trial(
                state=TrialState.FAIL, params=r["params"], user_attrs=r["user_attrs"],
                system_attrs=r["system_attrs"],
                distributions={k: json_to_distribution(d) for k, d in r["distributions"].items()}))
        old.add_trial(create_trial(
            state=t.state, values=t.values, params=t.params, distributions=t.distributions,
            user_attrs={k: v for k, v in t.user_attrs.items() if k != "nasco_repeats"},
            system_attrs={k: v for k, v in t.system_attrs.items() if k != "nasco:repeats"}))


def test_a_study_with_repeats_as_fail_trials_resumes(tmp_path):
    out = tmp_path / "run"
    assert main([*ARGS_1, "--budget", "25", "--out", str(out)]) == 0
    _to_repeat_trials(out)
    n_old = len(_stored(out).trials)
    assert n_old == 25 + 3
    assert main([*ARGS_1, "--budget", "50", "--out", str(out), "--resume"]) == 0
    assert _ledger_ids(out) == IDS_BEFORE_1
    trials = _stored(out).trials
    # The old trials stay as they were; the new ones follow the new layout.
    assert len(trials) == n_old + 25
    assert Counter(t.state.name for t in trials[n_old:]) == {"COMPLETE": 25}
    old_repeats = [t for t in trials[:n_old] if "nasco_repeat_of" in t.user_attrs]
    assert len(old_repeats) == n_old - 25 and {t.state.name for t in old_repeats} == {"FAIL"}


def test_trials_running_when_a_run_stops_are_finished_on_resume(tmp_path):
    """Asked and not told (the driver died mid-window): RUNNING in the stored study, replayed
    first on resume, and finished there with their values."""
    from nasco.core import Result
    from nasco.dsl import load_spec
    from nasco.search import make_searcher
    from nasco.space import SearchSpace

    space = SearchSpace(load_spec("nb201"))
    first = make_searcher("optuna-tpe", space, ("accuracy",), 0)
    first.attach_run_dir(tmp_path, resume=False)
    asked = first.ask(3)
    first.tell(asked[0], Result("ok", {"accuracy": 0.25}))
    states = [t.state.name for t in _stored(tmp_path).trials]
    assert states == ["COMPLETE", "RUNNING", "RUNNING"]
    again = make_searcher("optuna-tpe", space, ("accuracy",), 0)
    again.attach_run_dir(tmp_path, resume=True)
    assert [c.id for c in again.ask(3)] == [c.id for c in asked]
    for i, c in enumerate(asked):  # the driver's replay tells every one; the first was told already
        again.tell(c, Result("ok", {"accuracy": 0.25 + i / 10}))
    trials = _stored(tmp_path).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.values for t in trials] == [[0.25], [0.35], [0.45]]
    assert [t.constraints for t in trials] == [{"violation": 0.0}] * 3
