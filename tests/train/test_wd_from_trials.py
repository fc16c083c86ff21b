"""scalelaw.weight_decay_diagnostic reads trial folders: each matrix's effective LR and WD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import scalelaw
from scalelaw.sweep import TrialConfig


def trial(width: int, rule: str) -> TrialConfig:
    return TrialConfig.from_dict({
        "model": {"width": width, "depth": 1, "head_dim": 16, "context": 16},
        "parametrization": {"name": "mup", "base_width": 32, "weight_decay_rule": rule},
        "optimizer": {"lr": 0.02, "weight_decay": 0.5},
        "train": {"tokens": 1024, "batch_size": 8, "eval_every": 4, "eval_tokens": 128}})


def test_table_from_trial_folders(tmp_path: Path) -> None:
    dirs = [tmp_path / f"w{w}" for w in (32, 64)]
    for width, d in zip((32, 64), dirs, strict=True):
        [result] = scalelaw.train_group([trial(width, "sqrt")], [d], singular_values=True)
        assert result.status == "done"
    diag = scalelaw.weight_decay_diagnostic(dirs)
    table = diag.table.set_index(["width", "family"])
    assert set(table.index.get_level_values("family")) == {"w1", "w2", "wq", "wk", "wv", "wo"}
    # muP hidden LR 0.02/m, the sqrt rule's WD 0.5 sqrt(m)
    assert table.loc[(64, "w1"), "lr"] == pytest.approx(0.01)
    assert table.loc[(64, "w1"), "weight_decay"] == pytest.approx(0.5 * np.sqrt(2))
    assert table.loc[(32, "wq"), "prediction"] == pytest.approx(np.sqrt(0.02 / 0.5))
    assert (table["sigma_max"] > 0).all()
    # the step-4 rows are read when asked for
    early = scalelaw.weight_decay_diagnostic(dirs, step=4).table
    assert not np.allclose(early["sigma_max"], diag.table["sigma_max"])
    exps = diag.exponents.set_index("family")
    assert exps.loc["w1", "prediction"] == pytest.approx(-0.75)
    plain = tmp_path / "plain"  # a trial trained without singular_values=True
    plain.mkdir()
    (plain / "config.json").write_text((dirs[0] / "config.json").read_text())
    (plain / "metrics.jsonl").write_text('{"step": 8, "eval_loss": 5.0}\n')
    with pytest.raises(ValueError, match="^trials: .* logged no top_sv"):
        scalelaw.weight_decay_diagnostic([tmp_path / "plain"])
    with pytest.raises(ValueError, match="^trials: no config.json"):
        scalelaw.weight_decay_diagnostic([tmp_path / "missing"])
