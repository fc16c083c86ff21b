"""Coordinate check: muP and CompleteP stable, SP not (microsoft/mup test 2)."""

from __future__ import annotations

import pytest

from scalelaw.mup.diagnostics import coord_check, top_singular_values


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


def test_top_singular_values() -> None:
    import jax.numpy as jnp

    sigma = top_singular_values({"w": jnp.diag(jnp.array([1.0, 5.0, 2.0])),
                                 "stack": jnp.stack([jnp.eye(2), 3 * jnp.eye(2)]),
                                 "gain": jnp.ones(3)})
    assert set(sigma) == {"w", "stack"}
    assert float(sigma["w"]) == pytest.approx(5.0)
    assert sigma["stack"].tolist() == pytest.approx([1.0, 3.0])
