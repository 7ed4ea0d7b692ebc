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
