"""Searcher settings of the wrong type are one-line errors naming the setting, for every
registered searcher, before the constructor sees them."""
from __future__ import annotations

import inspect

import pytest

from nasco.cli import main
from nasco.core import NascoError
from nasco.search import DIFFERENTIABLE, SEARCHERS, check_searcher_options, searcher_class

EVERY = sorted([*SEARCHERS.names(), *DIFFERENTIABLE.names()])


def _int_option(name: str) -> str | None:
    params = inspect.signature(searcher_class(name).__init__).parameters
    for key, p in params.items():
        whole = isinstance(p.default, int) and not isinstance(p.default, bool)
        if p.kind == p.KEYWORD_ONLY and key != "seed" and (whole or "int" in str(p.annotation)):
            return key
    return None


WITH_INT = [n for n in EVERY if _int_option(n)]


def test_which_searchers_take_an_integer():
    # random and the TPE / random Optuna samplers take no integer setting.
    assert sorted(set(EVERY) - set(WITH_INT)) == ["optuna-random", "optuna-tpe", "random"]


@pytest.mark.parametrize("name", WITH_INT)
def test_a_word_for_a_number_is_refused(name):
    key = _int_option(name)
    with pytest.raises(NascoError, match=f"searcher {name}: option {key}: expected an integer"):
        check_searcher_options(name, {key: "abc"})
    with pytest.raises(NascoError, match="expected an integer"):
        check_searcher_options(name, {key: 1.5})
    check_searcher_options(name, {key: 3})  # the right type passes


def test_flags_and_numbers():
    with pytest.raises(NascoError, match="option pt: expected true or false"):
        check_searcher_options("darts", {"pt": "yes"})
    check_searcher_options("darts", {"pt": True, "lam": 2})  # an int is a number


def test_cli_reports_the_setting_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "nb201", "--evaluator", "table", "--table", "nb201", "--searcher",
              "evolution", "--searcher-opt", "sample_size=abc", "--budget", "2", "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "option sample_size: expected an integer (default None), found 'abc'" in err
    assert "invalid literal" not in err and "Traceback" not in err
