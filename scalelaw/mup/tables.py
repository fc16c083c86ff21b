"""A readable table of every parameter's role and multipliers.

Examples
--------
>>> import jax.numpy as jnp
>>> from scalelaw.mup.roles import infer_roles
>>> from scalelaw.mup.rules import Parametrization
>>> make = lambda w: {"w_in": jnp.ones((3, w)), "w_h": jnp.ones((w, w)), "w_out": jnp.ones((w, 2))}
>>> roles = infer_roles(make, base_width=8, width=32)
>>> t = multipliers_table(roles, Parametrization("mup", base_width=8), weight_decay=0.1)
>>> t.set_index("path")[["role", "lr_mult", "wd"]].to_dict("index")["w_h"]
{'role': 'hidden', 'lr_mult': 0.25, 'wd': 0.4}
"""

from __future__ import annotations

import math
from typing import Any

import jax
import pandas as pd

from scalelaw.mup.roles import Role, path_str
from scalelaw.mup.rules import Parametrization

COLUMNS = ("path", "role", "fan_in", "fan_out", "width_mult", "in_block", "init_std",
           "forward_mult", "lr_mult", "sgd_lr_mult", "wd", "eps")


def multipliers_table(
    roles: Any,
    parametrization: Parametrization,
    *,
    weight_decay: float = 1.0,
    eps: float = 1e-8,
    depth: int | None = None,
) -> pd.DataFrame:
    """One row per parameter: role, fans, init std and every multiplier.

    Parameters
    ----------
    roles : pytree of Role
        From :func:`scalelaw.mup.roles.infer_roles` or a model's ``roles``.
    parametrization : Parametrization
    weight_decay, eps : float
        Base AdamW weight decay and Adam epsilon; the ``wd`` and ``eps`` columns are the
        effective per-parameter values (``weight_decay=1`` shows the multiplier).
    depth : int, optional
        Model depth, for CompleteP's depth multiplier.

    Returns
    -------
    DataFrame
        Columns ``path, role, fan_in, fan_out, width_mult, in_block, init_std,
        forward_mult, lr_mult, sgd_lr_mult, wd, eps``, sorted by path. ``init_std`` is NaN
        for vectors (the model sets gains to 1 and biases to 0). CompleteP's residual
        branch multiplier is per block, not per parameter: it is in
        ``table.attrs["residual_mult"]``.
    """
    p = parametrization
    depth_mult = p.depth_mult(depth) if depth is not None else 1.0
    rows = []
    leaves = jax.tree_util.tree_flatten_with_path(roles, is_leaf=lambda x: isinstance(x, Role))[0]
    for path, role in leaves:
        rule = p.layer_rule(role.kind, role.width_mult, depth_mult, role.in_block)
        is_vector = role.kind in ("input", "scalar") and role.fan_in == 1
        init = math.nan if is_vector else p.init_std(role.kind, role.fan_in, role.base_fan_in)
        rows.append({
            "path": path_str(path), "role": role.kind, "fan_in": role.fan_in,
            "fan_out": role.fan_out, "width_mult": role.width_mult, "in_block": role.in_block,
            "init_std": init, "forward_mult": rule.forward_mult, "lr_mult": rule.lr_mult,
            "sgd_lr_mult": rule.sgd_lr_mult, "wd": weight_decay * rule.wd_mult,
            "eps": eps * rule.eps_mult,
        })
    table = pd.DataFrame(rows, columns=list(COLUMNS)).sort_values("path", ignore_index=True)
    table.attrs["residual_mult"] = p.residual_mult(depth) if depth is not None else 1.0
    return table
