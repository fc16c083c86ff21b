"""Train one group: data -> chunks of steps -> metrics rows -> checkpoints -> summaries.

A *group* is a list of trials that differ only in scalars (LR, weight decay, Adam
constants, init seed, output multiplier, schedule constants): they share the model
shape, batch size, step count and data stream. :func:`train_group` trains them with one
compiled program written for one member (:mod:`scalelaw.train.step`):

- ``mode="vmap"``: all members at once under ``jax.vmap`` (accelerators, where a small
  model leaves the device idle);
- ``mode="sequential"``: one member after another with the same compiled function
  (CPU, which one member already saturates);
- ``mode="auto"``: sequential on CPU, vmap on GPU/TPU.

Both modes give the same numbers (to float rounding; exactly equal between members of
a sequential run and single runs). Each call of the compiled chunk runs up to
``steps_per_call`` steps in a ``lax.scan`` (10 by default; DESIGN.md measured 1.2-1.4x
over one step per call); chunks end at every evaluation and checkpoint step and at the
end, and the host syncs only between chunks. Learning rates are computed on the host
from the schedule at the tokens seen before each step and passed as data.

Resuming is per member: a member whose ``summary.json`` says done or diverged is
skipped; otherwise it restarts from its newest complete checkpoint (or from scratch),
after dropping the ``metrics.jsonl`` rows beyond it, and ends with the same numbers as
an uninterrupted run (batches are a pure function of ``(data.seed, step)``).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from scalelaw.sweep import TrialConfig
>>> trial = TrialConfig.from_dict({
...     "model": {"width": 32, "depth": 1, "head_dim": 16, "context": 32},
...     "train": {"tokens": 4096, "batch_size": 8, "eval_every": 8, "eval_tokens": 512,
...               "log_every": 4}})
>>> [result] = train_group([trial], [Path(tempfile.mkdtemp())])
>>> result.status, result.steps, result.final_eval_loss < 4.5  # uniform bytes: ln 256 = 5.55
('done', 16, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scalelaw.cache import enable_compilation_cache
from scalelaw.corpus import load_corpus
from scalelaw.distributed import agree, any_process, process_count
from scalelaw.storage import Location
from scalelaw.train._member import Member, MemberResult
from scalelaw.train.config import MODES, TrialLike
from scalelaw.train.mesh import GroupMesh, MeshConfig, group_mesh, plan_mesh, to_host
from scalelaw.train.step import State, StepFns, stack, step_fns, unstack
from scalelaw.train.trackers import TrackerConfig, make_tracker

__all__ = ["DEFAULT_STEPS_PER_CALL", "MODES", "MemberResult", "check_mesh", "resolve_mode",
           "train_group"]

DEFAULT_STEPS_PER_CALL = 10
"""Optimizer steps per call of the compiled chunk (one ``lax.scan``), by default."""


def resolve_mode(mode: str, mesh: MeshConfig | None = None) -> str:
    """``"vmap"`` or ``"sequential"``; ``"auto"`` is sequential on CPU in one process,
    vmap elsewhere (accelerators, several processes, or a ``mesh`` with ``members > 1``)."""
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "auto":
        if mesh is not None and (mesh.members or 1) > 1:
            return "vmap"
        one_cpu = jax.default_backend() == "cpu" and jax.process_count() == 1
        return "sequential" if one_cpu else "vmap"
    return mode


def check_mesh(groups: Sequence[Sequence[TrialLike]], *, mode: str = "auto",
               mesh: MeshConfig | None = None) -> None:
    """Raise the ``ValueError`` that :func:`train_group` would raise for the first group
    whose mesh cannot be laid out on the devices present (too few devices, a batch that
    the ``data`` axis does not divide, members sharded in sequential mode), so that a run
    can refuse before it writes anything. ``groups`` holds each group's trials.

    >>> from scalelaw.sweep import load_spec
    >>> spec = load_spec({"name": "m", "train": {"tokens": 4096, "batch_size": 4},
    ...                   "mesh": {"members": 64}})
    >>> check_mesh([g.trials for g in spec.groups()], mesh=spec.mesh)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: mesh: members 64 x data 1 = 64 devices, but ... are present
    """
    config = None if mesh is None or mesh.automatic else mesh
    vmapped = resolve_mode(mode, config) == "vmap"
    for trials in groups:
        members, _ = plan_mesh(config, n_members=len(trials),
                               batch_size=trials[0].train.batch_size, vmapped=vmapped)
        if members > 1 and not vmapped:
            raise ValueError(f"mesh: {members} devices on the members axis need mode vmap")


def _check_group(trials: Sequence[TrialLike], trial_dirs: Sequence[Any]) -> None:
    if len(trials) != len(trial_dirs):
        raise ValueError(f"trial_dirs: {len(trial_dirs)} directories for {len(trials)} trials")
    groups = {t.group_id for t in trials}
    if len(groups) > 1:
        raise ValueError(f"trials: not one group (group ids {', '.join(sorted(groups))}); "
                         "members may differ only in scalars")
    if len({t.trial_id for t in trials}) < len(trials):
        raise ValueError("trials: the same trial appears twice in the group")


class _Group:
    """What the members share: shapes, data, the step plan and the compiled functions."""

    def __init__(self, trial: TrialLike, vmapped: bool, steps_per_call: int | None,
                 mesh: GroupMesh | None) -> None:
        self.trial, self.vmapped, self.mesh = trial, vmapped, mesh
        self.steps, tr = trial.steps, trial.train
        self.batch_size, self.context = tr.batch_size, trial.model.context
        self.per_call = min(steps_per_call or DEFAULT_STEPS_PER_CALL, self.steps)
        self.stops = [e for e in (tr.eval_every, tr.checkpoint_every) if e]
        self.keep = sorted(t // trial.tokens_per_step for t in tr.keep_checkpoints or ())
        self.fns: StepFns = step_fns(trial.model, trial.parametrization,
                                     grad_clip=trial.optimizer.grad_clip, vmapped=vmapped,
                                     divergence=trial.train.divergence_rule, mesh=mesh)
        self.corpus = load_corpus(trial.data)
        self.eval_batches: Any = self.corpus.eval_batches(tr.eval_tokens, self.batch_size,
                                                          self.context)  # (N, B, T+1)
        if mesh is not None:
            self.eval_batches = mesh.put(self.eval_batches, mesh.batch)

    def chunk_end(self, step: int) -> int:
        """End of the chunk starting after ``step``: the next eval/checkpoint step,
        the last step, or ``step + steps_per_call``, whichever comes first."""
        ends = [step + self.per_call, self.steps] + [(step // e + 1) * e for e in self.stops]
        return min(ends + [k for k in self.keep if k > step])

    def is_eval(self, step: int) -> bool:
        return step % self.trial.train.eval_every == 0 or step == self.steps

    def is_checkpoint(self, step: int) -> bool:
        every = self.trial.train.checkpoint_every
        return step == self.steps or bool(every and step % every == 0) or step in self.keep

    def batches(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(i32[S, B, T+1], bool[S])`` for steps ``start .. start+n-1``, zero-padded."""
        S, B, T = self.per_call, self.batch_size, self.context
        out = np.zeros((S, B, T + 1), np.int32)
        out[:n] = self.corpus.train_batches(start, n, B, T, self.trial.data.seed)
        return out, np.arange(S) < n


class _ProgressError(Exception):
    """Wraps an exception raised by the caller's ``progress`` (re-raised, not a failure)."""


def _run(members: list[Member], group: _Group, report: Callable[[int], None],
         singular_values: bool) -> None:
    """Train ``members`` (all at the same step) together: vmapped, or one if sequential."""
    fns, K, S, gm = group.fns, len(members), group.per_call, group.mesh
    state: State
    hyper: dict[str, Any]
    states, hypers = [_state(m) for m in members], [m.hyper for m in members]
    Kp = gm.padded(K) if gm is not None and group.vmapped else K  # with padding members
    if gm is not None and group.vmapped:
        state, hyper = gm.stack(states), gm.stack_host(hypers)
    elif group.vmapped:
        state, hyper = stack(states), stack(hypers)
    else:
        (state,), (hyper,) = states, hypers
        if gm is not None:
            state = gm.replicate(state)
    step, t0 = members[0].start_step, time.perf_counter()
    while step < group.steps and any(m.result is None for m in members):
        end = group.chunk_end(step)
        n = end - step
        batches, active = group.batches(step, n)
        lrs: Any = np.zeros((Kp, S), np.float32)
        for i, m in enumerate(members):
            lrs[i, :n] = m.lrs[step:end]
        lrs[K:] = lrs[K - 1]  # padding members repeat the last one
        dev_batches: Any = batches
        if gm is not None:
            dev_batches = gm.put(batches, gm.batch)
            if group.vmapped:
                lrs = gm.put(lrs, gm.stacked)
        state, dev_out = fns.chunk(state, hyper, lrs if group.vmapped else lrs[0], dev_batches,
                                   active)
        out = {k: to_host(v).reshape(Kp, S)[:K, :n] for k, v in dev_out.items()}
        diverged = to_host(state["diverged_step"]).reshape(Kp)[:K]
        evals: list[float | None] = [None] * K
        extras: list[dict[str, Any]] = [{} for _ in range(K)]
        if group.is_eval(end):
            evals = [float(x) for x in to_host(
                fns.evaluate(state["params"], hyper, group.eval_batches)).reshape(Kp)[:K]]
            if singular_values:
                from scalelaw.mup.diagnostics import top_singular_values

                per_member = _members(state["params"], K, group)
                extras = [{"top_sv": {k: np.asarray(v).tolist() for k, v in
                                      top_singular_values(jax.tree.map(to_host, p)).items()}}
                          for p in per_member]
        wall = time.perf_counter() - t0
        done = 0
        for i, m in enumerate(members):
            if m.result is None:
                done += m.consume(step, {k: v[i] for k, v in out.items()}, int(diverged[i]),
                                  evals[i], wall, extras[i])
        if group.is_checkpoint(end):
            per_member = _members(state, K, group)
            for m, s in zip(members, per_member, strict=True):
                if m.result is None:
                    m.save(s, wall)
        step = end
        try:
            report(done)
        except Exception as exc:
            raise _ProgressError() from exc
    for m in members:
        if m.result is None:
            m.finish()


def train_group(
    trials: Sequence[TrialLike],
    trial_dirs: Sequence[str | Path | Location],
    *,
    mode: str = "auto",
    progress: Callable[[int], None] | None = None,
    steps_per_call: int | None = None,
    singular_values: bool = False,
    tracker: TrackerConfig | None = None,
    mesh: MeshConfig | GroupMesh | None = None,
) -> list[MemberResult]:
    """Train one group of trials, each into its own directory; resume what was interrupted.

    Parameters
    ----------
    trials : sequence of TrialLike
        Members of one group (equal ``group_id``), e.g. ``scalelaw.sweep.Group.trials``.
        Only the transformer family is trained.
    trial_dirs : sequence of path, URL or Location
        One directory per trial (created if needed); see :mod:`scalelaw.train.records`
        for the files written there. A URL (``s3://``, ``gs://``) works as a folder does.
    mode : {"auto", "vmap", "sequential"}
        See the module docstring.
    progress : callable, optional
        Called after each chunk with the number of member-steps just completed (a
        skipped or resumed member reports the steps it already had when it starts; a
        diverged one its remaining steps when it stops), so the calls of one group sum
        to ``sum(t.steps for t in trials)``. An exception it raises (e.g.
        ``KeyboardInterrupt``) stops training and propagates; finished chunks are on
        disk and the next call resumes from the last checkpoint.
    steps_per_call : int, optional
        Steps per compiled call (default :data:`DEFAULT_STEPS_PER_CALL`).
    singular_values : bool
        Also log the top singular value of every weight matrix at evaluation rows.
    tracker : TrackerConfig, optional
        Also send each trial's rows and summary to W&B or TensorBoard (process 0 only;
        a tracker's errors warn and never stop training: :mod:`scalelaw.train.trackers`).
    mesh : MeshConfig or GroupMesh, optional
        Devices for the group (:mod:`scalelaw.train.mesh`): members over ``members``,
        the batch over ``data``. Default: automatic (one device on a CPU; every device
        on accelerators). The numbers equal a single-device run's to float rounding (the
        reduction order changes), which unstable training (a loss that jumps) amplifies.

    Returns
    -------
    list of MemberResult
        In the order of ``trials``. An exception while training marks the members being
        trained ``"failed"`` (message in ``summary.json``); bad arguments and data errors
        (``ValueError``, :class:`scalelaw.ConfigError`) are raised before any training.
    """
    _check_group(trials, trial_dirs)
    config = mesh if isinstance(mesh, MeshConfig) else None
    vmapped = resolve_mode(mode, config) == "vmap"
    gm = mesh if isinstance(mesh, GroupMesh) else group_mesh(
        config, n_members=len(trials), batch_size=trials[0].train.batch_size, vmapped=vmapped)
    if gm is not None and gm.members > 1 and not vmapped:
        raise ValueError(f"mesh: {gm.members} devices on the members axis need mode vmap")
    members = [Member(t, d, make_tracker(tracker)) for t, d in zip(trials, trial_dirs,
                                                                   strict=True)]
    report = progress or (lambda k: None)
    for m in members:
        m.check_dir()
    _check_agreement(members)  # before any report: the observer's stop check is a collective
    for m in members:
        if m.result is not None:
            report(m.steps)
    todo = [m for m in members if m.result is None]
    if todo:
        enable_compilation_cache()
        group = _Group(trials[0], vmapped, steps_per_call, gm)
        try:
            for m in todo:
                m.prepare(group.fns, None if gm is None else gm.replicated)
            _check_agreement(members)
            for m in todo:
                report(m.steps if m.result is not None else m.start_step)
            todo = [m for m in todo if m.result is None]
            starts = sorted({m.start_step for m in todo})
            batches = ([[m for m in todo if m.start_step == s] for s in starts] if group.vmapped
                       else [[m] for m in todo])
            for batch in batches:
                try:
                    _run(batch, group, report, singular_values)
                except _ProgressError as exc:
                    assert exc.__cause__ is not None  # raised from the caller's exception
                    raise exc.__cause__ from None
                except Exception as exc:  # noqa: BLE001 - recorded as a failed trial
                    for m in batch:
                        if m.result is None:
                            m.finish(error=exc)
        finally:
            for m in members:
                m.close()
    return [_result(m) for m in members]


def _check_agreement(members: list[Member]) -> None:
    """On several processes, refuse to train unless all found the same members finished
    and the same checkpoints (else the processes would run different programs). Every
    process raises when any of them differs, so none is left waiting in a collective."""
    if process_count() == 1:
        return
    mine = np.array([-1 if m.result is not None else m.start_step for m in members])
    if any_process(not np.array_equal(agree(mine), mine)):  # every process raises
        raise RuntimeError("trial_dirs: this process sees other trial files than process 0 "
                           f"(start steps {mine.tolist()}); the sweep directory must be one "
                           "that every host shares (a shared filesystem or a URL)")


def _members(state: State, k: int, group: _Group) -> list[State]:
    """The first ``k`` members' states (replicated over the mesh, if any)."""
    if not group.vmapped:
        return [state]
    return unstack(state, k) if group.mesh is None else group.mesh.unstack(state, k)


def _state(m: Member) -> State:
    assert m.state is not None, f"trial {m.trial.trial_id}: trained before prepare()"
    return m.state


def _result(m: Member) -> MemberResult:
    assert m.result is not None, f"trial {m.trial.trial_id}: no result after training"
    return m.result
