"""Guards on published defaults: Hoffmann et al.'s summed Huber objective, Step Law's 0.25% band.

Each check is two-sided against a hand computation or an explicit argument, so a mean in
place of the sum, another Huber delta or another band threshold makes it fail.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalelaw.cli import main
from scalelaw.fit.fit_law import fit_law
from scalelaw.fit.held_out import leave_one_cell_out
from scalelaw.fit.hparams import fit_hparams, load_runs
from scalelaw.fit.laws import get_law
from scalelaw.fit.objective import objective
from scalelaw.fit.powerlaw_form import band_mask

DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
STEP_LAW_BAND = 0.0025  # Li et al. 2025 (Step Law), §3
TRUE = {"A": 400.0, "B": 2000.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}
GRID = {"a": [6.0], "b": [7.5], "e": [0.5], "alpha": [0.4], "beta": [0.4]}


# ------------------------------------------------------------------ Huber objective
def noisy_table(seed: int = 0, noise: float = 0.002) -> pd.DataFrame:
    """A 6 x 6 Chinchilla grid with log-normal noise of the order of the Huber delta."""
    rng = np.random.default_rng(seed)
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 3e9, 6),
                                           np.geomspace(2e8, 2e11, 6)))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(noise * rng.standard_normal(N.size))})


def log_residuals(p: dict[str, float], df: pd.DataFrame) -> np.ndarray:
    """log L_hat - log L, with L_hat = E + A/N^alpha + B/D^beta in plain numpy."""
    N, D, L = (df[c].to_numpy(float) for c in ("N", "D", "loss"))
    pred = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    return np.log(pred) - np.log(L)


def hand_objective(r: np.ndarray, delta: float = DELTA) -> float:
    """Hoffmann et al.'s objective written out: the SUM over rows of Huber_delta(r)."""
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * r**2, delta * (a - delta / 2))))


def test_objective_is_the_sum_of_huber_at_a_given_theta():
    """objective at the true parameters equals the hand-written Huber sum."""
    import jax
    import jax.numpy as jnp

    df = noisy_table()
    law = get_law("chinchilla")
    assert law.huber_delta == DELTA
    r = log_residuals(TRUE, df)
    assert (np.abs(r) <= DELTA).sum() >= 5 and (np.abs(r) > DELTA).sum() >= 5  # both branches
    with jax.enable_x64(True):
        x = {k: jnp.asarray(df[k].to_numpy(float)) for k in ("N", "D")}
        log_y = jnp.asarray(np.log(df["loss"].to_numpy(float)))
        value = float(objective(law, jnp.asarray(law.from_natural(TRUE)),
                                (x, log_y, jnp.ones_like(log_y)), law.huber_delta))
    expected = hand_objective(r)
    assert value == pytest.approx(expected, rel=1e-9)
    # the tolerance separates the neighbours: a mean, or delta 1e-2 / 1e-4, is far off
    assert abs(expected / len(r) - expected) > 1e-3 * expected
    for other in (1e-2, 1e-4):
        assert hand_objective(r, other) != pytest.approx(expected, rel=1e-3)


def test_fit_law_reports_the_huber_sum_at_its_optimum():
    """fit_law's default objective, at its optimum, is the hand-written Huber sum there.

    A mean instead of the sum has the same minimiser (the fitted parameters do not move),
    so only the reported value can tell the two apart.
    """
    df = noisy_table()
    res = fit_law(df, init_grid=GRID)
    r = log_residuals(res.params, df)
    assert (np.abs(r) <= DELTA).sum() >= 5 and (np.abs(r) > DELTA).sum() >= 5
    assert res.objective == pytest.approx(hand_objective(r), rel=1e-9)
    assert "delta=0.001" in res.metadata["objective"]
    # the optimum is below the objective at the truth, and the fit is not degenerate
    assert hand_objective(r) < hand_objective(log_residuals(TRUE, df))
    assert res.params["alpha"] == pytest.approx(TRUE["alpha"], abs=0.05)


# ------------------------------------------------------------------ Step Law band default
def asymmetric_runs() -> pd.DataFrame:
    """LR x batch bowls steeper below the optimum than above, more so at larger N.

    Each cell's grid optimum is at lr0 = 2 N^-0.7 D^0.3, B0 = 0.5 D^0.57 (tokens); a wider
    band takes in more runs on the shallow side, so the pooled OLS law (its intercepts and
    the N exponent) depends on the band threshold.
    """
    rows = []
    for N, D in [(1e8, 2e9), (1e8, 8e9), (2e8, 4e9), (4e8, 8e9), (4e8, 3.2e10), (8e8, 1.6e10)]:
        lr0, b0 = 2.0 * N**-0.7 * D**0.3, 0.5 * D**0.57
        shallow = 0.002 * (N / 1e8) ** -0.5
        for lr in lr0 * 2.0 ** np.arange(-3, 3.01, 0.5):
            for b in b0 * 2.0 ** np.arange(-3, 3.01, 0.5):
                u, v = np.log(lr / lr0), np.log(b / b0)
                ku = 0.008 if u < 0 else shallow
                kv = 0.006 if v < 0 else 0.001
                rows.append((N, D, lr, b, 3.0 * (1 + ku * u**2 + kv * v**2)))
    return pd.DataFrame(rows, columns=["N", "D", "lr", "bs", "loss"])


def _assert_differs(a: dict[str, float], b: dict[str, float], keys: tuple[str, ...]) -> None:
    for k in keys:
        assert abs(a[k] - b[k]) > 0.01, (k, a[k], b[k])


LAW_KEYS = ("lr_intercept", "lr_coefN", "bs_intercept")


def test_band_threshold_matters_on_the_asymmetric_grid():
    """The synthetic grid tells 0.25% from 2.5% (else the default checks below are void)."""
    runs = load_runs(asymmetric_runs(), batch_unit="tokens")
    narrow, wide = band_mask(runs, STEP_LAW_BAND), band_mask(runs, 10 * STEP_LAW_BAND)
    assert 0 < narrow.sum() < wide.sum() < len(runs) and not (narrow & ~wide).any()
    a = fit_hparams(asymmetric_runs(), batch_unit="tokens", bootstrap=0, threshold=STEP_LAW_BAND)
    b = fit_hparams(asymmetric_runs(), batch_unit="tokens", bootstrap=0,
                    threshold=10 * STEP_LAW_BAND)
    _assert_differs(a.params, b.params, LAW_KEYS)


def test_band_mask_default_is_step_law():
    """band_mask's default threshold gives the 0.25% mask, not the 2.5% one."""
    runs = load_runs(asymmetric_runs(), batch_unit="tokens")
    default = band_mask(runs)
    np.testing.assert_array_equal(default, band_mask(runs, STEP_LAW_BAND))
    assert (default != band_mask(runs, 10 * STEP_LAW_BAND)).sum() > 50


def test_fit_hparams_default_is_step_law():
    """fit_hparams' default band gives the 0.25% law, not the 2.5% one."""
    df = asymmetric_runs()
    default = fit_hparams(df, batch_unit="tokens", bootstrap=0)
    explicit = fit_hparams(df, batch_unit="tokens", bootstrap=0, threshold=STEP_LAW_BAND)
    wide = fit_hparams(df, batch_unit="tokens", bootstrap=0, threshold=10 * STEP_LAW_BAND)
    assert default.params == explicit.params and default.n_points == explicit.n_points
    assert default.metadata["threshold"] == STEP_LAW_BAND
    _assert_differs(default.params, wide.params, LAW_KEYS)


def test_leave_one_cell_out_default_is_step_law():
    """leave_one_cell_out's default band scores the 0.25% law, not the 2.5% one."""
    runs = load_runs(asymmetric_runs(), batch_unit="tokens")
    default = leave_one_cell_out(runs)
    pd.testing.assert_frame_equal(default, leave_one_cell_out(runs, threshold=STEP_LAW_BAND))
    wide = leave_one_cell_out(runs, threshold=10 * STEP_LAW_BAND)
    pd.testing.assert_series_equal(default["excess_bowl"], wide["excess_bowl"])
    assert (np.abs(np.log(default["batch_band"] / wide["batch_band"])) > 0.1).all()
    assert (np.abs(wide["excess_band"] / default["excess_band"] - 1) > 0.2).all()


def test_cli_fit_hparams_default_is_step_law(tmp_path, capsys):
    """`scalelaw fit-hparams` without --threshold fits the 0.25% law, not the 2.5% one."""
    path = tmp_path / "runs.csv"
    asymmetric_runs().to_csv(path, index=False)

    def cli(*extra: str) -> dict:
        with pytest.raises(SystemExit) as exc:
            main(["fit-hparams", str(path), "--batch-unit", "tokens", "--bootstrap", "0",
                  "--json", *extra])
        out = capsys.readouterr()
        assert exc.value.code == 0, out.err
        return json.loads(out.out)

    default, explicit = cli(), cli("--threshold", str(STEP_LAW_BAND))
    assert default["params"] == explicit["params"]
    assert default["metadata"]["threshold"] == STEP_LAW_BAND
    api = fit_hparams(path, batch_unit="tokens", bootstrap=0, threshold=STEP_LAW_BAND)
    assert default["params"] == pytest.approx(api.params, rel=1e-12)
    _assert_differs(default["params"], cli("--threshold", str(10 * STEP_LAW_BAND))["params"],
                    LAW_KEYS)


# ----------------------------------------------------------------------------- identifiability
def _chinchilla_rows(n_values, d_values):  # noqa: ANN001, ANN202
    import pandas as pd

    rows = [(n, d, 1.8 + 400 / n**0.34 + 410 / d**0.28) for n in n_values for d in d_values]
    return pd.DataFrame(rows, columns=["N", "D", "loss"])


def test_under_determined_fits_are_refused_naming_the_column() -> None:
    """Every row at one N (A and alpha trade off freely), or one column read as N and D."""
    from scalelaw.errors import ConfigError
    from scalelaw.fit.fit_law import fit_law

    with pytest.raises(ConfigError, match=r"^column 'N': every row has N = 1e\+08; law "
                                          r"'chinchilla' needs at least 2 distinct values"):
        fit_law(_chinchilla_rows([1e8], [1e9, 3e9, 1e10, 3e10, 1e11, 3e11]))
    with pytest.raises(ConfigError, match=r"^n, d: inputs N, D of law 'chinchilla' are all "
                                          r"read from column 'N'"):
        fit_law(_chinchilla_rows([1e7, 1e8, 1e9], [1e9, 1e10]), n="N", d="N")


def test_cli_refuses_one_column_for_two_inputs(tmp_path, capsys) -> None:
    from scalelaw.cli import main

    path = tmp_path / "runs.csv"
    _chinchilla_rows([1e7, 1e8, 1e9], [1e9, 1e10]).to_csv(path, index=False)
    with pytest.raises(SystemExit) as info:
        main(["fit", str(path), "--n", "N", "--d", "N"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: --n, --d: inputs N, D"), err
