"""Tests for ``scalelaw fit-isoflop``: the flagged budgets are printed; errors are one line."""

import json

import numpy as np
import pandas as pd
import pytest
from _cli_run import run

from scalelaw.fit.result import load_fit


def asymmetric_table():
    """tests/fit/test_isoflop.py's five asymmetric budgets (optima 10^(7.5 + 0.5 i), a = 0.5)."""
    rows = [(N, 1e17 * 10**i, 2 + 0.3 * (1 - (N / 10 ** (7.5 + 0.5 * i)) ** 0.3) ** 2 - 0.01 * i)
            for i in range(5) for N in np.geomspace(1e7, 1e10, 16)]
    return pd.DataFrame(rows, columns=["N", "C", "loss"])


@pytest.fixture
def runs(tmp_path):
    path = tmp_path / "iso.csv"
    asymmetric_table().rename(columns={"C": "flops"}).to_csv(path, index=False)
    return path


def test_table_names_the_flagged_budget(runs, capsys):
    code, out, err = run(["fit-isoflop", str(runs), "--c", "flops"], capsys)
    assert code == 0, err
    assert "4 of 5 budgets used" in out
    assert "flagged C=1e+21: optimum N*=1.23e+10 outside the sampled N range" in out


def test_akima_json_and_save(runs, tmp_path, capsys):
    save = tmp_path / "iso.json"
    code, out, err = run(["fit-isoflop", str(runs), "--c", "flops", "--method", "akima",
                          "--bootstrap", "30", "--noise", "0.002", "--json", "--save",
                          str(save)], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["metadata"]["method"] == "akima" and data["metadata"]["flagged"] == []
    assert data["params"]["a"] == pytest.approx(0.5, abs=0.02)
    assert "a" in data["stderr"]
    assert load_fit(save).params == data["params"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "cubic"], "error: --method: must be one of parabola, window, akima, given"),
    (["--method", "window", "--window", "2"], "error: --window: must be an integer >= 3"),
    (["--c", "C"], "error: column 'C': not in table"),
])
def test_errors_are_one_line(runs, capsys, argv, message):
    code, out, err = run(["fit-isoflop", str(runs), "--c", "flops", *argv], capsys)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
