"""Tests for ``scalelaw fit``: output formats, saved files, and one-line errors (exit 2)."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from _cli_run import run

from scalelaw.fit.result import load_fit


@pytest.fixture
def table(tmp_path):
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 3e9, 4), np.geomspace(2e8, 2e11, 4)))
    L = 1.8 + 400 / N**0.34 + 2000 / D**0.37
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(path, index=False)
    return path


def test_json_and_save(table, tmp_path, capsys):
    save = tmp_path / "fit.json"
    code, out, err = run(["fit", str(table), "--n", "params", "--d", "tokens", "--json",
                          "--save", str(save)], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["law"] == "chinchilla" and data["n_points"] == 16
    assert data["params"]["alpha"] == pytest.approx(0.34, rel=1e-3)
    assert load_fit(save).params == data["params"]


def test_table_output_and_plot(table, tmp_path, capsys):
    plot = tmp_path / "fit.png"
    code, out, _ = run(["fit", str(table), "--n", "params", "--d", "tokens", "--plot",
                        str(plot)], capsys)
    assert code == 0
    assert "alpha" in out and "objective" in out
    assert plot.stat().st_size > 1000


def bad_tables(df):
    return {
        "missing": (df.drop(columns="tokens"), "column 'tokens'"),
        "nan": (df.assign(loss=np.r_[np.nan, df.loss[1:]]), "NaN"),
        "inf": (df.assign(params=np.r_[np.inf, df.params[1:]]), "NaN/inf"),
        "nonpositive_n": (df.assign(params=np.r_[0.0, df.params[1:]]), "must be > 0"),
        "nonpositive_d": (df.assign(tokens=-df.tokens), "must be > 0"),
        "few": (df.head(4), "need at least 5"),
        "dup": (pd.concat([df, df.tail(1)]), "duplicates"),
    }


@pytest.mark.parametrize("case", ["missing", "nan", "inf", "nonpositive_n", "nonpositive_d",
                                  "few", "dup", "law"])
def test_bad_input_one_line_exit_2(case, table, tmp_path, capsys):
    df = pd.read_csv(table)
    path, law, message = table, "chinchilla", "unknown law"
    if case != "law":
        bad, message = bad_tables(df)[case]
        path = tmp_path / "bad.csv"
        bad.to_csv(path, index=False)
    else:
        law = "nope"
    save, plot = tmp_path / "out.json", tmp_path / "out.png"
    code, out, err = run(["fit", str(path), "--law", law, "--n", "params", "--d", "tokens",
                          "--save", str(save), "--plot", str(plot)], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err and out == ""
    assert not save.exists() and not plot.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_file(tmp_path, capsys):
    code, _, err = run(["fit", str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and err.startswith("error: ") and "no such file" in err


def test_farseer_law_uses_the_differential_procedure(tmp_path, capsys):
    from scalelaw.fit.farseer import PUBLISHED, farseer_loss

    N, D = np.meshgrid(5e7 * np.sqrt(2) ** np.arange(10), 2e9 * np.sqrt(2) ** np.arange(8))
    path = tmp_path / "farseer.csv"
    pd.DataFrame({"N": N.ravel(), "D": D.ravel(),
                  "loss": farseer_loss(PUBLISHED, N, D).ravel()}).to_csv(path, index=False)
    code, out, err = run(["fit", str(path), "--law", "farseer", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["law"] == "farseer"
    for k, v in PUBLISHED.items():
        assert result["params"][k] == pytest.approx(v, rel=1e-4), k
    code, _, err = run(["fit", str(path), "--law", "farseer", "--bootstrap", "10"], capsys)
    assert code == 2 and "not supported" in err


def test_output_directory_checked_before_fitting(table, tmp_path, capsys):
    missing = tmp_path / "nope" / "fit.json"
    code, _, err = run(["fit", str(table), "--save", str(missing)], capsys)
    assert code == 2 and "--save: directory" in err and not (tmp_path / "nope").exists()


def test_holdout_needs_an_n_input(tmp_path, capsys):
    C = np.geomspace(1e18, 1e22, 8)
    path = tmp_path / "lr.csv"
    pd.DataFrame({"C": C, "lr": 0.3 * C**-0.125}).to_csv(path, index=False)
    code, _, err = run(["fit", str(path), "--law", "lr_c", "--loss", "lr", "--holdout-above",
                        "1e8"], capsys)
    assert code == 2 and err.startswith("error: --holdout-above: law 'lr_c' has no N"), err


def test_fit_keeps_exported_programs_in_the_jax_cache(table, tmp_path, monkeypatch, capsys):
    from scalelaw.fit import programs as _programs
    from scalelaw.fit.laws import get_law

    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    monkeypatch.setattr(_programs, "_COMPILED", {})
    argv = ["fit", str(table), "--n", "params", "--d", "tokens", "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    written = list((tmp_path / "jax" / "scalelaw-exported").glob("*/multistart-*.jaxexport"))
    assert len(written) == _programs._exportable(get_law("chinchilla"))  # needs flatbuffers
    assert _programs.export_cache_dir() is None  # scoped to the command
    # the cache turned off (empty JAX_COMPILATION_CACHE_DIR): nothing written, same fit
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")
    monkeypatch.setattr(_programs, "_COMPILED", {})
    code, out2, err = run(argv, capsys)
    assert code == 0, err
    assert json.loads(out2)["objective"] == pytest.approx(json.loads(out)["objective"], rel=1e-12)
    assert list((tmp_path / "jax" / "scalelaw-exported").glob("*/*.jaxexport")) == written


def test_jax_cache_default_is_the_sweep_cache(tmp_path, monkeypatch):
    """Before JAX is imported (as in the CLI): through the environment, in cache_dir()."""
    code = ("import os, sys; from scalelaw.cache import cache_dir, enable_compilation_cache; "
            "assert 'jax' not in sys.modules; folder = enable_compilation_cache(0.0); "
            "assert folder == cache_dir() / 'jax', folder; "
            "print(os.environ['JAX_COMPILATION_CACHE_DIR'], "
            "os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    out = subprocess.run([sys.executable, "-c", code], env=env | {"XDG_CACHE_HOME": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(tmp_path / "scalelaw" / "jax"), "0.0"]
    from scalelaw.cache import enable_compilation_cache

    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")
    assert enable_compilation_cache() is None
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert enable_compilation_cache() == tmp_path / "mine"  # the user's choice wins
