"""One member's host-side bookkeeping: resume, logging rows, checkpoints, summary.

Private to :mod:`scalelaw.train.loop`; the files it writes are described in
:mod:`scalelaw.train.records`.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from scalelaw import schedules
from scalelaw.distributed import is_writer
from scalelaw.storage import Location, as_location
from scalelaw.train import records
from scalelaw.train.checkpoint import Checkpointer
from scalelaw.train.config import TrialLike
from scalelaw.train.mesh import to_host
from scalelaw.train.step import WATCH_FIELDS, State, StepFns, member_hyper
from scalelaw.train.trackers import Guarded

FINISHED = ("done", "diverged")
KEPT = "kept"  # the folder of a stable-phase run's branch-point checkpoints


@dataclass(frozen=True)
class MemberResult:
    """How one trial of a group ended.

    ``status`` is ``"done"``, ``"diverged"`` (``diverged_step`` is the 1-based step whose
    loss or update was non-finite; the losses are then ``None``) or ``"failed"`` (an
    exception; see ``summary.json["error"]``). ``steps`` counts completed steps.
    """

    trial_id: str
    status: str
    diverged_step: int | None
    steps: int
    final_train_loss: float | None
    final_eval_loss: float | None

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> MemberResult:
        return cls(summary["trial_id"], summary["status"], summary.get("diverged_step"),
                   summary.get("steps", 0), summary.get("final_train_loss"),
                   summary.get("final_eval_loss"))


def learning_rates(trial: TrialLike) -> np.ndarray:
    """``f32[steps]``: the schedule at the tokens seen before each step (base LR)."""
    sched = getattr(schedules, trial.schedule.name)(**trial.schedule_kwargs())
    tokens = np.arange(trial.steps, dtype=np.float64) * trial.tokens_per_step
    return np.asarray(sched(tokens), dtype=np.float32)


class Member:
    """A trial being trained: its directory, schedule, state and loss window."""

    def __init__(self, trial: TrialLike, trial_dir: str | os.PathLike[str] | Location,
                 tracker: Guarded | None = None) -> None:
        self.trial, self.dir = trial, as_location(trial_dir, "trial_dirs")
        self.tracker = tracker or Guarded(None)  # sent what the files get; never raises
        self.steps = trial.steps
        self.result: MemberResult | None = None
        self.diverged_step: int | None = None
        self.state: State | None = None
        self.start_step = 0
        self.loss_sum, self.loss_count, self.wall0 = 0.0, 0, 0.0
        self._ckpt: Checkpointer | None = None
        self._kept: Checkpointer | None = None
        self.keep_steps: frozenset[int] = frozenset()
        self.sharding: Any = None
        self.writer = True

    # ------------------------------------------------------------------ start
    def check_dir(self) -> None:
        """Refuse a directory that holds another trial; skip a finished one."""
        config = self.dir / records.CONFIG
        if config.exists():
            import json

            stored = json.loads(config.read_text()).get("trial_id")
            if stored is not None and stored != self.trial.trial_id:
                raise ValueError(f"trial_dirs: {self.dir} holds trial {stored}, "
                                 f"not {self.trial.trial_id}")
        summary = records.read_summary(self.dir)
        if summary is not None and summary.get("status") in FINISHED:
            self.result = MemberResult.from_summary(summary)

    def prepare(self, fns: StepFns, sharding: Any = None) -> None:
        """Restore the latest complete checkpoint (or initialise) and trim the metrics.

        ``sharding`` places a restored state (a group mesh's replicated sharding).
        """
        self.sharding = sharding
        self.writer = is_writer()  # several processes (a multi-host slice): process 0 writes
        self.dir.mkdir()
        if self.writer:
            records.write_text_atomic(self.dir / records.CONFIG, self.trial.to_json() + "\n")
        self.lrs = learning_rates(self.trial)
        opt, p = self.trial.optimizer, self.trial.parametrization
        self.hyper = member_hyper(weight_decay=opt.weight_decay, b1=opt.b1, b2=opt.b2,
                                  eps=opt.eps, output_mult=p.output_mult)
        self._ckpt = Checkpointer(self.dir / "ckpt")
        if self.trial.train.keep_checkpoints:
            self._kept = Checkpointer(self.dir / KEPT, max_to_keep=None)
            tps = self.trial.tokens_per_step
            self.keep_steps = frozenset(t // tps for t in self.trial.train.keep_checkpoints)
        key = jax.random.key(self.trial.train.seed)
        like = jax.eval_shape(fns.init, key)
        step = self._ckpt.latest_step()
        if step is not None:
            self._restore(self._ckpt, step, like)
        elif self.trial.train.branch_of is not None:  # a cooldown branch: the parent's state
            if not self._restore_branch_point(like):
                return
        else:
            self.state = fns.init(key)
        if self.writer:
            records.truncate_metrics(self.dir, self.start_step)
        self.tracker.start(self.trial, self.dir, self.start_step)
        assert self.state is not None
        diverged = int(to_host(self.state["diverged_step"]))
        if diverged >= 0:  # frozen before the interruption
            self.diverged_step = diverged
            self.finish()

    def _restore(self, ckpt: Checkpointer, step: int, like: Any) -> None:
        self.state, meta = ckpt.restore(step, like, self.sharding)
        fresh = {"initial_loss": np.nan, "above": 0}  # checkpoints from before the rule
        for name, dtype in zip(WATCH_FIELDS, (np.float32, np.int32), strict=True):
            value = meta.get(name)
            value = np.asarray(fresh[name] if value is None else value, dtype)
            # host values go onto the mesh with the rest of the state (GroupMesh.replicate)
            self.state[name] = value if self.sharding is not None else jax.numpy.asarray(value)
        self.start_step = int(to_host(self.state["step"]))
        self.loss_sum, self.loss_count = meta["loss_sum"], meta["loss_count"]
        self.wall0 = meta["wall_time"]

    def _restore_branch_point(self, like: Any) -> bool:
        """Start from the parent's kept checkpoint at ``branch_at``; False if finished
        instead (the parent diverged before it: so did the branch; or it is missing)."""
        train = self.trial.train
        assert train.branch_of is not None and train.branch_at is not None
        parent = self.dir.parent / train.branch_of
        step = train.branch_at // self.trial.tokens_per_step
        if (parent / KEPT).is_dir():
            kept = Checkpointer(parent / KEPT, max_to_keep=None)
            try:
                if step in kept.all_steps():
                    self._restore(kept, step, like)
                    return True
            finally:
                kept.close()
        summary = records.read_summary(parent) or {}
        if summary.get("status") == "diverged" and summary["diverged_step"] <= step:
            self.diverged_step = summary["diverged_step"]
            self.finish()
        else:
            self.finish(error=RuntimeError(
                f"train.branch_of: trial {train.branch_of} has no kept checkpoint at step "
                f"{step} ({train.branch_at} tokens) yet; train it first (re-running the "
                "sweep retries this branch)"))
        return False

    # ------------------------------------------------------------------ per chunk
    def consume(self, start: int, out: dict[str, np.ndarray], diverged: int,
                eval_loss: float | None, wall: float, extra: dict[str, Any]) -> int:
        """Log steps ``start+1 .. start+n`` from one chunk's outputs; returns the steps
        this member contributes to progress (including those it will skip if it diverged)."""
        tr = self.trial
        tps, fpt, every = tr.tokens_per_step, tr.flops_per_token, tr.train
        if diverged >= 0:
            self.diverged_step = diverged
        n, rows = len(out["loss"]), []
        for j in range(n):
            s = start + j + 1
            self.loss_sum += float(out["loss"][j])
            self.loss_count += 1
            stop = s == self.diverged_step
            evaluated = s % every.eval_every == 0 or s == self.steps
            if s % every.log_every == 0 or evaluated or stop:
                rows.append({
                    "step": s, "tokens": s * tps, "flops": s * tps * fpt,
                    "lr": float(self.lrs[s - 1]), "train_loss": self.loss_sum / self.loss_count,
                    "eval_loss": eval_loss if evaluated and not stop else None,
                    "grad_norm": float(out["grad_norm"][j]), "wall_time": self.wall0 + wall,
                    **(extra if evaluated and not stop else {}),
                })
                self.loss_sum, self.loss_count = 0.0, 0
            if stop:
                break
        if self.writer:
            records.append_rows(self.dir, rows)
        self.tracker.log(rows)
        if self.diverged_step is not None:
            self.finish()
            return n + self.steps - (start + n)
        return n

    def save(self, state: State, wall: float) -> None:
        """Checkpoint ``state`` (this member's, no member axis) with the loss window."""
        meta = {"loss_sum": self.loss_sum, "loss_count": self.loss_count,
                "wall_time": self.wall0 + wall,
                "initial_loss": _finite_or_none(to_host(state["initial_loss"])),
                "above": int(to_host(state["above"]))}
        assert self._ckpt is not None, "save() before prepare() or after close()"
        step = int(to_host(state["step"]))
        self._ckpt.save(step, state, meta)
        if step in self.keep_steps:  # a branch point: kept for good
            assert self._kept is not None
            self._kept.save(step, state, meta)

    # ------------------------------------------------------------------ end
    def finish(self, error: BaseException | None = None) -> MemberResult:
        """Write ``summary.json`` from the rows on disk; sets :attr:`result`."""
        rows = records.read_metrics(self.dir)
        evals = [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]
        last = rows[-1] if rows else {}
        if error is not None:
            status = "failed"
        else:
            status = "diverged" if self.diverged_step is not None else "done"
        ok = status == "done"
        steps = last.get("step", 0)
        if status == "diverged" and self.diverged_step is not None:
            steps = self.diverged_step - 1
        summary = {
            "trial_id": self.trial.trial_id, "group_id": self.trial.group_id,
            "status": status, "diverged_step": self.diverged_step,
            "steps": steps,
            "final_train_loss": last.get("train_loss") if ok else None,
            "final_eval_loss": last.get("eval_loss") if ok else None,
            "best_eval_loss": min(evals) if evals else None,
            "tokens": last.get("tokens", 0), "flops": last.get("flops", 0),
            "wall_time": last.get("wall_time", 0.0),
        }
        if error is not None:
            summary["error"] = "".join(traceback.format_exception(error)).strip()
        if self.writer:
            records.write_json_atomic(self.dir / records.SUMMARY, summary)
        self.tracker.finish(summary)
        self.result = MemberResult.from_summary(summary)
        self.state = None
        self.close()
        return self.result

    def close(self) -> None:
        self.tracker.finish(None)  # stopped without a summary (no-op after finish)
        for ckpt in (self._ckpt, self._kept):
            if ckpt is not None:
                ckpt.close()
        self._ckpt = self._kept = None


def _finite_or_none(x: Any) -> float | None:
    value = float(x)
    return value if np.isfinite(value) else None
