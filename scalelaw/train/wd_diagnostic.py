"""Fan et al. (2025)'s weight-decay diagnostic from trial folders.

:func:`weight_decay_diagnostic` reads trials trained with
``train_group(..., singular_values=True)`` (each eval row of ``metrics.jsonl`` then has
``top_sv``), works out every hidden matrix's effective AdamW learning rate and weight decay
from the trial's parametrization (:func:`scalelaw.multipliers_table`), and hands both to
:func:`scalelaw.mup.wd_diagnostic.sigma_max_table`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scalelaw.models import transformer
from scalelaw.models.config import TransformerConfig
from scalelaw.mup.rules import Parametrization
from scalelaw.mup.tables import multipliers_table
from scalelaw.mup.wd_diagnostic import WeightDecayDiagnostic, sigma_max_table
from scalelaw.storage import Location, as_location
from scalelaw.train.records import CONFIG, read_metrics


def _trial_rows(trial_dir: str | Path | Location, roles: Sequence[str],
                step: int | None) -> list[dict[str, Any]]:
    loc = as_location(trial_dir)
    try:
        config = json.loads((loc / CONFIG).read_text())
    except FileNotFoundError:
        raise ValueError(f"trials: no {CONFIG} in {trial_dir}") from None
    if config.get("model", {}).get("family", "transformer") != "transformer":
        raise ValueError(f"trials: {trial_dir} is not a transformer trial")
    rows = [r for r in read_metrics(loc) if r.get("top_sv")
            and (step is None or r["step"] <= step)]
    if not rows:
        raise ValueError(f"trials: {trial_dir} logged no top_sv (train it with "
                         "singular_values=True)")
    top_sv, at = rows[-1]["top_sv"], rows[-1]["step"]
    cfg = TransformerConfig(**config["model"])
    p = Parametrization(**config["parametrization"])
    opt = config["optimizer"]
    table = multipliers_table(transformer.roles(cfg, p), p, weight_decay=opt["weight_decay"],
                              depth=cfg.depth)
    out = []
    for rule in table[table["role"].isin(list(roles))].itertuples():
        values = top_sv.get(rule.path)
        if values is None:
            continue
        for layer, sigma in enumerate(values if isinstance(values, list) else [values]):
            out.append({"trial_id": config.get("trial_id"), "parametrization": p.name,
                        "weight_decay_rule": p.weight_decay_rule, "base_lr": opt["lr"],
                        "base_weight_decay": opt["weight_decay"], "width": cfg.width,
                        "step": at, "family": rule.path, "layer": layer, "role": rule.role,
                        "sigma_max": sigma, "lr": opt["lr"] * rule.lr_mult,
                        "weight_decay": rule.wd})
    return out


def weight_decay_diagnostic(
    trials: Sequence[str | Path | Location],
    *,
    by: Sequence[str] = ("weight_decay_rule",),
    roles: Sequence[str] = ("hidden",),
    step: int | None = None,
) -> WeightDecayDiagnostic:
    """Top singular value of each hidden matrix against ``sqrt(eta/lambda)``, across widths.

    Fan et al. 2025 ("Robust Layerwise Scaling Rules by Proper Weight Decay Tuning", arXiv
    2510.15262; see :mod:`scalelaw.mup.wd_diagnostic`): in AdamW's steady state a matrix's
    top singular value is about ``sqrt(eta/lambda) * d^0.75``, with ``eta`` and ``lambda``
    its own learning rate and weight decay. The learning rate used is the optimizer's
    peak (base) LR times the matrix's muP multiplier: read trials at a step before any
    final LR decay (``step``), or with a constant schedule.

    Parameters
    ----------
    trials : sequence of path, URL or Location
        Trial folders of transformer runs trained with ``singular_values=True``.
    by : sequence of str
        Columns splitting the runs into width series: any of ``weight_decay_rule``,
        ``parametrization``, ``base_lr``, ``base_weight_decay``.
    roles : sequence of str
        Which matrices (by muP role) to include; ``("hidden", "input", "output")`` adds
        the embedding and readout.
    step : int, optional
        Use each trial's last ``top_sv`` row at or before this step (default: the last).

    Returns
    -------
    WeightDecayDiagnostic
        ``table`` and ``exponents`` per rule and family; ``table`` also has each matrix's
        ``lr`` and ``weight_decay``.

    Examples
    --------
    >>> import tempfile
    >>> from scalelaw.sweep import TrialConfig
    >>> from scalelaw.train.loop import train_group
    >>> trial = TrialConfig.from_dict({
    ...     "model": {"width": 32, "depth": 1, "head_dim": 16, "context": 16},
    ...     "optimizer": {"lr": 0.01, "weight_decay": 0.1},
    ...     "train": {"tokens": 1024, "batch_size": 8, "eval_every": 8, "eval_tokens": 128}})
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = train_group([trial], [folder], singular_values=True)
    >>> diag = weight_decay_diagnostic([folder])
    >>> sorted(diag.table["family"])
    ['w1', 'w2', 'wk', 'wo', 'wq', 'wv']
    """
    if not trials:
        raise ValueError("trials: no trial folders given")
    rows = [row for t in trials for row in _trial_rows(t, roles, step)]
    if not rows:
        raise ValueError(f"roles: no matrix of role {', '.join(roles)} logged a top_sv")
    return sigma_max_table(pd.DataFrame(rows), by=by)
