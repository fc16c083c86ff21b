"""Experiment trackers: W&B or TensorBoard next to the trial files (which stay the record).

A sweep spec may name one tracker::

    tracker: {kind: wandb, project: my-project, mode: offline}
    tracker: {kind: tensorboard, dir: runs/tb}

The trainer then opens one tracker run per trial, in the process that writes the trial's
files (process 0 of a multi-host group, ``jax.process_index() == 0``; the Ray worker of
a group), and sends it what it writes: every ``metrics.jsonl`` row (``train_loss``,
``eval_loss``, ``lr``, ``tokens``, ``flops``, ``grad_norm``, ``wall_time`` and, when
logged, ``top_sv/<matrix>``, at x-axis ``step``) and, at the end, ``summary.json``.

Runs are named by trial id and grouped by sweep: W&B's ``group`` is the sweep name and
``name`` the trial id, with the trial's resolved config (``config.json``) as the run
config and tags ``width=``, ``lr=``, ``batch=``; TensorBoard writes one folder per trial
(named by its id) with the config as text and ``width``, ``lr``, ``batch_size`` in the
HParams dashboard.

Fields:

``kind``
    ``wandb`` (``pip install 'scalelaw[wandb]'``) or ``tensorboard``
    (``pip install 'scalelaw[tensorboard]'``: tensorboardX, a writer that needs neither
    TensorFlow nor PyTorch; view with ``tensorboard --logdir ...``).
``project``, ``entity``
    W&B only: where the runs go (default project ``scalelaw``; entity: W&B's default).
``mode``
    W&B only: ``online`` or ``offline`` (then ``wandb sync`` uploads later); unset: W&B's
    own setting (``WANDB_MODE``).
``dir``
    W&B: the folder of its local files (default ``$WANDB_DIR``, else ``./wandb``).
    TensorBoard: event files go to ``DIR/<sweep name>/<trial id>/``; unset, to
    ``<trial dir>/tensorboard/`` (``tensorboard --logdir OUT/trials``), which needs a
    local sweep directory.
``tags``
    Extra tags of every run (W&B tags; TensorBoard: text).

A resumed trial continues its W&B run (the run id is kept in ``<trial dir>/wandb.json``;
steps W&B already has are not sent again) and its TensorBoard folder (events after the
checkpoint are purged, as the metrics rows are).

**A tracker never stops training.** The package is checked when a run starts
(:func:`check_tracker`: one line naming ``tracker.kind`` and the pip extra); after that,
any error of a tracker (the package missing on a worker, the network, an exception while
logging) switches that trial's tracker off and is reported as a :class:`TrackerWarning`
(once per process for each kind of failure); the trial's files are written as without a
tracker.

Examples
--------
>>> parse_tracker({"kind": "wandb", "mode": "offline", "tags": ["cpu"]})
TrackerConfig(kind='wandb', project=None, entity=None, mode='offline', dir=None, tags=('cpu',))
>>> parse_tracker({"kind": "tensorboard", "mode": "offline"})
Traceback (most recent call last):
...
scalelaw.errors.FieldError: tracker.mode: only for kind wandb (tensorboard takes kind, dir, tags)
>>> flat_row({"step": 8, "train_loss": 3.5, "eval_loss": None, "top_sv": {"w": [1.0, 2.0]}})
{'train_loss': 3.5, 'top_sv/w/0': 1.0, 'top_sv/w/1': 2.0}
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import model_validator

from scalelaw._validation import NonEmptyStr, Paths, section, validate
from scalelaw.errors import ConfigError, FieldError
from scalelaw.storage import Location

__all__ = ["KINDS", "TensorBoardTracker", "Tracker", "TrackerConfig", "TrackerWarning",
           "WandbTracker", "check_tracker", "flat_row", "make_tracker", "parse_tracker"]

PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboardX"}
"""The package each kind imports (the pip extra is named after the kind)."""
RUN_ID_FILE = "wandb.json"
_WANDB_ONLY = ("project", "entity", "mode")


class TrackerWarning(UserWarning):
    """A tracker failed; training goes on and the trial's files are complete."""


@section
class TrackerConfig:
    """The spec's ``tracker:`` section (see the module notes for each field)."""

    kind: Literal["wandb", "tensorboard"]
    project: NonEmptyStr | None = None
    entity: NonEmptyStr | None = None
    mode: Literal["online", "offline"] | None = None
    dir: NonEmptyStr | None = None
    tags: Paths = ()

    @model_validator(mode="after")
    def _kind_fields(self) -> TrackerConfig:
        if self.kind != "wandb":
            for name in _WANDB_ONLY:
                if getattr(self, name) is not None:
                    raise FieldError(name, f"only for kind wandb ({self.kind} takes kind, "
                                           "dir, tags)")
        return self


def parse_tracker(block: Any) -> TrackerConfig | None:
    """Validate a spec's ``tracker:`` block (None: no tracker). Errors name ``tracker.<field>``."""
    if block is None:
        return None
    return validate(TrackerConfig, block, prefix="tracker")


def check_tracker(config: TrackerConfig | None) -> None:
    """Refuse, before a run starts, a tracker whose package is not installed.

    Raises
    ------
    ConfigError
        ``tracker.kind: wandb needs the wandb package: pip install 'scalelaw[wandb]'``.
    """
    if config is None:
        return
    if importlib.util.find_spec(PACKAGES[config.kind]) is None:
        raise ConfigError(_missing(config.kind))


def _missing(kind: str) -> str:
    return (f"tracker.kind: {kind} needs the {PACKAGES[kind]} package: "
            f"pip install 'scalelaw[{kind}]'")


def _import(kind: str) -> Any:
    """The package of ``kind``, or ConfigError naming the extra (e.g. on a Ray worker)."""
    try:
        return importlib.import_module(PACKAGES[kind])
    except ImportError:
        raise ConfigError(_missing(kind)) from None


def flat_row(row: Mapping[str, Any]) -> dict[str, float]:
    """A metrics row as ``{name: number}`` without ``step`` and ``None`` values; nested
    values (``top_sv``) as ``top_sv/<matrix>[/<index>]``."""
    out: dict[str, float] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                add(f"{name}/{key}", inner)
        elif isinstance(value, list | tuple):
            for i, inner in enumerate(value):
                add(f"{name}/{i}", inner)
        elif isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[name] = value

    for key, value in row.items():
        if key != "step":
            add(key, value)
    return out


def _labels(trial: Any) -> dict[str, Any]:
    """Width, peak LR and batch size of a trial (the axes of a muP sweep)."""
    return {"width": trial.model.width, "lr": trial.optimizer.lr,
            "batch_size": trial.train.batch_size}


def _config(trial: Any) -> dict[str, Any]:
    """The trial's resolved config as written to ``config.json``."""
    return json.loads(trial.to_json())


class Tracker(Protocol):
    """One tracker run per trial: ``start``, ``log`` after each write of rows, ``finish``."""

    def start(self, trial: Any, trial_dir: Location, start_step: int) -> None:
        """Open the trial's run; ``start_step`` is the step training resumes after (0)."""

    def log(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The rows just appended to ``metrics.jsonl``."""

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        """Close the run with ``summary.json`` (None: training stopped without one)."""


class WandbTracker:
    """A W&B run per trial (several at once in one process, for vmapped groups)."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.run: Any = None  # a wandb Run

    def start(self, trial: Any, trial_dir: Location, start_step: int) -> None:
        wandb = _import("wandb")
        run_file = trial_dir / RUN_ID_FILE
        if run_file.exists():
            run_id = json.loads(run_file.read_text())["run_id"]
        else:
            run_id = f"{trial.trial_id}-{uuid.uuid4().hex[:6]}"  # unique per directory
            run_file.write_text(json.dumps({"run_id": run_id}) + "\n")
        labels = _labels(trial)
        tags = [f"width={labels['width']}", f"lr={labels['lr']:g}",
                f"batch={labels['batch_size']}", *self.config.tags]
        c = self.config
        if c.dir is not None:  # W&B falls back to a temporary folder for a missing one
            os.makedirs(c.dir, exist_ok=True)
        self.run = wandb.init(
            project=c.project or "scalelaw", entity=c.entity, mode=c.mode, dir=c.dir,
            group=trial.sweep_name or None, job_type="trial", name=trial.trial_id, id=run_id,
            resume="allow", reinit="create_new", tags=tags, config=_config(trial),
            settings=wandb.Settings(console="off", quiet=True, save_code=False))

    def log(self, rows: Sequence[Mapping[str, Any]]) -> None:
        run = self.run
        assert run is not None, "log() before start()"
        for row in rows:
            if row["step"] >= run.step:  # a resumed run: W&B keeps what it already has
                run.log(flat_row(row), step=row["step"])

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        if summary is not None:
            run.summary.update(flat_row(summary) | {"status": summary.get("status")})
        run.finish(exit_code=0 if summary and summary.get("status") != "failed" else 1)


class TensorBoardTracker:
    """TensorBoard event files per trial, written with tensorboardX."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.writer: Any = None  # a tensorboardX SummaryWriter

    def logdir(self, trial: Any, trial_dir: Location) -> str:
        """``dir/<sweep>/<trial id>`` or ``<trial dir>/tensorboard``."""
        if self.config.dir is not None:
            return str(Location(self.config.dir) / (trial.sweep_name or "sweep") / trial.trial_id)
        if not trial_dir.is_local:
            raise ValueError(f"tracker.dir: TensorBoard writes local files; set it for a sweep "
                             f"directory at a URL ({trial_dir.url})")
        return str(trial_dir.local / "tensorboard")

    def start(self, trial: Any, trial_dir: Location, start_step: int) -> None:
        tensorboardx = _import("tensorboard")
        from tensorboardX.summary import hparams

        # File names hold the second the writer opened: a resume within the same second
        # would reuse (overwrite) the interrupted run's file without a finer suffix, which
        # also keeps TensorBoard's reading order (by name) chronological.
        writer = tensorboardx.SummaryWriter(self.logdir(trial, trial_dir),
                                            purge_step=start_step + 1,
                                            filename_suffix=f".{time.time_ns()}")
        self.writer = writer
        if start_step == 0:
            text = json.dumps(_config(trial), indent=1)
            writer.add_text("config", f"```\n{text}\n```")
            if self.config.tags:
                writer.add_text("tags", ", ".join(self.config.tags))
            labels = _labels(trial) | {"trial_id": trial.trial_id, "sweep": trial.sweep_name}
            for summary in hparams(labels, {"eval_loss": 0.0, "train_loss": 0.0}):
                writer.file_writer.add_summary(summary)

    def log(self, rows: Sequence[Mapping[str, Any]]) -> None:
        writer = self.writer
        assert writer is not None, "log() before start()"
        for row in rows:
            for name, value in flat_row(row).items():
                writer.add_scalar(name, value, global_step=row["step"])
        writer.flush()

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        if summary is not None:
            writer.add_text("summary", f"```\n{json.dumps(dict(summary), indent=1)}\n```")
        writer.close()


KINDS: dict[str, type[WandbTracker] | type[TensorBoardTracker]] = {
    "wandb": WandbTracker, "tensorboard": TensorBoardTracker}
"""The class of each ``tracker.kind``."""


_WARNED: set[tuple[str, str, str]] = set()
"""``(kind, method, exception type)`` already reported in this process."""


class Guarded:
    """A tracker whose errors are warned about once (per kind, method and exception type
    in a process) and switch it off for its trial."""

    def __init__(self, tracker: Tracker | None, kind: str = "") -> None:
        self.tracker, self.kind, self.trial_id = tracker, kind, ""
        self.open = False

    def _call(self, what: str, *args: Any) -> None:
        if self.tracker is None:
            return
        try:
            getattr(self.tracker, what)(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker never stops training
            tracker, self.tracker, self.open = self.tracker, None, False
            if what != "finish":
                with contextlib.suppress(Exception):  # release what it holds, if it can
                    tracker.finish(None)
            key = (self.kind, what, type(exc).__name__)
            if key in _WARNED:
                return
            _WARNED.add(key)
            first = (str(exc).strip().splitlines() or [""])[0]
            warnings.warn(f"tracker {self.kind} failed in {what}() for trial {self.trial_id} "
                          f"({type(exc).__name__}: {first}); it is off for this trial (and "
                          "this error is not shown again); the trial's files are unaffected",
                          TrackerWarning, stacklevel=3)

    def start(self, trial: Any, trial_dir: Location, start_step: int) -> None:
        self.trial_id = trial.trial_id
        self._call("start", trial, trial_dir, start_step)
        self.open = self.tracker is not None

    def log(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.open and rows:
            self._call("log", rows)

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        if self.open:
            self.open = False
            self._call("finish", summary)


def make_tracker(config: TrackerConfig | None) -> Guarded:
    """One trial's tracker: a no-op unless ``config`` is given and this is process 0.

    An error of the tracker (including its package missing here) switches it off for
    the trial and is a :class:`TrackerWarning` (once per process for each kind of
    failure); see the module notes.
    """
    if config is None:
        return Guarded(None)
    import jax

    if jax.process_index() != 0:
        return Guarded(None)
    return Guarded(KINDS[config.kind](config), config.kind)
