"""multipliers_table of a 2-layer transformer at m = 4 against hand-written tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from scalelaw.models import TransformerConfig, transformer
from scalelaw.mup.rules import Parametrization
from scalelaw.mup.tables import multipliers_table

CFG = TransformerConfig(width=128, depth=2, head_dim=16, vocab=256, mlp_ratio=4.0)
NAN = math.nan
S128, S512, S32, S16 = 128**-0.5, 512**-0.5, 32**-0.5, 1 / 16

# path: role, fan_in, fan_out, width_mult, in_block, init_std, forward_mult
SHAPES = {
    "attn_norm": ("input", 1, 128, 4.0, True, NAN, 1.0),
    "embed": ("input", 256, 128, 4.0, False, S16, 1.0),
    "mlp_norm": ("input", 1, 128, 4.0, True, NAN, 1.0),
    "norm": ("input", 1, 128, 4.0, False, NAN, 1.0),
    "readout": ("output", 128, 256, 4.0, False, S32, 0.25),
    "w1": ("hidden", 128, 512, 4.0, True, S128, 1.0),
    "w2": ("hidden", 512, 128, 4.0, True, S512, 1.0),
    "wk": ("hidden", 128, 128, 4.0, True, S128, 1.0),
    "wo": ("hidden", 128, 128, 4.0, True, S128, 1.0),
    "wq": ("hidden", 128, 128, 4.0, True, S128, 1.0),
    "wv": ("hidden", 128, 128, 4.0, True, S128, 1.0),
}
HIDDEN = ("w1", "w2", "wk", "wo", "wq", "wv")


def expected(lr: dict[str, float], wd: dict[str, float], eps: dict[str, float]) -> pd.DataFrame:
    rows = []
    for path, (role, fi, fo, m, blk, std, fwd) in SHAPES.items():
        rows.append({"path": path, "role": role, "fan_in": fi, "fan_out": fo, "width_mult": m,
                     "in_block": blk, "init_std": std, "forward_mult": fwd,
                     "lr_mult": lr.get(path, 1.0), "sgd_lr_mult": 1.0 if role == "hidden" else 4.0,
                     "wd": wd.get(path, 0.0), "eps": eps.get(path, 1e-8)})
    return pd.DataFrame(rows)


def check(table: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(table.reset_index(drop=True), want, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize(("rule", "wd_h"), [("independent", 0.4), ("sqrt", 0.2), ("fixed", 0.1)])
def test_mup_table_each_weight_decay_rule(rule: str, wd_h: float) -> None:
    p = Parametrization("mup", base_width=32, weight_decay_rule=rule)
    table = multipliers_table(transformer.roles(CFG, p), p, weight_decay=0.1, depth=2)
    check(table, expected({h: 0.25 for h in HIDDEN}, {h: wd_h for h in HIDDEN}, {}))
    assert table.attrs["residual_mult"] == 1.0


def test_mup_table_scaled_eps() -> None:
    p = Parametrization("mup", base_width=32, scale_adam_eps=True)
    table = multipliers_table(transformer.roles(CFG, p), p, weight_decay=0.1, eps=1e-8, depth=2)
    check(table, expected({h: 0.25 for h in HIDDEN}, {h: 0.4 for h in HIDDEN},
                          {h: 0.25e-8 for h in HIDDEN}))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_completep_table_at_depth_mult_2(alpha: float) -> None:
    p = Parametrization("completep", base_width=32, base_depth=1, completep_alpha=alpha,
                        scale_adam_eps=True)
    table = multipliers_table(transformer.roles(CFG, p), p, weight_decay=0.1, eps=1e-8, depth=2)
    depth_lr = 2.0 ** (alpha - 1)  # L^(alpha-1), L = 2
    lr = {h: 0.25 * depth_lr for h in HIDDEN} | {"attn_norm": depth_lr, "mlp_norm": depth_lr}
    eps = {h: 1e-8 * 0.25 * 2.0**-alpha for h in HIDDEN}
    check(table, expected(lr, {h: 0.4 for h in HIDDEN}, eps))
    assert table.attrs["residual_mult"] == pytest.approx(2.0**-alpha)


def test_sp_table() -> None:
    p = Parametrization("sp", base_width=32)
    table = multipliers_table(transformer.roles(CFG, p), p, weight_decay=0.1, depth=2)
    assert (table["lr_mult"] == 1.0).all() and (table["sgd_lr_mult"] == 1.0).all()
    readout = table.set_index("path").loc["readout"]
    assert readout["forward_mult"] == 1.0 and readout["init_std"] == pytest.approx(S128)
    assert dict(zip(table["path"], table["wd"], strict=True))["w1"] == 0.1
