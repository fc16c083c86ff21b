"""recommend() against hand-computed published laws, user laws, muP rows and bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scalelaw.fit.allocate import compute_optimal
from scalelaw.fit.result import FitResult
from scalelaw.mup.rules import Parametrization
from scalelaw.published import ALLOCATIONS
from scalelaw.recommend import Recommendation, recommend

N, D = 3.0e8, 2.0e10


def test_default_is_step_law_by_hand():
    rec = recommend(N, D)
    lr = 1.79 * N**-0.713 * D**0.307
    bs = 0.58 * D**0.571
    assert rec.lr == pytest.approx(lr, rel=1e-12)
    assert rec.batch_tokens == pytest.approx(bs, rel=1e-12)
    assert rec.batch_sequences == round(bs / 2048)
    assert rec.weight_decay == pytest.approx(bs / (lr * 0.1 * D), rel=1e-12)
    assert "Step Law" in rec.source and "2503.04715" in rec.source
    assert "tau = 0.1" in rec.weight_decay_source
    assert rec.intervals == {}


def test_seq_len_changes_only_sequences():
    a, b = recommend(N, D), recommend(N, D, seq_len=4096)
    assert a.lr == b.lr and a.batch_tokens == b.batch_tokens
    assert b.batch_sequences == round(a.batch_tokens / 4096)


def test_deepseek_uses_6n_compute_and_says_so():
    rec = recommend(N, D, source="deepseek")
    c = 6 * N * D
    assert rec.lr == pytest.approx(0.3118 * c**-0.1250, rel=1e-12)
    assert rec.batch_tokens == pytest.approx(0.2920 * c**0.3271, rel=1e-12)
    assert any("M = 6N" in note for note in rec.notes)
    assert rec.schedule["name"] == "multi-step"


def test_power_scheduler_relation_and_schedule():
    rec = recommend(N, D, source="power")
    beta = rec.batch_sequences
    assert rec.lr == pytest.approx(min(0.02, beta * 4.6 * D**-0.51), rel=1e-12)
    s = rec.schedule
    assert (s["name"], s["a"], s["b"], s["lr_max"], s["beta"]) == ("power", 4.0, -0.51, 0.02, beta)


def test_compute_optimal_closed_form_matches_numeric_minimum():
    fit = ALLOCATIONS["chinchilla"]
    c = 6 * N * D
    opt = compute_optimal(fit.params, c)
    n_opt, d_opt = opt["N_opt"][0], opt["D_opt"][0]
    loss = [fit.E + fit.A / n**fit.alpha + fit.B / (c / 6 / n) ** fit.beta
            for n in (n_opt * 0.99, n_opt, n_opt * 1.01)]
    assert loss[1] < loss[0] and loss[1] < loss[2]
    assert n_opt * d_opt * 6 == pytest.approx(c)
    rec = recommend(N, D)
    assert rec.compute["chinchilla_n_opt"] == pytest.approx(n_opt)
    assert rec.compute["epoch_tokens_per_param"] > 10


def test_user_fit_with_bootstrap_intervals(tmp_path):
    coefs = {"lr_intercept": math.log(2.0), "lr_coefN": -0.7, "lr_coefD": 0.3,
             "bs_intercept": math.log(0.5), "bs_coefD": 0.57}
    samples = {k: [v - 0.01, v, v + 0.01] * 10 for k, v in coefs.items()}
    fit = FitResult(law="mine", params=coefs, kind="hparams", samples=samples)
    path = tmp_path / "fit.json"
    fit.save(path)
    for laws in (fit, path, str(path)):
        rec = recommend(N, D, laws=laws)
        assert rec.lr == pytest.approx(2.0 * N**-0.7 * D**0.3, rel=1e-12)
        assert rec.batch_tokens == pytest.approx(0.5 * D**0.57, rel=1e-12)
        lo, hi = rec.intervals["lr"]
        assert lo < rec.lr < hi
        assert "mine" in rec.source


def test_user_fit_takes_schedule_from_source_and_says_so():
    pair = (lambda n, d: 1e-3, lambda n, d: 2048 * 64)
    steplaw, deepseek = recommend(N, D, laws=pair), recommend(N, D, laws=pair, source="deepseek")
    assert steplaw.schedule["name"] != deepseek.schedule["name"] == "multi-step"
    assert deepseek.schedule["peak_lr"] == 1e-3  # the user's LR, DeepSeek's schedule shape
    assert "schedule from the published deepseek law" in " ".join(deepseek.notes)
    assert not any("schedule" in n for n in recommend(N, D, source="deepseek").notes)


def test_user_callable_pair():
    rec = recommend(N, D, laws=(lambda n, d: 1e-3, lambda n, d: 2048 * 64))
    assert (rec.lr, rec.batch_sequences) == (1e-3, 64)


def test_mup_per_role_rows():
    p = Parametrization("mup", base_width=256, weight_decay_rule="independent")
    rec = recommend(N, D, parametrization=p, width=2048)
    rows = {r["role"].split()[0]: r for r in rec.per_role}
    assert rows["hidden"]["lr"] == pytest.approx(rec.lr / 8)
    assert rows["hidden"]["weight_decay"] == pytest.approx(rec.weight_decay * 8)
    assert rows["input"]["lr"] == pytest.approx(rec.lr)
    assert rows["input"]["weight_decay"] == 0.0
    assert rows["output"]["forward_mult"] == pytest.approx(1 / 8)
    assert "hidden (matrix-like)" in str(rec)


def test_frozen_str_and_to_dict():
    rec = recommend(N, D)
    assert isinstance(rec, Recommendation)
    with pytest.raises(AttributeError):
        rec.lr = 1.0  # type: ignore[misc]
    d = rec.to_dict()
    assert d["lr"] == rec.lr and d["schedule"]["peak_lr"] == rec.lr
    assert "peak lr" in str(rec)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_params": 0}, "n_params"),
        ({"n_params": -1e9}, "n_params"),
        ({"n_tokens": float("nan")}, "n_tokens"),
        ({"n_tokens": 0}, "n_tokens"),
        ({"source": "porian"}, "source"),
        ({"seq_len": 0}, "seq_len"),
        ({"laws": 3}, "laws"),
        ({"laws": FitResult(law="chinchilla", params={"E": 1.0})}, "laws"),
        ({"parametrization": Parametrization("mup")}, "width"),
        ({"width": 1024}, "width"),
        ({"wd_timescale": -1.0}, "wd_timescale"),
        ({"n_params": 1e300, "n_tokens": 1e300}, r"n_params: 1e\+300 is outside what any law"),
        ({"n_params": 1e-200, "n_tokens": 1e250}, "n_params: 1e-200 is outside"),
        ({"n_params": 1e9, "n_tokens": 1e250}, r"n_tokens: 1e\+250 is outside"),
        ({"n_params": 3e10, "n_tokens": 1e10, "source": "kaplan"},
         "n_params, n_tokens: outside the law's numeric range"),
        ({"laws": "/nonexistent/fit.json"}, "laws: /nonexistent/fit.json: no such file"),
    ],
)
def test_bad_input_names_argument(kwargs, match):
    args = {"n_params": N, "n_tokens": D} | kwargs
    n, d = args.pop("n_params"), args.pop("n_tokens")
    with pytest.raises(ValueError, match=match):
        recommend(n, d, **args)


def test_no_jax_or_model_import():
    code = ("import sys, scalelaw.recommend, scalelaw.published; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax') "
            "or m.startswith('scalelaw.models') or m.startswith('scalelaw.train')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_users_loss_fit_allocates_compute() -> None:
    """recommend(laws=<kind "loss" fit>): its compute-optimal N and D, next to the published
    allocations; the LR and batch stay the published law's, and a note says so."""
    from scalelaw.fit.allocate import compute_optimal
    from scalelaw.published import ALLOCATIONS

    params = dict(ALLOCATIONS["epoch"].params)
    mine = FitResult(law="chinchilla", params={**params, "A": params["A"] * 2})
    rec = recommend(1e9, 2e10, laws=mine)
    plain = recommend(1e9, 2e10)
    assert rec.lr == plain.lr and rec.batch_tokens == plain.batch_tokens
    want = compute_optimal(mine, 6 * 1e9 * 2e10)
    assert rec.compute["yours_n_opt"] == pytest.approx(float(want["N_opt"][0]), rel=1e-12)
    assert rec.compute["yours_n_opt"] != rec.compute["epoch_n_opt"]
    assert any(label == "yours optimum" for label, _ in rec.rows())
    assert any("'yours' optimum" in n for n in rec.notes)
    assert not [n for n in rec.notes if "extrapolation" in n]  # no fitted range recorded
    ranged = FitResult(law="chinchilla", params=mine.params,
                       metadata={"domain": {"N": [1e7, 1e8], "D": [1e9, 1e10]}})
    (note,) = [n for n in recommend(1e9, 2e10, laws=ranged).notes if "extrapolation" in n]
    assert note.startswith("'yours' optimum: N = ") and "above the range your chinchilla " \
        "loss fit was fitted on (1e+07 to 1e+08)" in note


def test_numpy_scalars_are_numbers():
    import numpy as np

    rec = recommend(np.int64(7_000_000_000), np.float32(1e11), seq_len=np.int64(2048))
    assert rec.lr == pytest.approx(recommend(7e9, 1e11).lr, rel=1e-6)
    assert isinstance(rec.n_params, float) and rec.seq_len == 2048
    with pytest.raises(ValueError, match="n_params"):
        recommend(np.bool_(True), 1e11)


# ----------------------------------------------------------------- where a law may speak
def test_recommend_refuses_absurd_sizes_with_one_line() -> None:
    from scalelaw.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^n_params: 1e\+30 is outside what any law"):
        recommend(1e30, 1e11)
    with pytest.raises(ConfigError, match=r"^n_tokens: 1e\+20 is outside"):
        recommend(1e9, 1e20)


def test_recommend_notes_extrapolation_in_decades() -> None:
    inside = recommend(3e8, 5e10)
    assert not [n for n in inside.notes if "extrapolation" in n]
    far = recommend(1e12, 1e10)  # Step Law: N 6e7-1e9, D 2e9-1e11
    (note,) = [n for n in far.notes if "extrapolation" in n]
    assert note.startswith("N = 1e+12 is 3.0 decades above the range the published steplaw")
    deepseek = recommend(1e6, 1e8, source="deepseek")  # C = 6e14, range 1e17-2e19
    (note,) = [n for n in deepseek.notes if "extrapolation" in n]
    assert "C = 6e+14 is 2.2 decades below" in note


def test_schedule_never_decays_above_its_peak() -> None:
    for n, d in [(1e12, 1e10), (1e9, 1e11), (1e14, 1e9)]:
        rec = recommend(n, d)
        assert rec.schedule["min_lr"] <= rec.lr / 10 or rec.schedule["min_lr"] == 1e-5
        assert rec.schedule["min_lr"] < rec.schedule["peak_lr"] == rec.lr
    assert recommend(1e9, 1e11).schedule["min_lr"] == 1e-5  # Step Law's own floor


def test_a_fitted_law_notes_queries_beyond_its_cells() -> None:
    from scalelaw.fit.hparams import fit_hparams

    rows = [(n, d, lr, bs, 2.0 + 0.01 * np.log(lr / 1e-3) ** 2 + 0.01 * np.log(bs / 64) ** 2
             + 0.001 * np.log(n) + 0.0005 * np.log(d))
            for n in (1e7, 4e7) for d in (1e9, 4e9)
            for lr in 1e-3 * 2.0 ** np.arange(-3, 4) for bs in 64 * 2.0 ** np.arange(-3, 4)]
    fit = fit_hparams(pd.DataFrame(rows, columns=["N", "D", "lr", "bs", "loss"]))
    assert fit.metadata["domain"] == {"N": [1e7, 4e7], "D": [1e9, 4e9]}
    near = recommend(2e7, 2e9, laws=fit)
    assert not [n for n in near.notes if "extrapolation" in n]
    far = recommend(4e9, 2e9, laws=fit)
    (note,) = [n for n in far.notes if "extrapolation" in n]
    assert note.startswith("N = 4e+09 is 2.0 decades above the range your") and "fit" in note
