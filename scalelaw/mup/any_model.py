"""muP for any JAX model, with no edits to its code: :func:`apply_mup`.

Give :func:`apply_mup` the model as a function of its width -- a factory returning a Flax
NNX module (``lambda w: MyNet(w, rngs=nnx.Rngs(0))``) or an init function returning a
parameter pytree (``lambda w: init(key, w)``) -- and it

1. infers every parameter's role from its shapes at two widths
   (:func:`scalelaw.mup.roles.infer_roles`; a conv kernel ``(*window, in, out)`` is read as
   ``(prod(window) * in, out)``; ``overrides`` fix the rest, with or without NNX's
   ``/value``);
2. re-initialises the parameters by role (below);
3. builds the optax optimizer with per-parameter LR, weight decay and Adam epsilon
   (:func:`scalelaw.mup.optim.adamw` or ``sgd``);

and returns all of it as a :class:`MupSetup`, whose roles and rules are pytrees parallel
to the parameters (plain metadata: they survive sharding and checkpointing of the arrays,
which they never touch).

*Initialisation by role* (TP V Table 8; microsoft/mup's ``set_base_shapes`` rescaling).
``init="rescale"`` (default) keeps the model's own draws and assumes they are SP at every
width: fan-in scaled, as Flax's default ``lecun_normal``. Under muP only the readout's
init differs from SP (standard deviation ``1/sqrt(base_fan_in)`` instead of
``1/sqrt(fan_in)``), so the readout is multiplied by ``sqrt(fan_in / base_fan_in)``
(0 with ``zero_init_readout``). Zero-initialised weights (adaLN-Zero, a zero final layer)
stay zero, biases and gains are kept. Not every default is SP in this sense:
``nnx.Embed`` draws with standard deviation ``1/sqrt(features)``, which shrinks with
width where muP wants a width-independent embedding (the coordinate check flags it as
"vanishes"); give it a fixed ``embedding_init`` or use ``init="normal"``.
``init="normal"`` draws every weight of rank >= 2 that the model did not set to a
constant (zero-initialised weights, stacked gains) afresh from ``N(0, init_std^2)`` of
:meth:`Parametrization.init_std` (vectors kept).

*The readout multiplier.* muP multiplies the readout's output by ``a = output_mult / m``.
A model with no hook for it (``readout="absorb"``, the default) gets ``a`` folded into the
readout weight: init ``x a``, Adam LR ``x a``, epsilon ``/ a``, weight decay ``/ a`` (SGD
LR ``x a^2``) -- the abc-parametrization symmetry of Tensor Programs V (Yang et al. 2022),
exact for Adam once epsilon is scaled, derived in
:meth:`scalelaw.mup.rules.LayerRule.absorbed`. A model that applies the multiplier itself
(``readout="hook"``) multiplies its logits by ``MupSetup.output_mult``.

*Tied embeddings.* An array used both as the input embedding (a lookup) and as the readout
(``x @ E.T``) has the shape of an input weight ``(vocab, width)``, and is given the
*input* role: its init is kept (Theta(1) in width: Table 8's input init 1/fan_in with the
one-hot fan-in ``vocab``), Adam LR x 1, weight decay 0, epsilon x 1 -- in Table 8 these
equal the output weights' Adam LR and init, which is why that form permits tying. Only the
forward multiplier ``a`` differs between the two uses, and it cannot be absorbed into the
shared array (that would scale the input use too): the model must apply it at the readout
use (``readout="hook"``). The array is not rescaled by ``sqrt(m)`` either -- the rescaling
of a tied readout that makes the embedding grow with width is microsoft/mup issue #55.
With ``readout="absorb"`` and no output-role parameter, :func:`apply_mup` refuses and says
so.

Examples
--------
>>> from flax import nnx
>>> class Net(nnx.Module):
...     def __init__(self, width, rngs):
...         self.inp = nnx.Linear(8, width, rngs=rngs)
...         self.hid = nnx.Linear(width, width, rngs=rngs)
...         self.out = nnx.Linear(width, 3, rngs=rngs)
...     def __call__(self, x):
...         return self.out(jax.nn.relu(self.hid(jax.nn.relu(self.inp(x)))))
>>> setup = apply_mup(lambda w: Net(w, nnx.Rngs(0)), width=256, base_width=64,
...                   learning_rate=1e-2)
>>> {k: setup.roles[k]["kernel"].kind for k in ("inp", "hid", "out")}
{'inp': 'input', 'hid': 'hidden', 'out': 'output'}
>>> setup.rules["hid"]["kernel"].lr_mult, setup.rules["out"]["kernel"].lr_mult
(0.25, 0.25)
>>> optimizer = nnx.Optimizer(setup.module, setup.optimizer, wrt=nnx.Param)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from scalelaw.errors import FieldError
from scalelaw.mup import optim
from scalelaw.mup.roles import Role, infer_roles
from scalelaw.mup.rules import NAMES, Parametrization

READOUTS = ("absorb", "hook")
INITS = ("rescale", "normal")
OPTIMIZERS = ("adamw", "sgd")


def _is_role(x: Any) -> bool:
    return isinstance(x, Role)


@dataclass(frozen=True)
class MupSetup:
    """What :func:`apply_mup` returns.

    Attributes
    ----------
    params : pytree
        The re-initialised parameters: the init function's pytree, or for an NNX model
        its ``nnx.state(module, nnx.Param)``.
    roles, rules : pytree
        :class:`~scalelaw.mup.roles.Role` and :class:`~scalelaw.mup.rules.LayerRule` per
        parameter, parallel to ``params`` (rules with the readout multiplier absorbed when
        ``readout="absorb"``).
    optimizer : optax.GradientTransformation
        The muP optimizer; it labels parameters by path, so it accepts ``params`` as a
        dict, an NNX State or what ``nnx.Optimizer`` passes it.
    output_mult : float
        The multiplier the model must apply to its readout's output: 1 when absorbed.
    parametrization : Parametrization
    width : int
    module : nnx.Module or None
        For an NNX model: the module at ``width``, its parameters set to ``params``.
    """

    params: Any
    roles: Any
    rules: Any
    optimizer: optax.GradientTransformation
    output_mult: float
    parametrization: Parametrization
    width: int
    module: Any = None


def _params_of(built: Any) -> Any:
    from flax import nnx

    return nnx.state(built, nnx.Param) if isinstance(built, nnx.Module) else built


def _parametrization(parametrization: Parametrization | str, base_width: int | None,
                     ) -> Parametrization:
    if isinstance(parametrization, Parametrization):
        if base_width is not None and base_width != parametrization.base_width:
            raise FieldError("base_width", f"{base_width} differs from "
                             f"parametrization.base_width={parametrization.base_width}")
        return parametrization
    if parametrization not in NAMES:
        raise FieldError("parametrization", f"must be one of {', '.join(NAMES)} or a "
                         f"Parametrization, got {parametrization!r}")
    if base_width is None:
        raise FieldError("base_width", "required when parametrization is a name")
    return Parametrization(parametrization, base_width=base_width)  # type: ignore[arg-type]


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise FieldError(field, f"must be one of {', '.join(allowed)}, got {value!r}")


def apply_mup(
    model: Callable[[int], Any],
    *,
    width: int,
    base_width: int | None = None,
    parametrization: Parametrization | str = "mup",
    learning_rate: optim.ScalarOrSchedule = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    b1: float = 0.9,
    b2: float = 0.95,
    eps: float = 1e-8,
    momentum: float | None = None,
    readout: str = "absorb",
    init: str = "rescale",
    overrides: Mapping[str, str] | None = None,
    probe_width: int | None = None,
    depth: int | None = None,
    stacked: bool = False,
    key: jax.Array | None = None,
) -> MupSetup:
    """Make ``model`` muP (or SP/CompleteP) at ``width``: roles, init and optimizer.

    Parameters
    ----------
    model : callable
        ``model(width)`` returns a Flax NNX module or a parameter pytree (Flax layout:
        weights ``(..., fan_in, fan_out)``). Called once at ``width`` and traced (no
        allocation) at ``base_width`` and ``probe_width``.
    width : int
        The width to build.
    base_width : int, optional
        Where muP equals SP; required unless ``parametrization`` is a
        :class:`Parametrization` (which carries it).
    parametrization : Parametrization or {"mup", "sp", "completep"}
    learning_rate, weight_decay, b1, b2, eps, momentum
        The base (width-independent) optimizer constants; see
        :func:`scalelaw.mup.optim.adamw` and ``sgd``.
    optimizer : {"adamw", "sgd"}
    readout : {"absorb", "hook"}
        Fold the readout multiplier into the readout weight, or leave it to the model
        (which multiplies by ``MupSetup.output_mult``). See the module docstring.
    init : {"rescale", "normal"}
        Keep the model's SP draws and rescale by role, or draw afresh by role.
    overrides : mapping of path to role, optional
        As in :func:`scalelaw.mup.roles.infer_roles`; NNX paths with or without ``/value``.
    probe_width : int, optional
        Second width for role inference (default ``width``, or ``2 * base_width`` at the
        base); set it when the model only takes some widths (e.g. multiples of a head size).
    depth : int, optional
        The model's depth, for CompleteP's depth multipliers.
    stacked : bool
        The model stacks its blocks along a leading layer axis (for ``lax.scan``) and is
        called ``model(width, depth)``: the axis that grows with depth is found (traced at
        ``depth + 1``), left out of the fans and marks the parameter as inside a residual
        block (CompleteP's block LRs). Requires ``depth``. Without it such an axis is read
        like a convolution's window (fan-in ``layers * width``), which gives the right LR
        multipliers but not the right ``init="normal"`` scale or block LRs.
    key : jax.Array, optional
        PRNG key for ``init="normal"`` (default ``jax.random.key(0)``).

    Returns
    -------
    MupSetup

    Raises
    ------
    FieldError
        For a bad argument (the message names it), a parameter whose role cannot be
        inferred, or ``readout="absorb"`` on a model with no readout parameter (tied
        embeddings: use ``readout="hook"``).
    """
    p = _parametrization(parametrization, base_width)
    _choice("readout", readout, READOUTS)
    _choice("init", init, INITS)
    _choice("optimizer", optimizer, OPTIMIZERS)
    if not isinstance(width, int) or width < 1:
        raise FieldError("width", f"must be a positive integer, got {width!r}")
    if stacked and depth is None:
        raise FieldError("depth", "required with stacked=True")
    if stacked:
        built = model(width, depth)  # type: ignore[call-arg]
        roles = infer_roles(lambda w, d: _params_of(model(w, d)),  # type: ignore[call-arg]
                            p.base_width, width, depth=depth, probe_width=probe_width,
                            overrides=overrides)
    else:
        built = model(width)
        roles = infer_roles(lambda w: _params_of(model(w)), p.base_width, width,
                            probe_width=probe_width, overrides=overrides)
    params = _params_of(built)
    rules = optim.layer_rules(roles, p, depth)
    is_output = [r.kind == "output" for r in jax.tree.leaves(roles, is_leaf=_is_role)]
    if readout == "absorb" and not any(is_output) and (p.name != "sp" or p.output_mult != 1):
        raise FieldError("readout", "no readout (output-role) parameter to absorb the muP "
                         "multiplier into; with tied embeddings pass readout='hook' and "
                         "multiply the logits by MupSetup.output_mult")
    output_mult = p.layer_rule("output", width / p.base_width).forward_mult
    if readout == "absorb":
        rules = jax.tree.map(lambda r, rule: rule.absorbed() if r.kind == "output" else rule,
                             roles, rules, is_leaf=_is_role)
        output_mult = 1.0
    params = _initialise(params, roles, p, init, readout,
                         jax.random.key(0) if key is None else key)
    if optimizer == "adamw":
        opt = optim.adamw(learning_rate, weight_decay, b1=b1, b2=b2, eps=eps, rules=rules)
    else:
        opt = optim.sgd(learning_rate, momentum=momentum, rules=rules)
    from flax import nnx

    module = None
    if isinstance(built, nnx.Module):
        nnx.update(built, params)
        module = built
    return MupSetup(params, roles, rules, opt, output_mult, p, width, module)


def _initialise(params: Any, roles: Any, p: Parametrization, init: str, readout: str,
                key: jax.Array) -> Any:
    flat_roles = jax.tree.leaves(roles, is_leaf=_is_role)
    keys = iter(jax.random.split(key, max(len(flat_roles), 1)))

    def one(role: Role, x: Any) -> Any:
        k = next(keys)
        x = jnp.asarray(x)
        # the forward multiplier a folded into the weight (LayerRule.absorbed): init x a
        absorbed = readout == "absorb" and role.kind == "output"
        a = p.layer_rule("output", role.width_mult).forward_mult if absorbed else 1.0
        # constant arrays (zero-initialised weights, stacked gains and biases) are kept
        if init == "normal" and x.ndim >= 2 and bool(jnp.any(x != x.ravel()[0])):
            std = p.init_std(role.kind, role.fan_in, role.base_fan_in)
            return (a * std * jax.random.normal(k, x.shape, jnp.float32)).astype(x.dtype)
        scale = a
        if role.kind == "output" and x.ndim >= 2:
            if p.zero_init_readout:
                scale = 0.0
            elif p.name != "sp":
                scale *= math.sqrt(role.fan_in / role.base_fan_in)
        return x if scale == 1.0 else (x * scale).astype(x.dtype)

    return jax.tree.map(one, roles, params, is_leaf=_is_role)
