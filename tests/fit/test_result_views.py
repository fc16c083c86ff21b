"""FitResult in Jupyter: a short repr, a parameter table, predictions by kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _with_draws(n: int = 1000) -> FitResult:
    rng = np.random.default_rng(0)
    samples = {k: (v * (1 + 0.01 * rng.standard_normal(n))).tolist()
               for k, v in CHINCHILLA.items()}
    samples["a"] = rng.uniform(0.4, 0.6, n).tolist()  # a derived quantity with draws
    return FitResult("chinchilla", CHINCHILLA, n_points=245, samples=samples,
                     metadata={"derived": {"a": 0.45}})


def test_repr_is_short_with_many_draws() -> None:
    """1,000 draws used to print ~140,000 characters; the repr stays one short line."""
    text = repr(_with_draws())
    assert len(text) < 200 and "\n" not in text
    assert "law='chinchilla'" in text and "1000 draws" in text and "E=1.69" in text


def test_frame_has_every_parameter_and_derived_draws() -> None:
    fit = _with_draws()
    frame = fit.to_frame()
    assert list(frame.index) == [*CHINCHILLA, "a"]
    assert frame.loc["a", "derived"] and not frame.loc["E", "derived"]
    assert frame.loc["a", "value"] == pytest.approx(0.45)
    lo, hi = fit.interval("alpha")
    assert frame.loc["alpha", "lo95%"] == lo and frame.loc["alpha", "hi95%"] == hi
    assert lo < CHINCHILLA["alpha"] < hi
    bare = FitResult("chinchilla", CHINCHILLA).to_frame()
    assert bare["stderr"].isna().all() and (bare["value"] == pd.Series(CHINCHILLA)).all()


def test_html_table_lists_parameters_and_intervals() -> None:
    page = _with_draws()._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 1 + 6
    assert "95% interval" in page and "1000 bootstrap draws" in page
    assert "interval" not in FitResult("chinchilla", CHINCHILLA)._repr_html_()


def test_predict_by_kind() -> None:
    loss = FitResult("chinchilla", CHINCHILLA).predict(N=70e9, D=1.4e12)
    assert float(loss) == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28,
                                        rel=1e-9)
    hp = FitResult("steplaw", {"lr_intercept": np.log(1.79), "lr_coefN": -0.713,
                               "lr_coefD": 0.307, "bs_intercept": np.log(0.58),
                               "bs_coefD": 0.571}, kind="hparams").predict(N=1e9, D=1e11)
    assert float(hp["lr"]) == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307)
    assert float(hp["batch_tokens"]) == pytest.approx(0.58 * 1e11**0.571)
    power = FitResult("power_schedule", {"a": 4.6, "b": -0.51}, kind="schedule")
    expected = np.array([8, 16]) * 4.6 * 1e9**-0.51
    assert np.allclose(power.predict(batch=[8, 16], tokens=1e9), expected)


def test_predict_names_missing_and_unknown_inputs() -> None:
    power = FitResult("power_schedule", {"a": 4.6, "b": -0.51}, kind="schedule")
    with pytest.raises(ConfigError, match="^tokens: a kind='schedule' fit predicts"):
        power.predict(batch=8)
    with pytest.raises(ConfigError, match="^N: not an input"):
        power.predict(batch=8, tokens=1e9, N=1)
    with pytest.raises(ConfigError, match="not in the registry"):
        FitResult("my_law", {"x": 1.0}).predict(N=1.0)
