"""Optimizers with per-parameter muP/CompleteP multipliers, as plain optax transformations.

Each parameter gets a label from its :class:`~scalelaw.mup.roles.Role` and the
:class:`~scalelaw.mup.rules.Parametrization`; parameters with equal multipliers share a
label, and :func:`optax.multi_transform` runs one ordinary optax optimizer per label. The
result is an ordinary :class:`optax.GradientTransformation`: it composes with
``optax.chain`` (clipping first), masking and ``optax.inject_hyperparams``; the learning
rate may be a float, a traced scalar or an ``optax.Schedule``, and every group's LR is
that value times a constant, so schedules change group LRs relatively, never absolutely
(microsoft/mup's rule).

Examples
--------
>>> import jax, jax.numpy as jnp
>>> from scalelaw.mup.roles import infer_roles
>>> from scalelaw.mup.rules import Parametrization
>>> make = lambda w: {"w_in": jnp.ones((3, w)), "w_h": jnp.ones((w, w)), "w_out": jnp.ones((w, 2))}
>>> roles = infer_roles(make, base_width=8, width=32)
>>> opt = adamw(1e-2, 0.1, roles=roles, parametrization=Parametrization("mup", base_width=8))
>>> params = make(32)
>>> updates, _ = opt.update(jax.tree.map(jnp.ones_like, params), opt.init(params), params)
>>> round(float(updates["w_h"][0, 0]), 6)  # -(lr/m) * (1 + (wd*m) * 1), m = 4
-0.0035
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import jax
import optax

from scalelaw.mup.roles import NNX_VALUE_SUFFIX, Role, path_str
from scalelaw.mup.rules import LayerRule, Parametrization

ScalarOrSchedule: TypeAlias = float | jax.Array | optax.Schedule


def layer_rules(roles: Any, parametrization: Parametrization, depth: int | None = None) -> Any:
    """Map a role pytree to a pytree of :class:`~scalelaw.mup.rules.LayerRule`."""
    if depth is None and parametrization.name == "completep" and parametrization.base_depth:
        raise ValueError("depth: required with CompleteP (its LR and eps rules depend on it)")
    depth_mult = parametrization.depth_mult(depth) if depth is not None else 1.0

    def rule(role: Role) -> LayerRule:
        return parametrization.layer_rule(role.kind, role.width_mult, depth_mult, role.in_block)

    return jax.tree.map(rule, roles, is_leaf=lambda x: isinstance(x, Role))


def _scaled(lr: ScalarOrSchedule, mult: float) -> ScalarOrSchedule:
    if callable(lr):
        return lambda count: lr(count) * mult
    return lr * mult


def _per_rule(
    roles: Any,
    parametrization: Parametrization | None,
    depth: int | None,
    make: Callable[[LayerRule], optax.GradientTransformation],
    rules: Any = None,
) -> optax.GradientTransformation:
    if rules is None:
        if roles is None or parametrization is None:
            raise ValueError("roles: pass roles and parametrization, or rules")
        rules = layer_rules(roles, parametrization, depth)
    elif roles is not None:
        raise ValueError("rules: pass either rules or roles and parametrization, not both")
    is_rule = lambda x: isinstance(x, LayerRule)  # noqa: E731
    flat = jax.tree_util.tree_flatten_with_path(rules, is_leaf=is_rule)[0]
    distinct = sorted({rule for _, rule in flat}, key=repr)
    names = {rule: f"group{i}" for i, rule in enumerate(distinct)}
    by_path = {_canonical(path): names[rule] for path, rule in flat}

    def labels(tree: Any) -> Any:
        # by path, so that the labels fit whatever container holds the parameters: a dict,
        # an NNX State of Variables or of plain arrays (paths with or without "/value")
        def label(path: tuple[Any, ...], _: Any) -> str:
            key = _canonical(path)
            if key not in by_path:
                raise ValueError(f"params: no muP rule for the parameter at {key!r}")
            return by_path[key]

        return jax.tree_util.tree_map_with_path(label, tree)

    transforms = {name: make(rule) for rule, name in names.items()}
    return optax.multi_transform(transforms, labels)


def _canonical(path: tuple[Any, ...]) -> str:
    return path_str(path).removesuffix(NNX_VALUE_SUFFIX)


def adamw(
    learning_rate: ScalarOrSchedule,
    weight_decay: float = 0.0,
    *,
    roles: Any = None,
    parametrization: Parametrization | None = None,
    b1: float = 0.9,
    b2: float = 0.95,
    eps: float = 1e-8,
    depth: int | None = None,
    rules: Any = None,
) -> optax.GradientTransformation:
    """AdamW with per-parameter LR, weight decay and epsilon from the parametrization.

    For each parameter ``p`` with rule ``r`` (see :mod:`scalelaw.mup.rules`), the coupled
    AdamW update is ``p <- p - lr * r.lr_mult * (adam(g; eps * r.eps_mult) +
    weight_decay * r.wd_mult * p)`` -- optax's and PyTorch's AdamW form.

    Parameters
    ----------
    learning_rate : float, traced scalar or optax.Schedule
        The base (width-independent) learning rate.
    weight_decay : float
        The base weight decay; hidden matrices get ``weight_decay * wd_mult`` (set by
        ``parametrization.weight_decay_rule``), vector-like parameters 0.
    roles : pytree of Role
        From :func:`scalelaw.mup.roles.infer_roles` (or a model's ``roles()``).
    parametrization : Parametrization
    b1, b2, eps : float
        Adam constants (``eps`` is scaled for hidden weights when
        ``parametrization.scale_adam_eps``).
    depth : int, optional
        Model depth, for CompleteP's depth multiplier.
    rules : pytree of LayerRule, optional
        Per-parameter multipliers given directly (e.g. ``MupSetup.rules`` of
        :func:`scalelaw.mup.any_model.apply_mup`, with a readout multiplier absorbed), in
        place of ``roles`` and ``parametrization``.

    Examples
    --------
    Under muP at 4x the base width, Adam's step on a hidden matrix is the base LR / 4:

    >>> import jax, jax.numpy as jnp
    >>> from scalelaw.mup.roles import infer_roles
    >>> make = lambda w: {"w_in": jnp.ones((3, w)), "w_h": jnp.ones((w, w))}
    >>> opt = adamw(1e-2, roles=infer_roles(make, base_width=8, width=32),
    ...             parametrization=Parametrization("mup", base_width=8))
    >>> p = make(32)
    >>> step, _ = opt.update(jax.tree.map(jnp.ones_like, p), opt.init(p), p)
    >>> round(float(step["w_in"][0, 0]), 6), round(float(step["w_h"][0, 0]), 6)
    (-0.01, -0.0025)
    """

    def make(rule: LayerRule) -> optax.GradientTransformation:
        return optax.adamw(
            _scaled(learning_rate, rule.lr_mult), b1=b1, b2=b2, eps=eps * rule.eps_mult,
            weight_decay=weight_decay * rule.wd_mult,
        )

    return _per_rule(roles, parametrization, depth, make, rules)


def sgd(
    learning_rate: ScalarOrSchedule,
    *,
    roles: Any = None,
    parametrization: Parametrization | None = None,
    momentum: float | None = None,
    depth: int | None = None,
    rules: Any = None,
) -> optax.GradientTransformation:
    """SGD with TP V Table 8 learning-rate multipliers (input and output ``x m``).

    Under SP every multiplier is 1. See :func:`adamw` for the arguments.
    """

    def make(rule: LayerRule) -> optax.GradientTransformation:
        return optax.sgd(_scaled(learning_rate, rule.sgd_lr_mult), momentum=momentum)

    return _per_rule(roles, parametrization, depth, make, rules)
