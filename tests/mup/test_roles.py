"""Role inference from shapes at two widths (and depths)."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from scalelaw.models import MLPConfig, TransformerConfig, mlp, transformer
from scalelaw.mup.roles import infer_roles
from scalelaw.mup.rules import Parametrization

P = Parametrization("mup", base_width=32)


def kinds(roles: dict) -> dict[str, str]:
    return {k: r.kind for k, r in roles.items()}


def test_transformer_roles_untied() -> None:
    roles = transformer.roles(TransformerConfig(width=128, depth=2, head_dim=16), P)
    assert kinds(roles) == {
        "embed": "input", "attn_norm": "input", "mlp_norm": "input", "norm": "input",
        "wq": "hidden", "wk": "hidden", "wv": "hidden", "wo": "hidden", "w1": "hidden",
        "w2": "hidden", "readout": "output",
    }
    assert roles["readout"].width_mult == 4.0 and roles["readout"].base_fan_in == 32
    assert roles["w2"].width_mult == 4.0 and roles["w2"].base_fan_in == 128
    assert roles["wq"].in_block and not roles["embed"].in_block and not roles["norm"].in_block


def test_tied_embeddings_have_no_readout_and_stay_input() -> None:
    cfg = TransformerConfig(width=64, depth=1, head_dim=16, tied_embeddings=True, mlp="swiglu")
    roles = transformer.roles(cfg, P)
    assert "readout" not in roles and roles["embed"].kind == "input"
    assert roles["w3"].kind == "hidden"
    params = transformer.init_params(cfg, P, __import__("jax").random.key(0))
    assert set(params) == set(roles)


def test_overrides_and_mlp_roles() -> None:
    cfg = MLPConfig(width=64, depth=2)
    roles = mlp.roles(cfg, P, overrides={"w_in": "hidden"})
    assert roles["w_in"].kind == "hidden" and roles["w_h"].kind == "hidden"
    assert roles["b_in"].kind == "input" and roles["b_h"].in_block
    assert roles["readout"].kind == "output"


def test_router_override_and_unknown_path() -> None:
    def make(w: int) -> dict:
        return {"router": jnp.zeros((w, w)), "pos": jnp.zeros((16, w))}

    roles = infer_roles(make, 8, 32, overrides={"router": "output", "pos": "input"})
    assert roles["router"].kind == "output" and roles["router"].width_mult == 4.0
    with pytest.raises(ValueError, match="no parameter at path 'nope'"):
        infer_roles(make, 8, 32, overrides={"nope": "input"})
    with pytest.raises(ValueError, match="overrides: role must be one of"):
        infer_roles(make, 8, 32, overrides={"pos": "embedding"})


def test_uninferable_role_is_a_clear_error() -> None:
    def make(w: int) -> dict:
        return {"heads": jnp.zeros((w, 4, w)), "ok": jnp.zeros((w,))}

    with pytest.raises(ValueError, match=r"^heads: cannot infer the role .*overrides"):
        infer_roles(make, 8, 16)
    roles = infer_roles(make, 8, 16, overrides={"heads": "hidden"})
    assert roles["heads"].kind == "hidden"
    heads = roles["heads"]
    assert (heads.fan_in, heads.fan_out, heads.width_mult) == (16, 64, 2.0)


def test_rank_change_is_a_clear_error() -> None:
    def make(w: int) -> dict:
        return {"odd": jnp.zeros((w,) if w == 8 else (w, 2))}

    with pytest.raises(ValueError, match="^odd: rank changes"):
        infer_roles(make, 8, 16)
