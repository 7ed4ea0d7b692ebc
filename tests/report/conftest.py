"""One tiny real run for the report's tests: darts_snn x asic_template, two short trainings on a
slice of the embedded digits, with the accelerator's own design specs (so some pairs are
infeasible). ``nasco search`` writes the run's report itself at the end."""
from __future__ import annotations

import pytest

from nasco.cli import main


@pytest.fixture(scope="session")
def train_run(tmp_path_factory):
    """(the run directory, what `nasco search` printed on stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("report") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["search", "--space", "darts_snn", "--hw", "asic_template", "--budget", "2",
                     "--seed", "0", "--limit", "150", "--epochs", "1", "--quiet", "--out", str(out)])
    assert code == 0
    return out, buf.getvalue()


@pytest.fixture(scope="session")
def zigzag_run(tmp_path_factory):
    """A run on a template translated from ZigZag (zigzag_tpu_like, no searched choices): one short
    training of a small darts_snn network (one cell of two nodes, no reduction, 2 timesteps), so
    ZigZag re-costs it in seconds."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("zigzag") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["search", "--space", "darts_snn", "--hw", "zigzag_tpu_like", "--budget", "1",
                     "--seed", "0", "--limit", "100", "--epochs", "1", "--quiet", "--set", "macro.cells=1",
                     "--set", "macro.reductions=[]", "--set", "timesteps=2", "--set", "cell.nodes=2",
                     "--out", str(out)])
    assert code == 0
    return out
