"""Test helpers: a tiny spec and a fake trainer that writes the trainer's file format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scalelaw.storage import Location, as_location
from scalelaw.train.records import append_rows, read_summary, write_json_atomic

TINY: dict[str, Any] = {
    "name": "tiny",
    "model": {"family": "transformer", "width": 32, "depth": 1, "head_dim": 16, "context": 32},
    "parametrization": {"name": "mup", "base_width": 32},
    "optimizer": {"lr": 1e-3},
    "schedule": {"name": "wsd", "warmup_tokens": 512.0, "decay_fraction": 0.2},
    "data": {"source": "stdlib"},
    "train": {"tokens": 40 * 128, "batch_size": 4, "eval_every": 16, "eval_tokens": 256,
              "log_every": 4, "checkpoint_every": 8},
    "sweep": {"optimizer.lr": [2e-3, 1e-2]},
}


def write_spec(path: Path, spec: dict[str, Any] | None = None, **changes: Any) -> Path:
    """Write ``spec`` (default :data:`TINY`) with top-level ``changes`` as YAML."""
    data = {**(spec or TINY), **changes}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class MemberResult:
    """Same fields as ``scalelaw.train.loop.MemberResult``."""

    trial_id: str
    status: str
    diverged_step: int | None
    steps: int
    final_train_loss: float | None
    final_eval_loss: float | None


class FakeTrainer:
    """``train_group`` look-alike: deterministic losses, counts the members it trains.

    ``diverge`` maps an LR to the step at which that member diverges; ``loss`` is
    ``(lr, width, step) -> loss`` (default: falls with steps, faster for larger LRs).
    """

    def __init__(self, diverge: dict[float, int] | None = None, loss: Any = None) -> None:
        self.trained: list[str] = []
        self.diverge = diverge or {}
        self.loss = loss or (lambda lr, width, step:
                             5.0 - math.log(step) * lr * 100 / (1 + abs(math.log(lr * width))))

    def __call__(self, trials, trial_dirs, *, mode="auto", progress=None) -> list[Any]:  # noqa: ANN001
        out = []
        for trial, folder in zip(trials, trial_dirs, strict=True):
            summary = read_summary(folder)
            if summary and summary["status"] in ("done", "diverged"):
                continue
            self.trained.append(trial.trial_id)
            (as_location(folder) / "config.json").write_text(trial.to_json())
            out.append(self._train(trial, as_location(folder), progress))
        return out

    def _train(self, trial, folder: Location, progress) -> Any:  # noqa: ANN001
        lr, width = trial.optimizer.lr, trial.model.width
        stop = self.diverge.get(lr)
        rows = []
        for step in range(trial.train.log_every, trial.steps + 1, trial.train.log_every):
            loss = self.loss(lr, width, step)
            if stop is not None and step >= stop:
                loss = math.nan
            evaluated = step % trial.train.eval_every == 0 or step == trial.steps
            rows.append({"step": step, "tokens": step * trial.tokens_per_step,
                         "flops": step * trial.tokens_per_step * trial.flops_per_token,
                         "lr": lr, "train_loss": loss, "eval_loss": loss + 0.1 if evaluated
                         else None, "grad_norm": 1.0, "wall_time": 0.01 * step})
            if progress:
                progress(trial.train.log_every)
            if stop is not None and step >= stop:
                break
        append_rows(folder, rows)
        status = "diverged" if stop is not None else "done"
        last = rows[-1]
        write_json_atomic(folder / "summary.json", {
            "trial_id": trial.trial_id, "group_id": trial.group_id, "status": status,
            "diverged_step": stop, "steps": last["step"], "final_train_loss": last["train_loss"],
            "final_eval_loss": last["eval_loss"], "best_eval_loss": last["eval_loss"]})
        return MemberResult(trial.trial_id, status, stop, last["step"], last["train_loss"],
                            last["eval_loss"])
