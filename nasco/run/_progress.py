"""The driver's progress: a tqdm bar on a terminal, one line per update elsewhere."""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from typing import TextIO

from tqdm import tqdm

from nasco.core import Objective
from nasco.pareto import display_unit

__all__ = ["Progress"]

# On a terminal: the bar, rewritten in place. Elsewhere (a log file, a StringIO): one
# plain line per update, with the same numbers and no carriage returns.
BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar:12}| {elapsed}<{remaining}, {rate_fmt}{postfix}"
LINE_FORMAT = "{desc} {n_fmt}/{total_fmt}, {elapsed} elapsed, ~{remaining} left, {rate_fmt}{postfix}"
# Where a terminal reports no size, tqdm would take it as -1 columns and rows and draw
# nothing: it gets this many instead, so the line is drawn and never cut.
UNKNOWN_SIZE = 1000
SMOOTHING = 0.3  # tqdm's exponential moving average of the rate: the ETA follows recent evaluations


class _Discard:
    """A file that drops what tqdm writes (the bar is only used for its numbers)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _known_width(stream: TextIO) -> bool:
    """Whether the terminal behind ``stream`` reports a width (a pseudo-terminal may say 0)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """Budget spent (evaluations, or trainings where the budget counts them), counts per
    status, the best value of the first objective (in engineering units), elapsed time and an
    ETA from tqdm's smoothed rate.

    ``stream`` True means stderr, False means silent, a stream means write there. On a
    terminal the status is a tqdm bar updated in place; on any other stream each update is
    one line. While the bar is open (:meth:`open` to :meth:`close`), a training evaluator
    running in this thread reports each epoch of the evaluation in flight (through
    :func:`nasco.evaluate.epoch_reporter`). Rows recorded before :meth:`open` (replayed
    ones) count as done but not towards the rate.
    """

    def __init__(self, stream: bool | TextIO, *, budget: int, objective: Objective, label: str) -> None:
        self.stream: TextIO | None = sys.stderr if stream is True else (stream or None)
        try:
            self.tty = bool(self.stream is not None and self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.budget = budget
        self.objective = objective
        self.label = label
        self.counts = {"ok": 0, "failed": 0, "infeasible": 0}
        self.spent = 0
        self.ahead = 0  # budget of rows whose heads were told and that are not recorded yet
        self.best: float | None = None
        self._bar: tqdm | None = None
        self._hooks = ExitStack()

    @property
    def done(self) -> int:
        """Budget spent so far."""
        return self.spent

    def head(self, cost: int = 1) -> None:
        """A row's head was told (its hardware front is still being made): the evaluations
        after it are numbered past it."""
        self.ahead += int(cost)

    def record(self, status: str, objectives: dict[str, float] | None, cost: int = 1, *,
               headed: bool = False) -> None:
        """Count a row of ``status`` that cost ``cost`` of the budget (``headed``: its head was
        counted by :meth:`head`)."""
        self.counts[status] = self.counts.get(status, 0) + 1
        self.spent += int(cost)
        if headed:
            self.ahead -= int(cost)
        if status == "ok" and objectives and self.objective.name in objectives:
            v = float(objectives[self.objective.name])
            if self.best is None or self.objective.worse(self.best, v):
                self.best = v

    def status(self) -> str:
        """Counts and the best value so far, e.g. ``ok 3 failed 0 infeasible 1, best accuracy 91.2 %``."""
        c = self.counts
        unit, factor = display_unit(self.objective)
        best = "-" if self.best is None else f"{factor * self.best:.4g} {unit}".rstrip()
        return (f"ok {c['ok']} failed {c['failed']} infeasible {c['infeasible']}, "
                f"best {self.objective.name} {best}")

    def open(self) -> None:
        """Start the bar (and its clock) at the rows recorded so far, and listen to the
        epochs of in-process training until :meth:`close`."""
        if self.stream is None or self._bar is not None:
            return
        starting = f"evaluation {self.done + 1}/{self.budget} starting" if self.done < self.budget else ""
        self._bar = tqdm(total=self.budget, initial=self.done, desc=f"[{self.label}]", unit="eval",
                         postfix=self._postfix(starting if self.tty else ""),
                         file=self.stream if self.tty else _Discard(), bar_format=BAR_FORMAT,
                         smoothing=SMOOTHING, leave=True,
                         **({"dynamic_ncols": True} if self.tty and _known_width(self.stream)
                            else {"ncols": UNKNOWN_SIZE, "nrows": UNKNOWN_SIZE}),
                         # Off a terminal every update is a line, so every update refreshes
                         # the rate; on one, tqdm's defaults limit redraws to 10 a second.
                         **({} if self.tty else {"mininterval": 0, "miniters": 1}))
        from nasco.evaluate import epoch_reporter  # the evaluate layer loads torch lazily

        self._hooks.enter_context(epoch_reporter(self.epoch, validate=False))
        if starting and not self.tty:
            self.message(f"[{self.label}] {starting}")

    def show(self) -> None:
        """Bring the bar to the rows recorded so far (on a terminal tqdm redraws it at most
        ten times a second; elsewhere each call writes a line)."""
        if self._bar is None:
            return
        self._set()
        self._bar.update(self.done - self._bar.n)
        self._line()

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """The hook :func:`nasco.evaluate.epoch_reporter` calls after a training epoch."""
        if self._bar is None:
            return
        planned = f"/{int(metrics['epochs'])}" if "epochs" in metrics else ""
        loss = f", train loss {metrics['train_loss']:.4g}" if "train_loss" in metrics else ""
        text = f"evaluation {self.done + self.ahead + 1}/{self.budget}: epoch {epoch}{planned}{loss}"
        if self.tty:
            self._set(text)
            self._bar.refresh()
        else:
            self.message(f"[{self.label}] {text}")

    def _postfix(self, extra: str = "") -> str:
        return self.status() + (f", {extra}" if extra else "")

    def _set(self, extra: str = "") -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(extra), refresh=False)

    def _line(self) -> None:
        """Off a terminal: the bar's numbers as one line."""
        bar = self._bar
        if bar is not None and not self.tty and self.stream is not None:
            line = bar.format_meter(**{**bar.format_dict, "bar_format": LINE_FORMAT})
            # tqdm pads the rate to a fixed width for the bar; a line reads better without.
            self.stream.write(line.replace(",  ", ", ") + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if self.stream is None:
            return
        if self._bar is not None and self.tty:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Leave the final bar on screen and stop listening to epochs."""
        self._hooks.close()
        if self._bar is not None:
            self._set()
            self._bar.close()
            self._bar = None
