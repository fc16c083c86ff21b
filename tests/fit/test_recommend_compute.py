"""recommend(compute=C, laws=loss_fit) and `scalelaw recommend --compute` (issue 10 §4), and
the Recommendation's views (§5)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _cli_run import run

from scalelaw.errors import ConfigError
from scalelaw.fit.allocate import compute_optimal
from scalelaw.fit.result import FitResult
from scalelaw.published import ALLOCATIONS
from scalelaw.recommend import recommend

P = {"A": 482.0, "B": 2085.4, "E": 1.82, "alpha": 0.3478, "beta": 0.3658}
C = 1e22


def loss_fit() -> FitResult:
    rng = np.random.default_rng(0)
    samples = {k: (v * np.exp(0.03 * rng.standard_normal(40))).tolist() for k, v in P.items()}
    return FitResult("chinchilla", P, samples=samples,
                     conventions={"N": "total parameters", "D": "tokens", "loss": "nats"},
                     metadata={"domain": {"N": [1e7, 3e9], "D": [2e8, 2e11]}})


def hparams_fit() -> FitResult:
    coefs = {"lr_intercept": math.log(2.0), "lr_coefN": -0.7, "lr_coefD": 0.3,
             "bs_intercept": math.log(0.5), "bs_coefD": 0.57}
    return FitResult("mine", coefs, kind="hparams")


def test_compute_is_allocated_by_the_loss_fit_with_intervals() -> None:
    fit = loss_fit()
    rec = recommend(compute=C, laws=fit)
    opt = compute_optimal(fit, C)
    assert rec.n_params == pytest.approx(opt["N_opt"][0], rel=1e-12)
    assert rec.n_tokens == pytest.approx(opt["D_opt"][0], rel=1e-12)
    assert 6 * rec.n_params * rec.n_tokens == pytest.approx(C)
    lo, hi = rec.interval("n_params")
    assert lo < rec.n_params < hi and hi / lo > 1.05  # the draws spread it
    # the interval is the draws' 2.5-97.5% range, computed here
    draws = [compute_optimal({k: fit.samples[k][i] for k in P}, C)["N_opt"][0]
             for i in range(40)]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), rel=1e-9)
    # LR and batch: the published law at that (N, D), as for recommend(N, D)
    same = recommend(rec.n_params, rec.n_tokens)
    assert rec.lr == same.lr and rec.batch_tokens == same.batch_tokens
    assert any("by your chinchilla loss fit" in n for n in rec.notes)
    assert any("decades above the range your chinchilla loss fit" in n for n in rec.notes)
    assert not any(n.startswith("'yours' optimum: N =") for n in rec.notes)  # said once
    assert rec.rows()[0][0] == "N, D" and "[95%:" in rec.rows()[0][1]


def test_compute_without_a_loss_fit_uses_epoch_and_says_so() -> None:
    rec = recommend(compute=C)
    opt = compute_optimal(ALLOCATIONS["epoch"].params, C)
    assert rec.n_params == pytest.approx(opt["N_opt"][0], rel=1e-12)
    assert "n_params" not in rec.intervals
    assert any("by the published epoch law" in n for n in rec.notes)


def test_a_loss_fit_and_a_hyperparameter_law_together() -> None:
    rec = recommend(compute=C, laws=[loss_fit(), hparams_fit()])
    assert rec.lr == pytest.approx(2.0 * rec.n_params**-0.7 * rec.n_tokens**0.3, rel=1e-12)
    assert rec.batch_tokens == pytest.approx(0.5 * rec.n_tokens**0.57, rel=1e-12)
    assert "mine" in rec.source
    with pytest.raises(ValueError, match=r"^laws: give at most one loss fit"):
        recommend(compute=C, laws=[loss_fit(), loss_fit()])


@pytest.mark.parametrize(("kw", "match"), [
    ({"compute": C, "n_params": 1e9}, r"^compute, n_params, n_tokens: give a FLOP budget"),
    ({}, r"^n_params, n_tokens: give both, or compute="),
    ({"compute": 0.0}, r"^compute: "),
    ({"compute": float("nan")}, r"^compute: "),
    ({"compute": 1e40}, r"^compute: 1e\+40 is outside"),
])
def test_bad_compute_is_refused_in_one_line(kw, match) -> None:  # noqa: ANN001
    with pytest.raises((ValueError, ConfigError), match=match):
        recommend(**kw)


def test_cli_compute_with_a_saved_loss_fit(tmp_path, capsys) -> None:
    path = tmp_path / "lossfit.json"
    loss_fit().save(path)
    code, out, err = run(["recommend", "--compute", "1e22", "--laws", str(path), "--json"],
                         capsys)
    assert code == 0, err
    doc = json.loads(out)
    api = recommend(compute=C, laws=loss_fit())
    assert doc["n_params"] == pytest.approx(api.n_params, rel=1e-12)
    assert doc["intervals"]["n_tokens"] == pytest.approx(list(api.interval("n_tokens")))
    code, out, err = run(["recommend", "--compute", "1e22", "--params", "1e9"], capsys)
    assert code == 2 and err.startswith("error: --compute, --params, --tokens:"), err


def test_recommendation_views() -> None:
    rec = recommend(compute=C, laws=loss_fit())
    text = repr(rec)
    assert text.startswith("Recommendation(N=") and len(text) < 200
    assert "intervals for n_params, n_tokens" in text
    frame = rec.to_frame()
    assert frame.loc["peak lr", "value"] == f"{rec.lr:.4g}"
    html = rec._repr_html_()
    assert html.startswith("<table><caption>Recommendation for N = ") and "peak lr" in html
    with pytest.raises(KeyError, match="lr: no interval"):
        rec.interval("lr")


def test_published_allocation_says_its_n_convention_reaches_the_hparams_law() -> None:
    import scalelaw

    notes = scalelaw.recommend(compute=1e21).notes
    assert any("counts all parameters" in n and "non-embedding" in n for n in notes), notes
