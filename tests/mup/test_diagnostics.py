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
