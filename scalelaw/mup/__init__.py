"""muP, SP and CompleteP for JAX: roles, rules, optimizers and diagnostics.

:class:`Parametrization` and :class:`LayerRule` are pure Python; :func:`apply_mup` (muP
for any model) and :class:`MupSetup` load JAX on first use (:mod:`scalelaw._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelaw._lazy import lazy_exports
from scalelaw.mup.rules import LayerRule, Parametrization

_EXPORTS: dict[str, str] = {
    "apply_mup": "scalelaw.mup.any_model",
    "MupSetup": "scalelaw.mup.any_model",
}

if TYPE_CHECKING:
    from scalelaw.mup.any_model import MupSetup, apply_mup

__all__ = ["apply_mup", "LayerRule", "MupSetup", "Parametrization"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
