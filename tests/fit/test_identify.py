"""Identifiability (issue 10 §3): too few distinct values refused, flat directions warned,
bootstrap intervals that run into a bound reported as unbounded; progress of long fits."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _cli_run import run

from scalelaw.errors import ConfigError
from scalelaw.fit import bootstrap as bs
from scalelaw.fit import progress as prog
from scalelaw.fit.fit_law import fit_law
from scalelaw.fit.identify import IdentifiabilityWarning
from scalelaw.fit.laws import Law, logsumexp3

TRUE = {"A": 400.0, "B": 2000.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}
GRID = {"a": [6.0], "b": [7.5], "e": [0.5], "alpha": [0.4], "beta": [0.4]}


def table(n_values=(1e7, 1e8, 1e9, 3e9), d_values=np.geomspace(2e8, 2e11, 5),  # noqa: B008
          noise=0.0, seed=0) -> pd.DataFrame:
    N, D = (g.ravel() for g in np.meshgrid(n_values, d_values))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    L = L * np.exp(noise * np.random.default_rng(seed).standard_normal(L.shape))
    return pd.DataFrame({"N": N, "D": D, "loss": L})


def no_identifiability_warnings(**kw) -> object:  # noqa: ANN003
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_law(**kw)
    assert not [w for w in caught if issubclass(w.category, IdentifiabilityWarning)], \
        [str(w.message) for w in caught]
    return res


# ------------------------------------------------------------------ distinct values
def test_two_sizes_are_refused_naming_the_column_and_parameters() -> None:
    """With E free, two values of N fix one combination of A and alpha: refused."""
    with pytest.raises(ConfigError, match=r"^column 'N': 2 distinct values of N; law "
                                          r"'chinchilla' needs at least 3 to determine A, alpha"):
        fit_law(table(n_values=(1e8, 1e9)), init_grid=GRID)
    with pytest.raises(ConfigError, match=r"^column 'tokens': 2 distinct values of D; .* "
                                          r"needs at least 3 to determine B, beta"):
        fit_law(table(d_values=(1e9, 1e10)).rename(columns={"D": "tokens"}), d="tokens",
                init_grid=GRID)


def test_two_sizes_with_e_fixed_fit_without_warning() -> None:
    """E known: two sizes determine A and alpha, so no refusal and no flat direction."""
    res = no_identifiability_warnings(table=table(n_values=(1e8, 1e9)), fixed={"E": 1.8},
                                      init_grid=GRID, progress=False)
    assert res.params["alpha"] == pytest.approx(TRUE["alpha"], rel=1e-4)
    assert "undetermined" not in res.metadata


# ------------------------------------------------------------------ flat curvature
def _redundant(p, x):  # noqa: ANN001, ANN202
    """Chinchilla with log A split into a1 + a2: only their sum is determined."""
    lN, lD = jnp_log(x["N"]), jnp_log(x["D"])
    return logsumexp3(p["a1"] + p["a2"] - p["alpha"] * lN, p["b"] - p["beta"] * lD, p["e"])


def jnp_log(v):  # noqa: ANN001, ANN201
    import jax.numpy as jnp

    return jnp.log(v)


REDUNDANT = Law("redundant_chinchilla", ("a1", "a2", "b", "e", "alpha", "beta"), _redundant,
                ("N", "D"), {"a1": [3.0], "a2": [3.0], "b": [7.5], "e": [0.5], "alpha": [0.4],
                             "beta": [0.4]}, log_params={"a1": "A1", "a2": "A2", "b": "B",
                                                         "e": "E"})


def test_flat_direction_is_warned_naming_the_parameters() -> None:
    with pytest.warns(IdentifiabilityWarning,
                      match=r"^A1, A2: not determined by the data \(law 'redundant_chinchilla'"):
        res = fit_law(table(), REDUNDANT, progress=False)
    assert res.metadata["undetermined"][0]["params"] == ["A1", "A2"]
    # the product is determined (noise-free data): A1 * A2 is Chinchilla's A
    assert res.params["A1"] * res.params["A2"] == pytest.approx(TRUE["A"], rel=1e-4)


def test_epoch_and_noisy_grids_do_not_warn() -> None:
    from test_fit_law import epoch_table

    no_identifiability_warnings(table=table(noise=0.01), init_grid=GRID, progress=False)
    no_identifiability_warnings(table=epoch_table(), law="chinchilla", drop_top=5,
                                init_grid={"a": [5.0, 10.0], "b": [5.0, 10.0], "e": [0.5],
                                           "alpha": [0.5], "beta": [0.5]}, progress=False)


# ------------------------------------------------------------------ intervals at a bound
def test_interval_into_a_bound_is_unbounded_with_a_warning() -> None:
    """alpha bounded below its true value: the fit sits on the bound and so do most
    draws; the interval's upper end is reported as unbounded, the lower one is a number."""
    df = table(noise=0.003)
    with pytest.warns(IdentifiabilityWarning, match=r"^alpha: the 95% bootstrap interval runs "
                                                    r"into the bound alpha <= 0.3 \("):
        res = fit_law(df, init_grid=GRID, bounds={"alpha": (0.1, 0.3)}, bootstrap=20,
                      progress=False)
    lo, hi = res.interval("alpha")
    assert np.isfinite(lo) and lo < 0.3 and hi == np.inf
    frame = res.to_frame()
    assert frame.loc["alpha", "hi95%"] == np.inf and np.isfinite(frame.loc["beta", "hi95%"])
    assert "unbounded]" in res._repr_html_()


@pytest.mark.slow  # compiles the bounded programs again (~25 s on a loaded machine)
def test_interval_clear_of_its_bound_is_a_number() -> None:
    free = no_identifiability_warnings(table=table(noise=0.003), init_grid=GRID,
                                       bounds={"alpha": (0.1, 0.6)}, bootstrap=20,
                                       progress=False)
    assert np.isfinite(free.interval("alpha")).all()


def test_cli_prints_the_bound_warning_in_one_line_and_null_in_json(tmp_path, capsys) -> None:
    path = tmp_path / "runs.csv"
    table(noise=0.003).to_csv(path, index=False)
    code, out, err = run(["fit", str(path), "--bound", "alpha=0.1:0.3", "--bootstrap", "20",
                          "--json"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith("warning: alpha: the 95% bootstrap interval runs into the "
                               "bound alpha <= 0.3") for line in lines), err
    assert "Traceback" not in err and "IdentifiabilityWarning" not in err
    doc = json.loads(out)
    assert doc["interval95"]["alpha"][1] is None and doc["interval95"]["alpha"][0] < 0.3


# ------------------------------------------------------------------ inputs
def test_dict_and_list_tables_fit_like_a_frame() -> None:
    df = table()
    as_dict = {k: df[k].to_list() for k in df}
    a = fit_law(as_dict, init_grid=GRID, progress=False)
    b = fit_law(df.to_dict("records"), init_grid=GRID, progress=False)
    assert a.params == pytest.approx(b.params, rel=1e-12)
    with pytest.raises(ConfigError, match=r"^table: expected a DataFrame.*got ndarray"):
        fit_law(df.to_numpy())
    with pytest.raises(ConfigError, match=r"^table: columns differ in length"):
        fit_law({"N": [1e8, 2e8], "D": [1e9], "loss": [3.0, 2.9]})
    with pytest.raises(ConfigError, match=r"^bootstrap: must be 0 or >= 2 resamples.*2\.5"):
        fit_law(df, bootstrap=2.5)
    with pytest.raises(ConfigError, match=r"^progress: True, False or a function"):
        fit_law(df, progress="yes")


# ------------------------------------------------------------------ progress
def test_long_bootstrap_reports_progress_per_block(monkeypatch) -> None:
    monkeypatch.setattr(bs, "BLOCK", 16)  # 40 resamples: 3 blocks of 14 (the last padded)
    seen: list[tuple[str, int, int]] = []
    fit_law(table(noise=0.003), init_grid=GRID, bootstrap=40,
            progress=lambda *a: seen.append(a))
    boot = [s for s in seen if s[0] == "bootstrap"]
    assert boot == [("bootstrap", 0, 40), ("bootstrap", 14, 40), ("bootstrap", 28, 40),
                    ("bootstrap", 40, 40)]
    assert ("fitting chinchilla", 1, 1) in seen


def test_progress_display_only_when_on_and_long(monkeypatch) -> None:
    views: list[str] = []

    class View:
        def __init__(self, stage: str) -> None:
            views.append(stage)

        def update(self, done: int, total: int) -> None: ...
        def close(self, done: int | None, total: int, elapsed: float) -> None: ...

    monkeypatch.setattr(prog, "make_view", View)
    monkeypatch.setattr(prog, "_terminal", lambda: False)  # no timer thread
    with prog.Progress("bootstrap", 3, True, delay=60.0) as p:  # short work: nothing shown
        p.advance(3)
    assert views == [] and not p.shown
    with prog.Progress("bootstrap", 3, False, delay=0.0) as p:  # off: nothing, however long
        p.advance(3)
    assert views == [] and not p.shown
    with prog.Progress("bootstrap", 3, True, delay=0.0) as p:  # long work: a view
        p.advance(1)
    assert views == ["bootstrap"] and p.shown
