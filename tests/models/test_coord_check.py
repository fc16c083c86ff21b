"""Coordinate check of the reference models: muP and CompleteP stable, SP not (microsoft/mup
test 2)."""

from __future__ import annotations

import pytest

from scalelaw.models.coord_check import coord_check


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_mup_and_completep_stable_sp_not(model: str) -> None:
    for name in ("mup", "completep"):
        result = coord_check(model, name, widths=(128, 512), steps=3)
        assert result.stable, result.verdicts.to_string()
    sp = coord_check(model, "sp", widths=(128, 512), steps=3)
    assert not sp.stable
    assert "blows up" in set(sp.verdicts["verdict"])
    assert sp.verdicts.set_index("module").loc["readout", "verdict"] == "blows up"


def test_zero_readout_is_exactly_zero_at_t1() -> None:
    result = coord_check("mlp", "mup", widths=(64, 256), steps=2)
    first = result.data[(result.data["module"] == "readout") & (result.data["t"] == 1)]
    assert (first["l1"] == 0.0).all()
    assert set(result.data["t"]) == {1, 2}


@pytest.mark.slow
def test_transformer_mup_stable_up_to_2048() -> None:
    result = coord_check("transformer", "mup", widths=(128, 512, 2048), steps=3)
    assert result.stable, result.verdicts.to_string()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"model": "cnn"}, "model"), ({"widths": (64,)}, "widths"),
     ({"optimizer": "lion"}, "optimizer"),
     ({"steps": 0}, "steps"), ({"lr": -1.0}, "lr"), ({"bound": 0.9}, "bound"),
     ({"model": "transformer", "widths": (40, 80)}, "widths")],
)
def test_bad_arguments(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        coord_check(**kwargs)


def test_narrow_span_is_no_false_alarm_under_mup_and_records_the_seed_spread() -> None:
    # one seed at widths 32 and 64 flagged 8 of 18 modules (ratios 0.85-1.31, bound 1.095);
    # three seeds' spread widens each module's bound
    result = coord_check("transformer", widths=(32, 64), parametrization="mup", seeds=3)
    assert result.stable, result.verdicts.to_string()
    assert (result.data["seeds"] == 3).all() and (result.data["l1_sd"] > 0).any()
    assert (result.verdicts["bound"] >= result.bound).all()
    assert (result.verdicts["bound"] > result.bound).any()
