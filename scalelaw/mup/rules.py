"""Parametrization rules: SP, muP (Tensor Programs V, Table 8) and CompleteP.

Pure Python (no JAX), so tables, sweep specs and :func:`scalelaw.recommend` can use the
rules without importing model code.

Every rule is expressed *relative to a base shape*, as microsoft/mup does: with
``m = width / base_width`` (the width multiplier of the dimension that grows), muP at
``m = 1`` is exactly the standard parametrization (SP).

Per role (``input`` = vector-like: input weights, biases, norm gains; ``hidden`` =
matrix-like; ``output`` = readout; ``scalar``), with Adam(W):

============  ===================  ====================  ====================
role          init std             forward multiplier    Adam LR multiplier
============  ===================  ====================  ====================
input         1/sqrt(fan_in)       1                     1
hidden        1/sqrt(fan_in)       1                     1/m   (SP: 1)
output        1/sqrt(base_fan_in)  output_mult/m         1
              (SP: 1/sqrt(fan_in)) (SP: output_mult)
============  ===================  ====================  ====================

Sources: Yang et al. 2022, "Tensor Programs V" (arXiv 2203.03466), Table 8 and App. B
(attention logits 1/d, AdamW, Adam epsilon); microsoft/mup ``MuReadout`` and ``MuAdam``.

Weight decay uses the coupled AdamW form ``p <- p - lr * (u + wd * p)`` (optax, PyTorch).
For hidden matrices ``lr_h = lr / m`` and the ``weight_decay_rule`` sets ``wd_h`` so that
the per-step shrink ``lr_h * wd_h`` scales as:

- ``"independent"``: ``m^0``, ``wd_h = wd * m`` (TP V App. B.3; microsoft/mup ``MuAdamW``
  default; Wang & Aitchison 2024, arXiv 2405.13698; CompleteP reference code);
- ``"sqrt"``: ``m^-1/2``, ``wd_h = wd * sqrt(m)`` (Fan et al. 2025, "Robust Layerwise
  Scaling Rules by Proper Weight Decay Tuning", arXiv 2510.15262);
- ``"fixed"``: ``m^-1``, ``wd_h = wd`` (EleutherAI nanoGPT-mup).

Vector-like parameters (input role, biases, norm gains, readout) get ``wd = 0``.

CompleteP (Dey et al. 2025, arXiv 2505.01618), with ``L = depth / base_depth`` and
``alpha`` = ``completep_alpha`` (1.0; 0.5 is depth-muP): residual branches are multiplied
by ``L^-alpha``; hidden LR ``x m^-1 L^(alpha-1)``; norm gains and biases inside residual
blocks LR ``x L^(alpha-1)``; Adam epsilon of hidden weights ``x m^-1 L^-alpha`` when
``scale_adam_eps``.

Examples
--------
>>> p = Parametrization("mup", base_width=256)
>>> rule = p.layer_rule("hidden", width_mult=4.0)
>>> rule.lr_mult, rule.forward_mult
(0.25, 1.0)
>>> p.layer_rule("output", width_mult=4.0).forward_mult
0.25
>>> Parametrization("sp", base_width=256).layer_rule("hidden", width_mult=4.0).lr_mult
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, Strict

from scalelaw._validation import Flag, PositiveFloat, PositiveInt, section

NAMES = ("sp", "mup", "completep")
WEIGHT_DECAY_RULES = ("independent", "sqrt", "fixed")
ATTN_SCALES = ("1/d", "1/sqrt(d)")
ROLES = ("input", "hidden", "output", "scalar")


@dataclass(frozen=True)
class LayerRule:
    """Multipliers for one parameter, relative to SP at the base shape.

    Attributes
    ----------
    forward_mult : float
        Multiplier applied to the layer's output in the forward pass.
    lr_mult : float
        Adam learning-rate multiplier (the optimizer's LR times this).
    sgd_lr_mult : float
        SGD learning-rate multiplier (TP V Table 8, relative to the base width).
    wd_mult : float
        Coupled weight-decay multiplier (the optimizer's weight decay times this).
    eps_mult : float
        Adam epsilon multiplier.
    """

    forward_mult: float = 1.0
    lr_mult: float = 1.0
    sgd_lr_mult: float = 1.0
    wd_mult: float = 0.0
    eps_mult: float = 1.0

    def absorbed(self) -> LayerRule:
        """The same training dynamics with the forward multiplier folded into the weight.

        A weight used as ``a * W`` (``a`` = ``forward_mult``) with init ``sigma``, Adam
        LR ``eta``, epsilon ``eps`` and coupled weight decay ``lambda`` trains exactly like
        a weight ``V = a * W`` used as is, with init ``a * sigma``, LR ``a * eta``, epsilon
        ``eps / a`` and weight decay ``lambda / a`` (SGD: LR ``a**2 * eta``). This is the
        abc-parametrization symmetry of Tensor Programs V (Yang et al. 2022, Sec. 3 and
        App. on abc-parametrizations), made exact for Adam by scaling epsilon. Derivation:
        if ``a W = V`` at some step, the gradients are ``dL/dW = a g`` with ``g = dL/dV``,
        so Adam's moments of ``W`` are ``a m`` and ``a^2 v``, and
        ``dW = -eta (a m / (a sqrt(v) + eps) + lambda W)``; then
        ``a dW = -(a eta) (m / (sqrt(v) + eps / a) + (lambda / a) V)``, which is the update
        of ``V`` under the new constants, so ``a W = V`` holds at the next step too. (For
        SGD, ``a dW = -a^2 eta g``.) Global-norm gradient clipping sees ``g``, not ``a g``,
        and breaks the equivalence. The init scale ``a`` is applied where the weight is
        initialised, not here.

        Examples
        --------
        >>> r = LayerRule(forward_mult=0.25, lr_mult=1.0, sgd_lr_mult=4.0)
        >>> a = r.absorbed()
        >>> a.forward_mult, a.lr_mult, a.eps_mult, a.sgd_lr_mult
        (1.0, 0.25, 4.0, 0.25)
        """
        a = self.forward_mult
        return LayerRule(forward_mult=1.0, lr_mult=self.lr_mult * a,
                         sgd_lr_mult=self.sgd_lr_mult * a * a, wd_mult=self.wd_mult / a,
                         eps_mult=self.eps_mult / a)


@section
class Parametrization:
    """How initialisation, forward multipliers and per-parameter LR/WD scale with shape.

    Parameters
    ----------
    name : {"mup", "sp", "completep"}
        muP (TP V Table 8), the standard parametrization or CompleteP (muP in width plus the
        depth rules of Dey et al. 2025).
    base_width : int
        Width at which muP equals SP; ``m = width / base_width``.
    base_depth : int or None
        Depth at which CompleteP equals muP; ``None`` means "the model's own depth"
        (depth multiplier 1).
    weight_decay_rule : {"independent", "sqrt", "fixed"}
        How hidden-matrix weight decay scales with width (see the module docstring).
    scale_adam_eps : bool
        Scale Adam epsilon of hidden weights by ``1/m`` (CompleteP: ``m^-1 L^-alpha``).
    output_mult : float
        Readout forward multiplier at the base width (muP divides it by ``m``).
    attn_scale : {None, "1/d", "1/sqrt(d)"}
        Attention-logit scaling; ``None`` picks ``"1/sqrt(d)"`` for SP, ``"1/d"`` otherwise.
        ``"1/d"`` is ``sqrt(d_base)/d`` (TP V App. B.1), equal to ``1/sqrt(d)`` at the base.
    zero_init_readout : bool
        Initialise the readout to zero (muP option; TP V App. D.2).
    zero_init_query : bool
        Initialise the attention query projection to zero.
    completep_alpha : float
        Depth exponent of CompleteP, in (0, 1]: 1.0 is CompleteP, 0.5 depth-muP.
    base_head_dim : int or None
        Head dimension at the base width, for ``"1/d"`` attention when the head dimension
        grows with width (a fixed number of heads). ``None``: the head dimension is fixed
        and the heads grow with width (the reference transformer's convention), so
        ``"1/d"`` and ``"1/sqrt(d)"`` coincide.

    Raises
    ------
    ConfigError
        If any field is invalid; the message names the field and the allowed values.

    Examples
    --------
    >>> p = Parametrization("mup", base_width=256)
    >>> p.layer_rule("hidden", width_mult=4.0).lr_mult  # Adam LR of hidden matrices: 1/m
    0.25
    >>> Parametrization("mup", base_width=0)
    Traceback (most recent call last):
    ...
    scalelaw.errors.FieldError: base_width: must be a positive integer, got 0
    """

    name: Literal["sp", "mup", "completep"] = "mup"
    base_width: PositiveInt = 256
    base_depth: PositiveInt | None = None
    weight_decay_rule: Literal["independent", "sqrt", "fixed"] = "independent"
    scale_adam_eps: Flag = False
    output_mult: PositiveFloat = 1.0
    attn_scale: Literal["1/d", "1/sqrt(d)"] | None = None
    zero_init_readout: Flag = False
    zero_init_query: Flag = False
    completep_alpha: Annotated[float, Strict(), Field(gt=0, le=1)] = 1.0
    base_head_dim: PositiveInt | None = None

    # ------------------------------------------------------------------ shape-level
    @property
    def attention(self) -> str:
        """The attention scaling in force: ``"1/d"`` or ``"1/sqrt(d)"``."""
        if self.attn_scale is not None:
            return self.attn_scale
        return "1/sqrt(d)" if self.name == "sp" else "1/d"

    def attention_scale(self, head_dim: int, base_head_dim: int | None = None) -> float:
        """Factor multiplying ``q . k``: ``sqrt(d_base)/d`` ("1/d") or ``1/sqrt(d)``."""
        scale = 1.0 / math.sqrt(head_dim)
        if self.attention == "1/sqrt(d)":
            return scale
        # sqrt(d_base)/d written so that it is bit-identical to 1/sqrt(d) at the base.
        return scale * math.sqrt((base_head_dim or head_dim) / head_dim)

    def depth_mult(self, depth: int) -> float:
        """``L = depth / base_depth`` for CompleteP, else 1."""
        if self.name != "completep" or self.base_depth is None:
            return 1.0
        return depth / self.base_depth

    def residual_mult(self, depth: int) -> float:
        """Multiplier of every residual branch: ``L^-alpha`` for CompleteP, else 1."""
        return self.depth_mult(depth) ** -self.completep_alpha

    def init_std(self, role: str, fan_in: int, base_fan_in: int) -> float:
        """Initial standard deviation of a weight with this role and fan-in.

        ``1/sqrt(fan_in)`` for input and hidden weights (biases and gains are initialised
        by the model to 0 or 1); the readout keeps ``1/sqrt(base_fan_in)`` under
        muP/CompleteP (its base-width scale) and is 0 with ``zero_init_readout``.
        """
        _check_choice("role", role, ROLES)
        if role == "output":
            if self.zero_init_readout:
                return 0.0
            return 1.0 / math.sqrt(fan_in if self.name == "sp" else base_fan_in)
        return 1.0 / math.sqrt(fan_in)

    # ------------------------------------------------------------------ per-parameter
    def layer_rule(
        self, role: str, width_mult: float, depth_mult: float = 1.0, in_block: bool = False
    ) -> LayerRule:
        """Multipliers for a parameter of ``role`` at width multiplier ``width_mult``.

        Parameters
        ----------
        role : str
            ``"input"``, ``"hidden"``, ``"output"`` or ``"scalar"``.
        width_mult : float
            ``m``: for hidden and output weights the fan-in ratio to the base shape, for
            input weights and vectors the ratio of their infinite dimension.
        depth_mult : float
            ``L = depth / base_depth`` (only CompleteP uses it).
        in_block : bool
            Whether the parameter lives inside a residual block (CompleteP scales the LR
            of norm gains and biases there).
        """
        _check_choice("role", role, ROLES)
        m, depth = float(width_mult), float(depth_mult)
        if self.name == "sp":
            if role == "output":
                return LayerRule(forward_mult=self.output_mult)
            return LayerRule(wd_mult=1.0 if role == "hidden" else 0.0)
        alpha = self.completep_alpha if self.name == "completep" else 1.0
        depth_lr = depth ** (alpha - 1.0) if self.name == "completep" else 1.0
        if role == "hidden":
            eps = 1.0
            if self.scale_adam_eps:
                eps = 1.0 / m
                if self.name == "completep":
                    eps *= depth**-alpha
            return LayerRule(
                lr_mult=depth_lr / m, wd_mult=self.hidden_wd_mult(m), eps_mult=eps
            )
        if role == "output":
            return LayerRule(forward_mult=self.output_mult / m, sgd_lr_mult=m)
        if role == "input":
            return LayerRule(lr_mult=depth_lr if in_block else 1.0, sgd_lr_mult=m)
        return LayerRule(lr_mult=depth_lr if in_block else 1.0)

    def hidden_wd_mult(self, width_mult: float) -> float:
        """Weight-decay multiplier of hidden matrices under ``weight_decay_rule``."""
        if self.name == "sp" or self.weight_decay_rule == "fixed":
            return 1.0
        if self.weight_decay_rule == "sqrt":
            return math.sqrt(width_mult)
        return float(width_mult)


def _check_choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{field}: must be one of {choices}, got {value!r}")
