"""muP, SP and CompleteP for JAX: roles, rules, optimizers and diagnostics."""

from scalelaw.mup.rules import LayerRule, Parametrization

__all__ = ["LayerRule", "Parametrization"]
