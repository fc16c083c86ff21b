"""scalelaw: muP hyperparameter transfer, token-driven schedules, sweeps and scaling laws.

The public API is re-exported here and imported lazily, so ``import scalelaw`` is cheap
and does not import JAX until a JAX-backed name is used.

Examples
--------
>>> import scalelaw
>>> p = scalelaw.Parametrization("mup", base_width=64)
>>> p.name
'mup'
"""

from __future__ import annotations

import importlib
from typing import Any

from scalelaw.errors import ConfigError

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Parametrization": "scalelaw.mup.rules",
    "infer_roles": "scalelaw.mup.roles",
    "adamw": "scalelaw.mup.optim",
    "multipliers_table": "scalelaw.mup.tables",
    "coord_check": "scalelaw.mup.diagnostics",
    "top_singular_values": "scalelaw.mup.diagnostics",
    "Transformer": "scalelaw.models.transformer",
    "TransformerConfig": "scalelaw.models.config",
    "MLP": "scalelaw.models.mlp",
    "param_count": "scalelaw.models.config",
    "flops_per_token": "scalelaw.models.config",
    "FitResult": "scalelaw.fit.result",
    "load_fit": "scalelaw.fit.result",
    "fit_law": "scalelaw.fit.robust",
    "Law": "scalelaw.fit.laws",
    "get_law": "scalelaw.fit.laws",
    "register_law": "scalelaw.fit.laws",
    "list_laws": "scalelaw.fit.laws",
    "compute_optimal": "scalelaw.fit.allocate",
    "isoflop_fit": "scalelaw.fit.isoflop",
    "prediction_interval": "scalelaw.fit.bootstrap",
    "fit_hparams": "scalelaw.fit.hparams",
    "fit_lr_transfer": "scalelaw.fit.transfer",
    "predict_lr": "scalelaw.fit.transfer",
    "predict_hparams": "scalelaw.fit.hparams",
    "fit_bowl": "scalelaw.fit.bowl",
    "leave_one_cell_out": "scalelaw.fit.bowl",
    "fit_farseer": "scalelaw.fit.farseer",
    "predict_farseer": "scalelaw.fit.farseer",
    "recommend": "scalelaw.recommend",
    "Recommendation": "scalelaw.recommend",
    "load_corpus": "scalelaw.corpus",
    "load_spec": "scalelaw.sweep.spec",
    "collect": "scalelaw.sweep.results",
    "results_table": "scalelaw.sweep.results",
    "trial_summary": "scalelaw.sweep.results",
    "train_group": "scalelaw.train.loop",
    "power": "scalelaw.schedules",
    "wsd": "scalelaw.schedules",
    "cosine": "scalelaw.schedules",
    "constant": "scalelaw.schedules",
}

__all__ = ["ConfigError", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scalelaw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
