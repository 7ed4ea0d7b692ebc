"""Ray Tune's side of a trial: the function each trial runs on a worker (evaluate one job,
report the row), the job <-> trial-config codec, and the reading of why an attempt died.
Used by :class:`nasco.run._tune.TuneExecutor`."""
from __future__ import annotations

import math
from typing import Any

from nasco.run._job import Job, evaluate_job
from nasco.run._ledger import to_json_line
from nasco.run._ray import adopt_shared, load_evaluator
from nasco.space import Candidate

_ROW = "nasco_row"        # the final report: the ledger row as JSON
_EPOCH = "nasco_epoch"    # an epoch report: the epochs reported so far by this trial


def _job_config(job: Job) -> dict[str, Any]:
    cand = job.cand
    return {"seq": job.seq, "seed": job.seed, "candidate": {"id": cand.id, "arch": cand.arch, "hw": cand.hw},
            "failed": job.failed, "info": job.info,
            "trains": None if job.trains is None else list(job.trains)}


def _config_job(config: dict[str, Any]) -> Job:
    c = config["candidate"]
    cand = Candidate.make(c["arch"], c.get("hw") or {})
    if cand.id != c["id"]:
        raise ValueError(f"trial config: candidate id {c['id']} does not match its content ({cand.id})")
    trains = config.get("trains")
    return Job(int(config["seq"]), cand, int(config["seed"]), failed=config.get("failed"),
               info=config.get("info"), trains=None if trains is None else tuple(trains))


def _trial(config: dict[str, Any], run: dict[str, Any]) -> None:
    """One Tune trial: take the shared state its config names (made in the driver), evaluate
    the job in ``config``, report the row (and with ASHA, one result per training epoch
    before it)."""
    from ray import tune

    evaluator, objectives = load_evaluator(run["key"], run["boxed"])
    adopt_shared(run["key"], evaluator, run["shared"], config.get("shared") or ())
    job = _config_job(config)
    metric = run.get("asha_metric")
    if metric:
        from nasco.evaluate._train import epoch_reporter

        count = 0

        def report_epoch(epoch: int, metrics: dict[str, float]) -> None:
            nonlocal count
            count += 1
            tune.report({metric: float(metrics["valid_accuracy"]), "train_loss": float(metrics["train_loss"]),
                         _EPOCH: count})

        with epoch_reporter(report_epoch):
            row = evaluate_job(evaluator, objectives, job, None, run["threads"])
    else:
        row = evaluate_job(evaluator, objectives, job, None, run["threads"])
    flat = {k: v for k, v in row["objectives"].items() if isinstance(v, float) and math.isfinite(v)}
    tune.report({**flat, "nasco_status": row["status"], _ROW: to_json_line(row)})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _death_reason(exc: BaseException | None) -> tuple[str, bool]:
    """(reason, the worker died) for the exception that ended a trial's attempt."""
    if exc is None:
        return "trial failed (Tune recorded no error)", False
    from ray import exceptions as rex

    if isinstance(exc, rex.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, rex.RayActorError):
            exc = cause
        else:
            cause = cause if cause is not None else exc
            while getattr(cause, "__cause__", None) is not None and type(cause).__name__ == "StartTraceback":
                cause = cause.__cause__
            return f"worker error: {type(cause).__name__}: {_first_line(cause)}"[:300], False
    if isinstance(exc, rex.OutOfMemoryError):
        what = "out of memory: Ray's memory monitor killed the worker"
    elif isinstance(exc, rex.NodeDiedError):
        what = "node died"
    elif isinstance(exc, (rex.RayActorError, rex.RayError)):
        what = "worker died"
    else:
        return f"trial error: {type(exc).__name__}: {_first_line(exc)}"[:300], False
    return f"{what}: {type(exc).__name__}: {_first_line(exc)}"[:300], True
