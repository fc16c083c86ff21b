"""Fan et al. (2025)'s weight-decay diagnostic on a case with a known answer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from scalelaw.mup.rules import Parametrization
from scalelaw.mup.wd_diagnostic import FAN_EXPONENT, sigma_max_table

BASE, LR, WD = 16, 0.04, 1.0


def noise_driven_sigma(n: int, lr: float, wd: float, seed: int = 0) -> float:
    """Top singular value of an n x n matrix after AdamW on pure gradient noise, run for
    eight decay timescales 1/(lr*wd): the steady state is entries of variance lr/(2 wd)
    (decay balancing Adam's unit random walk), so sigma_max ~ sqrt(lr/(2 wd)) * 2 sqrt(n)."""
    opt = optax.adamw(lr, b1=0.9, b2=0.95, weight_decay=wd)

    def body(carry, key):  # noqa: ANN001, ANN202
        w, state = carry
        updates, state = opt.update(jax.random.normal(key, w.shape), state, w)
        return (optax.apply_updates(w, updates), state), None

    w = jnp.zeros((n, n))
    keys = jax.random.split(jax.random.key(seed), int(8 / (lr * wd)))
    (w, _), _ = jax.lax.scan(body, (w, opt.init(w)), keys)
    return float(jnp.linalg.svd(w, compute_uv=False)[0])


@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    rows = []
    for rule in ("independent", "sqrt", "fixed"):
        p = Parametrization("mup", base_width=BASE, weight_decay_rule=rule)
        for width in (16, 32, 64):
            hidden = p.layer_rule("hidden", width_mult=width / BASE)
            lr, wd = LR * hidden.lr_mult, WD * hidden.wd_mult
            rows.append({"weight_decay_rule": rule, "width": width, "family": "w",
                         "sigma_max": noise_driven_sigma(width, lr, wd), "lr": lr,
                         "weight_decay": wd})
    return pd.DataFrame(rows)


def test_noise_driven_matrices_sit_at_the_sqrt_lr_over_wd_scale(measured: pd.DataFrame) -> None:
    diag = sigma_max_table(measured)
    table = diag.table
    # the known steady state: sigma_max / sqrt(lr/wd) = sqrt(2 n) (the Marchenko-Pastur
    # edge; at n = 16-64 it sits 6-20% below it, measured)
    edge = table["ratio"] / np.sqrt(2 * table["width"])
    assert edge.between(0.75, 1.02).all(), table
    exps = diag.exponents.set_index("weight_decay_rule")
    # the prediction's width exponent is set by the rule: sqrt(lr/wd) ~ m^-1, m^-3/4, m^-1/2
    assert exps["prediction"].to_dict() == pytest.approx(
        {"independent": -1.0, "sqrt": -0.75, "fixed": -0.5})
    # noise-driven matrices carry a width factor d^1/2 (Fan et al. measure d^0.75 in trained
    # transformers): sigma_max exponents -1/2, -1/4 and 0, plus the finite-size creep of
    # the edge towards 2 sqrt(n) (measured: ratio exponents 0.55-0.61 over n = 16-64)
    assert exps["ratio"].to_numpy() == pytest.approx([0.5] * 3, abs=0.15)
    assert exps["sigma_max"].to_dict() == pytest.approx(
        {"independent": -0.5, "sqrt": -0.25, "fixed": 0.0}, abs=0.15)
    assert (exps["fan"] - exps["prediction"]).to_numpy() == pytest.approx([FAN_EXPONENT] * 3)
    assert exps.loc["sqrt", "fan"] == pytest.approx(0.0)  # Fan et al.'s rule: sigma_max flat


def test_rows_are_averaged_per_family_and_bad_input_is_named() -> None:
    measured = pd.DataFrame({"weight_decay_rule": "fixed", "width": [32, 32, 64, 64],
                             "family": "w1", "sigma_max": [1.0, 3.0, 4.0, 4.0],
                             "lr": 0.01, "weight_decay": 0.1})
    table = sigma_max_table(measured).table
    assert table["sigma_max"].tolist() == [2.0, 4.0] and table["matrices"].tolist() == [2, 2]
    assert table["prediction"].tolist() == pytest.approx([np.sqrt(0.1)] * 2)
    no_decay = sigma_max_table(measured.assign(weight_decay=0.0)).table
    assert no_decay["ratio"].isna().all()
    with pytest.raises(ValueError, match="^measured: missing column 'sigma_max'"):
        sigma_max_table(measured.drop(columns="sigma_max"))
    with pytest.raises(ValueError, match="^measured: missing column 'rule'"):
        sigma_max_table(measured, by=("rule",))
