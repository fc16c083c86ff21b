"""Infer each parameter's muP role by comparing parameter shapes at two widths.

A dimension that differs between the model built at ``base_width`` and at a second
width is *infinite* (it grows with width); the others are finite (TP V App. B;
microsoft/mup ``set_base_shapes``). Shapes come from :func:`jax.eval_shape`, so nothing
is allocated. Weights use the Flax layout ``(..., fan_in, fan_out)``; a leading axis
that grows with *depth* (blocks stacked for ``lax.scan``) is a layer axis, excluded from
the fan-in/fan-out and marking the parameter as living inside a residual block. A
kernel of higher rank whose leading dims do not grow (a convolution's
``(*window, in, out)``, Flax's layout) is read as ``(prod(window) * in, out)``.

======================  ============================================  ==========
infinite dims           example                                       role
======================  ============================================  ==========
fan_in and fan_out      attention and MLP matrices                    ``hidden``
fan_in only             readout ``(width, vocab)``                    ``output``
fan_out only / vector   embedding ``(vocab, width)``, norm gains      ``input``
none                    a bias of finite size, a scalar gain          ``scalar``
======================  ============================================  ==========

Examples
--------
>>> import jax.numpy as jnp
>>> def make(width):
...     return {"embed": jnp.zeros((10, width)), "hidden": jnp.zeros((width, width)),
...             "readout": jnp.zeros((width, 3)), "gain": jnp.ones((width,))}
>>> roles = infer_roles(make, base_width=16, width=64)
>>> {k: (r.kind, r.width_mult) for k, r in roles.items()}  # doctest: +NORMALIZE_WHITESPACE
{'embed': ('input', 4.0), 'gain': ('input', 4.0), 'hidden': ('hidden', 4.0),
 'readout': ('output', 4.0)}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import jax

from scalelaw.mup.rules import ROLES

NNX_VALUE_SUFFIX = "/value"
"""The last key of a parameter's path in a Flax NNX state (``"kernel/value"``)."""


@dataclass(frozen=True)
class Role:
    """The role of one parameter and the shape facts the rules need.

    Attributes
    ----------
    kind : {"input", "hidden", "output", "scalar"}
    fan_in, fan_out : int
        Of the last two dims (a vector has ``fan_in = 1``; a scalar has both 1).
    base_fan_in : int
        ``fan_in`` at the base width.
    width_mult : float
        ``m``: fan-in ratio to the base for hidden and output weights, the ratio of the
        infinite dim for input weights and vectors, 1 for scalars.
    in_block : bool
        The parameter carries a leading layer axis (lives inside residual blocks).
    """

    kind: str
    fan_in: int
    fan_out: int
    base_fan_in: int
    width_mult: float
    in_block: bool = False


def path_str(path: tuple[Any, ...]) -> str:
    """``(DictKey('blocks'), DictKey('wq'))`` -> ``'blocks/wq'``."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def infer_roles(
    make_params: Callable[..., Any],
    base_width: int,
    width: int | None = None,
    *,
    depth: int | None = None,
    probe_width: int | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Any:
    """Return a pytree of :class:`Role`, parallel to ``make_params(width)``.

    Parameters
    ----------
    make_params : callable
        ``make_params(width)`` (or ``make_params(width, depth)`` when ``depth`` is given)
        returns the parameter pytree of the model at that width. It is only traced.
    base_width : int
        The width at which the parametrization equals SP.
    width : int, optional
        The actual width (default ``base_width``).
    depth : int, optional
        If given, a leading axis that grows between ``depth`` and ``depth + 1`` is taken
        as a stacked-layer axis.
    probe_width : int, optional
        Second width used to detect infinite dims (default ``2 * base_width``, or
        ``width`` when it differs from the base).
    overrides : mapping of path to role, optional
        Force a role by parameter path (``"/"``-joined keys), e.g. an MoE router as
        ``"output"`` or a positional embedding as ``"input"``. For a Flax NNX state the
        path may be written with or without the trailing ``/value`` key
        (``"head/kernel"`` or ``"head/kernel/value"``).

    Raises
    ------
    ValueError
        If a parameter's role cannot be inferred (more than two non-layer dims, or a rank
        that changes with width), or an override names no parameter or no role; the
        message names the parameter path.
    """
    width = base_width if width is None else width
    if probe_width is None:
        probe_width = width if width != base_width else 2 * base_width
    if probe_width == base_width:
        raise ValueError("probe_width: must differ from base_width")

    def shapes(w: int, d: int | None = None) -> Any:
        args = (w,) if depth is None else (w, depth if d is None else d)
        return jax.eval_shape(lambda: make_params(*args))

    base, probe, actual = shapes(base_width), shapes(probe_width), shapes(width)
    deeper = shapes(width, depth + 1) if depth is not None else actual
    overrides = dict(overrides or {})
    unknown = [r for r in overrides.values() if r not in ROLES]
    if unknown:
        raise ValueError(f"overrides: role must be one of {', '.join(ROLES)}, got {unknown[0]!r}")

    flat, treedef = jax.tree_util.tree_flatten_with_path(actual)
    leaves = [jax.tree_util.tree_leaves(t) for t in (base, probe, deeper)]
    if any(len(ls) != len(flat) for ls in leaves):
        raise ValueError("make_params: the parameter tree structure changes with width or depth")
    roles = []
    for i, (path, leaf) in enumerate(flat):
        name = path_str(path)
        key = _override_key(name, overrides)
        b, pr, dp = (ls[i].shape for ls in leaves)
        role = _classify(name, leaf.shape, b, pr, dp, flatten=key is not None)
        if key is not None:
            role = _with_kind(role, overrides.pop(key))
        roles.append(role)
    if overrides:
        raise ValueError(f"overrides: no parameter at path {next(iter(overrides))!r}")
    return jax.tree_util.tree_unflatten(treedef, roles)


def _override_key(name: str, overrides: Mapping[str, str]) -> str | None:
    """The key of ``overrides`` naming parameter ``name``, with or without NNX's ``/value``."""
    if name in overrides:
        return name
    stem = name.removesuffix(NNX_VALUE_SUFFIX)
    if stem != name and stem in overrides:
        return stem
    if f"{name}{NNX_VALUE_SUFFIX}" in overrides:
        return f"{name}{NNX_VALUE_SUFFIX}"
    return None


def _classify(
    name: str, shape: tuple[int, ...], base: tuple[int, ...], probe: tuple[int, ...],
    deeper: tuple[int, ...], flatten: bool = False,
) -> Role:
    if not (len(shape) == len(base) == len(probe) == len(deeper)):
        raise ValueError(f"{name}: rank changes with width or depth; cannot infer its role")
    in_block = len(shape) > 0 and deeper[0] != shape[0]
    core, base_core, probe_core = (s[1:] if in_block else s for s in (shape, base, probe))
    if flatten and len(core) > 2:  # overridden: read it as (fan_in, everything else)
        core, base_core, probe_core = (
            (c[0], math.prod(c[1:])) for c in (core, base_core, probe_core))
    infinite = [b != p for b, p in zip(base_core, probe_core, strict=True)]
    if len(core) > 2 and not any(infinite[:-2]):  # a conv kernel (*window, in, out)
        core, base_core, probe_core = (
            (math.prod(c[:-1]), c[-1]) for c in (core, base_core, probe_core))
        infinite = [b != p for b, p in zip(base_core, probe_core, strict=True)]
    if len(core) > 2:
        raise ValueError(
            f"{name}: cannot infer the role of a parameter with shape {shape}; "
            "pass overrides={path: role} (read as (fan_in, rest)) or store it as (fan_in, fan_out)"
        )
    if len(core) == 0 or not any(infinite):
        fan_in = core[0] if len(core) == 2 else 1
        return Role("scalar", fan_in, core[-1] if core else 1, fan_in, 1.0, in_block)
    if len(core) == 1:
        return Role("input", 1, core[0], 1, core[0] / base_core[0], in_block)
    fan_in, fan_out = core
    ratio_in, ratio_out = fan_in / base_core[0], fan_out / base_core[1]
    if all(infinite):
        return Role("hidden", fan_in, fan_out, base_core[0], ratio_in, in_block)
    if infinite[0]:
        return Role("output", fan_in, fan_out, base_core[0], ratio_in, in_block)
    return Role("input", fan_in, fan_out, base_core[0], ratio_out, in_block)


def _with_kind(role: Role, kind: str) -> Role:
    """Re-label a role, recomputing which ratio is the width multiplier."""
    if kind == role.kind:
        return role
    if kind in ("hidden", "output"):
        mult = role.fan_in / role.base_fan_in
    elif kind == "input" and role.kind == "output":
        mult = 1.0  # its fan_out is finite
    else:
        mult = role.width_mult
    return replace(role, kind=kind, width_mult=mult)
