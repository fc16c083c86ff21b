"""scalelaw.mup.diagnostics: the model-free coordinate check and top singular values."""

from __future__ import annotations

import pytest

from scalelaw.mup.diagnostics import top_singular_values


def test_top_singular_values() -> None:
    import jax.numpy as jnp

    sigma = top_singular_values({"w": jnp.diag(jnp.array([1.0, 5.0, 2.0])),
                                 "stack": jnp.stack([jnp.eye(2), 3 * jnp.eye(2)]),
                                 "gain": jnp.ones(3)})
    assert set(sigma) == {"w", "stack"}
    assert float(sigma["w"]) == pytest.approx(5.0)
    assert sigma["stack"].tolist() == pytest.approx([1.0, 3.0])


def test_run_coord_check_takes_the_model_and_its_width_check() -> None:
    from scalelaw.mup.diagnostics import run_coord_check

    seen = []

    def check(widths: list[int]) -> None:
        seen.append(widths)
        raise ValueError("widths: not for this model")

    def model(width: int):
        raise AssertionError("built although the widths were refused")

    with pytest.raises(ValueError, match="^widths: not for this model"):
        run_coord_check(model, "mup", (256, 64, 64), check_widths=check)
    assert seen == [[64, 256]]


def test_coord_bound_compounds_over_the_span_and_grows_with_seed_noise() -> None:
    import numpy as np

    from scalelaw.mup.diagnostics import coord_bound

    assert coord_bound(4.0) == pytest.approx(1.2)
    assert coord_bound(16.0) == pytest.approx(1.44)
    assert coord_bound(1.0) == pytest.approx(1.0)
    wider = coord_bound(2.0, np.array([0.0, 0.05, 0.1, 0.2]))
    assert np.all(np.diff(wider) > 0)
    assert wider[2] == pytest.approx(1.2 ** 0.5 * np.exp(0.3))  # 3 standard errors
    assert coord_bound(2.0, 0.1, z=2.0) == pytest.approx(1.2 ** 0.5 * np.exp(0.2))
    with pytest.raises(ValueError, match="^span: "):
        coord_bound(0.5)


def test_log_ratio_se_is_the_delta_method_and_zero_without_spread() -> None:
    import numpy as np

    from scalelaw.mup.diagnostics import log_ratio_se

    se = log_ratio_se(np.array([2.0, 0.0, 1.0]), np.array([0.2, 0.0, np.nan]),
                      np.array([4.0, 0.0, 1.0]), np.array([0.8, 0.0, np.nan]), 4)
    assert se.tolist() == pytest.approx([np.sqrt((0.1**2 + 0.2**2) / 4), 0.0, 0.0])
    # check against simulation: the sd of log(mean_b / mean_a) over many draws
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.1, (20000, 5)).mean(1)
    b = rng.normal(3.0, 0.6, (20000, 5)).mean(1)
    assert np.std(np.log(b / a)) == pytest.approx(
        float(log_ratio_se(np.array(1.0), np.array(0.1), np.array(3.0), np.array(0.6), 5)),
        rel=0.05)


def test_verdicts_widen_the_bound_by_the_seed_noise() -> None:
    import pandas as pd

    from scalelaw.mup.diagnostics import _verdicts

    def check(sd: float) -> pd.DataFrame:
        return pd.DataFrame({"width": [32, 64], "module": "attn", "t": 1, "l1": [1.0, 1.3],
                             "l1_sd": [sd, 1.3 * sd], "seeds": 3})

    assert _verdicts(check(0.0), 1.2 ** 0.5)["verdict"].item() == "blows up"
    quiet, noisy = _verdicts(check(0.05), 1.2 ** 0.5), _verdicts(check(0.15), 1.2 ** 0.5)
    assert quiet["verdict"].item() == "blows up"  # 3 SE = 0.12 is not enough for log 1.3
    assert noisy["verdict"].item() == "stable"  # 3 SE = 0.37 is
    assert noisy["bound"].item() > quiet["bound"].item() > 1.2 ** 0.5
    assert _verdicts(check(0.15), 1.2 ** 0.5, z=0.0)["verdict"].item() == "blows up"
    low = check(0.0).assign(l1=[1.0, 0.7])
    assert _verdicts(low, 1.2 ** 0.5)["verdict"].item() == "vanishes"
