"""Parametrization validation and per-role rules (TP V Table 8, CompleteP)."""

from __future__ import annotations

import math

import pytest

from scalelaw.mup.rules import Parametrization


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "ntk"}, "name"),
        ({"base_width": 0}, "base_width"),
        ({"base_width": 64.5}, "base_width"),  # integral floats (64.0) are accepted
        ({"base_depth": -1}, "base_depth"),
        ({"weight_decay_rule": "linear"}, "weight_decay_rule"),
        ({"attn_scale": "1/d^2"}, "attn_scale"),
        ({"output_mult": 0.0}, "output_mult"),
        ({"output_mult": float("nan")}, "output_mult"),
        ({"scale_adam_eps": "yes"}, "scale_adam_eps"),
        ({"zero_init_readout": 1}, "zero_init_readout"),
        ({"completep_alpha": 1.5}, "completep_alpha"),
        ({"completep_alpha": 0}, "completep_alpha"),
    ],
)
def test_invalid_field_is_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: ") as info:
        Parametrization(**kwargs)
    assert "\n" not in str(info.value)


def test_sp_has_one_lr_and_decays_only_matrices() -> None:
    p = Parametrization("sp", base_width=64)
    for role in ("input", "hidden", "output", "scalar"):
        rule = p.layer_rule(role, width_mult=8.0)
        assert (rule.lr_mult, rule.forward_mult, rule.eps_mult) == (1.0, 1.0, 1.0)
        assert rule.wd_mult == (1.0 if role == "hidden" else 0.0)
    assert p.attention == "1/sqrt(d)"
    assert p.init_std("output", 512, 64) == pytest.approx(1 / math.sqrt(512))


@pytest.mark.parametrize(("rule", "wd_mult"), [("independent", 4.0), ("sqrt", 2.0), ("fixed", 1.0)])
def test_mup_hidden_and_weight_decay_rules(rule: str, wd_mult: float) -> None:
    p = Parametrization("mup", base_width=64, weight_decay_rule=rule, output_mult=2.0)
    hidden = p.layer_rule("hidden", width_mult=4.0)
    assert hidden.lr_mult == 0.25
    assert hidden.wd_mult == wd_mult
    # per-step shrink lr_h * wd_h scales as m^0, m^-1/2, m^-1
    assert hidden.lr_mult * hidden.wd_mult == {"independent": 1.0, "sqrt": 0.5, "fixed": 0.25}[rule]
    out = p.layer_rule("output", width_mult=4.0)
    assert (out.forward_mult, out.lr_mult, out.wd_mult) == (0.5, 1.0, 0.0)
    assert p.init_std("output", 256, 64) == pytest.approx(1 / 8)  # base-width scale kept


def test_mup_at_base_width_is_sp() -> None:
    mup, sp = Parametrization("mup", base_width=64), Parametrization("sp", base_width=64)
    for role in ("input", "hidden", "output", "scalar"):
        assert mup.layer_rule(role, 1.0) == sp.layer_rule(role, 1.0)
        assert mup.init_std(role, 64, 64) == sp.init_std(role, 64, 64)
    for d in (16, 32, 48, 64):
        assert mup.attention_scale(d) == sp.attention_scale(d)  # bit-identical


def test_attention_scale_1_over_d() -> None:
    p = Parametrization("mup", base_width=64)
    assert p.attention_scale(64, base_head_dim=16) == pytest.approx(4 / 64)
    assert Parametrization("mup", attn_scale="1/sqrt(d)").attention_scale(64, 16) == 1 / 8


def test_completep_depth_rules() -> None:
    p = Parametrization("completep", base_width=64, base_depth=2, completep_alpha=0.5,
                        scale_adam_eps=True)
    assert p.depth_mult(8) == 4.0
    assert p.residual_mult(8) == pytest.approx(0.5)
    hidden = p.layer_rule("hidden", 2.0, depth_mult=4.0)
    assert hidden.lr_mult == pytest.approx(0.5 * 4**-0.5)
    assert hidden.eps_mult == pytest.approx(0.5 * 4**-0.5)
    gain = p.layer_rule("input", 2.0, depth_mult=4.0, in_block=True)
    assert (gain.lr_mult, gain.wd_mult) == (pytest.approx(0.5), 0.0)
    assert p.layer_rule("input", 2.0, depth_mult=4.0, in_block=False).lr_mult == 1.0
    # muP ignores depth
    assert Parametrization("mup", base_depth=2).residual_mult(8) == 1.0
