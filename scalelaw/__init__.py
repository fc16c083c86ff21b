"""scalelaw: muP hyperparameter transfer, token-driven schedules, sweeps and scaling laws.

The public API is re-exported here. Most names are imported lazily (:mod:`scalelaw._lazy`),
so ``import scalelaw`` is cheap and does not import JAX until a JAX-backed name is used;
the ``if TYPE_CHECKING:`` block below lists the same names as ordinary imports, for type
checkers and editors. :func:`recommend` and :class:`Recommendation` are imported at once
(numpy, no JAX): the function shares its name with its module ``scalelaw.recommend``, and
a lazy attribute would be shadowed by that submodule as soon as anything imported it.

Examples
--------
>>> import scalelaw
>>> p = scalelaw.Parametrization("mup", base_width=64)
>>> p.name
'mup'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from scalelaw._lazy import lazy_exports
from scalelaw.errors import ConfigError, FieldError
from scalelaw.recommend import recommend
from scalelaw.recommendation import Recommendation

try:  # the version lives in pyproject.toml only
    __version__ = version("scalelaw")
except PackageNotFoundError:  # pragma: no cover - an uninstalled source tree
    __version__ = "unknown"

# public name -> module that defines it (mirrored by the TYPE_CHECKING imports below)
_EXPORTS: dict[str, str] = {
    "Parametrization": "scalelaw.mup.rules",
    "infer_roles": "scalelaw.mup.roles",
    "adamw": "scalelaw.mup.optim",
    "apply_mup": "scalelaw.mup.any_model",
    "MupSetup": "scalelaw.mup.any_model",
    "multipliers_table": "scalelaw.mup.tables",
    "coord_check": "scalelaw.models.coord_check",
    "depth_coord_check": "scalelaw.models.coord_check",
    "top_singular_values": "scalelaw.mup.diagnostics",
    "weight_decay_diagnostic": "scalelaw.train.wd_diagnostic",
    "Transformer": "scalelaw.models.transformer",
    "TransformerConfig": "scalelaw.models.config",
    "MLP": "scalelaw.models.mlp",
    "param_count": "scalelaw.models.config",
    "flops_per_token": "scalelaw.models.config",
    "FitResult": "scalelaw.fit.result",
    "load_fit": "scalelaw.fit.result",
    "fit_law": "scalelaw.fit.fit_law",
    "Law": "scalelaw.fit.laws",
    "get_law": "scalelaw.fit.laws",
    "register_law": "scalelaw.fit.laws",
    "list_laws": "scalelaw.fit.laws",
    "compute_optimal": "scalelaw.fit.allocate",
    "isoflop_fit": "scalelaw.fit.isoflop",
    "fit_chinchilla_varpro": "scalelaw.fit.varpro",
    "prediction_interval": "scalelaw.fit.bootstrap",
    "fit_hparams": "scalelaw.fit.hparams",
    "fit_lr_transfer": "scalelaw.fit.transfer",
    "predict_lr": "scalelaw.fit.transfer",
    "predict_hparams": "scalelaw.fit.powerlaw_form",
    "fit_bowl": "scalelaw.fit.bowl",
    "leave_one_cell_out": "scalelaw.fit.held_out",
    "score_laws": "scalelaw.fit.score",
    "LawScores": "scalelaw.fit.score",
    "Refit": "scalelaw.fit._score_laws",
    "fit_farseer": "scalelaw.fit.farseer",
    "fit_power_schedule": "scalelaw.fit.power_schedule",
    "predict_farseer": "scalelaw.fit.farseer",
    "load_corpus": "scalelaw.corpus",
    "load_spec": "scalelaw.sweep.spec",
    "collect": "scalelaw.sweep.results",
    "results_table": "scalelaw.sweep.results",
    "trial_summary": "scalelaw.sweep.results",
    "loss_points": "scalelaw.sweep.results",
    "train_group": "scalelaw.train.loop",
    "DivergenceRule": "scalelaw.train.config",
    "run_sweep": "scalelaw.sweep.runner",
    "sweep_status": "scalelaw.sweep.status",
    "recommend_from_sweep": "scalelaw.sweep_recommend",
    "SweepRecommendation": "scalelaw.sweep_recommend",
    "power": "scalelaw.schedules",
    "wsd": "scalelaw.schedules",
    "cosine": "scalelaw.schedules",
    "constant": "scalelaw.schedules",
}

if TYPE_CHECKING:
    from scalelaw.corpus import load_corpus
    from scalelaw.fit._score_laws import Refit
    from scalelaw.fit.allocate import compute_optimal
    from scalelaw.fit.bootstrap import prediction_interval
    from scalelaw.fit.bowl import fit_bowl
    from scalelaw.fit.farseer import fit_farseer, predict_farseer
    from scalelaw.fit.fit_law import fit_law
    from scalelaw.fit.held_out import leave_one_cell_out
    from scalelaw.fit.hparams import fit_hparams
    from scalelaw.fit.isoflop import isoflop_fit
    from scalelaw.fit.laws import Law, get_law, list_laws, register_law
    from scalelaw.fit.power_schedule import fit_power_schedule
    from scalelaw.fit.powerlaw_form import predict_hparams
    from scalelaw.fit.result import FitResult, load_fit
    from scalelaw.fit.score import LawScores, score_laws
    from scalelaw.fit.transfer import fit_lr_transfer, predict_lr
    from scalelaw.fit.varpro import fit_chinchilla_varpro
    from scalelaw.models.config import TransformerConfig, flops_per_token, param_count
    from scalelaw.models.coord_check import coord_check, depth_coord_check
    from scalelaw.models.mlp import MLP
    from scalelaw.models.transformer import Transformer
    from scalelaw.mup.any_model import MupSetup, apply_mup
    from scalelaw.mup.diagnostics import top_singular_values
    from scalelaw.mup.optim import adamw
    from scalelaw.mup.roles import infer_roles
    from scalelaw.mup.rules import Parametrization
    from scalelaw.mup.tables import multipliers_table
    from scalelaw.schedules import constant, cosine, power, wsd
    from scalelaw.sweep.results import collect, loss_points, results_table, trial_summary
    from scalelaw.sweep.runner import run_sweep
    from scalelaw.sweep.spec import load_spec
    from scalelaw.sweep.status import sweep_status
    from scalelaw.sweep_recommend import SweepRecommendation, recommend_from_sweep
    from scalelaw.train.config import DivergenceRule
    from scalelaw.train.loop import train_group
    from scalelaw.train.wd_diagnostic import weight_decay_diagnostic

__all__ = [
    "__version__", "adamw", "apply_mup", "collect", "compute_optimal", "ConfigError",
    "constant", "coord_check", "cosine", "depth_coord_check", "DivergenceRule", "FieldError",
    "fit_bowl", "fit_chinchilla_varpro", "fit_farseer", "fit_hparams", "fit_law",
    "fit_lr_transfer", "fit_power_schedule", "FitResult", "flops_per_token", "get_law",
    "infer_roles", "isoflop_fit", "Law", "LawScores", "leave_one_cell_out", "list_laws",
    "load_corpus", "load_fit", "load_spec", "loss_points", "MLP", "multipliers_table",
    "MupSetup", "param_count", "Parametrization", "power", "predict_farseer",
    "predict_hparams", "predict_lr", "prediction_interval", "recommend",
    "recommend_from_sweep", "Recommendation", "Refit", "register_law", "results_table",
    "run_sweep", "score_laws", "sweep_status", "SweepRecommendation", "top_singular_values",
    "train_group", "Transformer", "TransformerConfig", "trial_summary", "weight_decay_diagnostic",
    "wsd",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
