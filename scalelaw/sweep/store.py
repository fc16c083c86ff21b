"""The sweep directory: spec copy, trial index, per-trial folders, trial states and a run lock.

Layout of a sweep directory ``OUT``::

    OUT/sweep.yaml          the spec as run (copied byte for byte)
    OUT/sweep.2.yaml ...    specs added later with ``extend=True`` (``--extend``)
    OUT/index.json          the trials: ids, group, member, resolved config, accounting
    OUT/run.lock            {pid, host, started} while a ``run`` holds the directory
    OUT/trials/<trial_id>/  config.json, metrics.jsonl, summary.json, ckpt/ (the trainer's)
    OUT/results.parquet     written by :func:`scalelaw.sweep.results.collect`

``OUT`` may be a local folder or a URL (``s3://``, ``gs://``, any fsspec URL): every file
is reached through :class:`scalelaw.storage.Location`. On a URL each file is written with
one PUT (objects are replaced whole), and ``run.lock`` is a conditional create holding a
lease (:mod:`scalelaw.sweep.run_lock`).

``index.json`` is written last and atomically, so a directory either is a sweep (it has
an index) or is not; ``status`` and ``collect`` read only the index and the trial
folders, never the spec, so they are fast and survive changes of scalelaw's defaults.

Re-running the same spec into ``OUT`` is the resume mechanism: a trial id is a hash of
the resolved config, finished trials are skipped and interrupted ones resume from their
checkpoint (both done by the trainer). A spec that expands to *different* trials is
refused, unless ``extend=True``: its new trials are then added to the sweep (and its
file kept as ``sweep.<k>.yaml``), while trials already present are shared.

Examples
--------
>>> import tempfile
>>> from scalelaw.sweep import load_spec
>>> spec = load_spec({"name": "tiny", "train": {"tokens": 4096, "batch_size": 4},
...                   "model": {"width": 32, "head_dim": 16, "context": 32},
...                   "sweep": {"optimizer.lr": [1e-3, 2e-3]}})
>>> out = Path(tempfile.mkdtemp()) / "out"
>>> store = SweepStore.prepare(out, spec)
>>> [r["member"] for r in store.records], sorted(p.name for p in out.iterdir())
([0, 1], ['index.json', 'sweep.yaml'])
>>> SweepStore.open(out).states()[store.records[0]["trial_id"]]
'pending'
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from scalelaw._io import atomic_write
from scalelaw.distributed import agree, barrier, is_writer, process_count
from scalelaw.errors import ConfigError
from scalelaw.storage import Location, as_location, read_json
from scalelaw.sweep import run_lock
from scalelaw.sweep._fields import plain
from scalelaw.sweep.spec import SweepSpec, load_spec
from scalelaw.sweep.trial import Group, TrialConfig

__all__ = ["STATES", "TERMINAL", "SweepStore", "atomic_write", "read_json", "trial_record"]

FORMAT = 1
INDEX, SPEC, LOCK, TRIALS = "index.json", "sweep.yaml", "run.lock", "trials"
TERMINAL = ("done", "diverged", "failed")
STATES = ("done", "diverged", "failed", "running", "interrupted", "pending")
"""Trial states: the trainer's three final ones; ``running`` (files, no final summary,
and a live ``run`` holds the lock), ``interrupted`` (the same with no live run) and
``pending`` (nothing written yet)."""


def trial_record(trial: TrialConfig, member: int, spec_file: str = SPEC) -> dict[str, Any]:
    """The index entry of one trial: ids, member, config and the accounting tables need.

    Examples
    --------
    >>> t = TrialConfig.from_dict({"model": {"width": 32, "head_dim": 16, "context": 32},
    ...                            "train": {"tokens": 4096, "batch_size": 4}})
    >>> r = trial_record(t, 0)
    >>> r["steps"], r["tokens_per_step"], r["width"]
    (32, 128, 32)
    """
    return {
        "trial_id": trial.trial_id, "group_id": trial.group_id, "member": member,
        "sweep": trial.sweep_name, "spec": spec_file, "swept": dict(trial.swept),
        "parametrization": trial.parametrization.name, "width": trial.model.width,
        "depth": trial.model.depth, "n_params": trial.n_params,
        "n_params_nonembed": trial.n_params_nonembed, "batch_size": trial.train.batch_size,
        "tokens_per_step": trial.tokens_per_step, "lr": trial.peak_lr,
        "weight_decay": trial.optimizer.weight_decay, "seed": trial.train.seed,
        "steps": trial.steps, "flops_per_token": trial.flops_per_token,
        "config": trial.config_dict(),
    }


class SweepStore:
    """A sweep directory. Create with :meth:`prepare` (run) or :meth:`open` (read).

    Attributes
    ----------
    root : Location
        The sweep directory (a local folder or a URL).
    name : str
        The sweep name of the first spec.
    records : list of dict
        :func:`trial_record` per trial, grouped: group order of first appearance, members
        in order (trials added by an extension go after their group's existing members).
    specs : list of dict
        ``{"file", "name", "trials": [trial ids]}`` per spec file.
    """

    def __init__(self, root: str | os.PathLike[str] | Location, index: dict[str, Any],
                 trials: Sequence[TrialConfig] = ()) -> None:
        self.root = as_location(root)
        self.name: str = index["name"]
        self.records: list[dict[str, Any]] = index["trials"]
        self.specs: list[dict[str, Any]] = index["specs"]
        self._known = {t.trial_id: t for t in trials}  # parsed already: not parsed again

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | os.PathLike[str] | Location) -> SweepStore:
        """Open an existing sweep directory (``ConfigError`` if it is not one)."""
        root = as_location(root)
        root.check()
        if root.is_local and root.exists() and not root.is_dir():
            raise ConfigError(f"{root}: a file, not a sweep directory (sweep run --out DIR "
                              "makes one)")
        if root.is_local and not root.is_dir():
            raise ConfigError(f"{root}: no such sweep directory")
        try:
            index = json.loads((root / INDEX).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{root}: not a sweep directory (no {INDEX})") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{root / INDEX}: unreadable ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ConfigError(f"{root / INDEX}: unknown format (expected format {FORMAT})")
        return cls(root, index)

    @classmethod
    def prepare(cls, root: str | os.PathLike[str] | Location, spec: SweepSpec, *,
                spec_text: str | None = None, extend: bool = False) -> SweepStore:
        """Create ``root`` for ``spec``, or check that it already holds the same sweep.

        Parameters
        ----------
        root : path, URL or Location
            The sweep directory (created if missing; must be empty if not a sweep). A URL's
            bucket must exist; its backend must be installed (``ConfigError`` otherwise).
        spec : SweepSpec
            The loaded spec. Its file (``spec.source``) is copied; ``spec_text`` overrides.
        extend : bool
            If ``root`` holds a sweep whose trials differ from ``spec``'s, add the new
            trials instead of refusing.

        Raises
        ------
        ConfigError
            ``root`` is a file or a non-empty non-sweep directory, or holds a different
            sweep and ``extend`` is false.

        Notes
        -----
        On several processes (:mod:`scalelaw.distributed`) process 0 prepares the
        directory; the others wait for it and open what it wrote.
        """
        if process_count() == 1:
            return cls._prepare(root, spec, spec_text=spec_text, extend=extend)
        store = cls._prepare(root, spec, spec_text=spec_text, extend=extend) \
            if is_writer() else None
        barrier("scalelaw-sweep-prepared")
        if store is None:
            store = cls.open(root)
            store._known.update((t.trial_id, t) for t in spec.trials())
        return store

    @classmethod
    def _prepare(cls, root: str | os.PathLike[str] | Location, spec: SweepSpec, *,
                 spec_text: str | None = None, extend: bool = False) -> SweepStore:
        root = as_location(root)
        root.check()
        if root.is_local and root.exists() and not root.is_dir():
            raise ConfigError(f"root: {root} is a file, not a directory")
        ids = [t.trial_id for t in spec.trials()]
        if (root / INDEX).exists():
            store = cls.open(root)
            store._known.update((t.trial_id, t) for t in spec.trials())
            if store._matches(spec.name, ids):
                return store
            if not extend:
                raise ConfigError(store._difference(spec.name, ids))
            return store._extend(spec, ids, spec_text)
        if any(p.name != SPEC for p in root.iterdir()):
            raise ConfigError(f"root: {root} exists and is not a sweep directory (no {INDEX}); "
                              f"choose a new or empty directory")
        root.mkdir()
        (root / SPEC).write_text(spec_text if spec_text is not None else _spec_text(spec))
        records = _grouped([], [trial_record(t, 0) for t in spec.trials()])
        index = {"format": FORMAT, "name": spec.name, "created": run_lock.now(),
                 "specs": [{"file": SPEC, "name": spec.name, "trials": ids}], "trials": records}
        (root / INDEX).write_text(json.dumps(index, indent=1))
        return cls(root, index, spec.trials())

    def _matches(self, name: str, ids: list[str]) -> bool:
        known = [set(s["trials"]) for s in self.specs] + [{r["trial_id"] for r in self.records}]
        return any(s["name"] == name for s in self.specs) and set(ids) in known

    def _difference(self, name: str, ids: list[str]) -> str:
        have = {r["trial_id"] for r in self.records}
        new, missing = len(set(ids) - have), len(have - set(ids))
        if new == missing == 0:
            what = f"sweep {self.name!r} (this spec is named {name!r})"
        else:
            what = f"sweep {self.name!r} with different trials ({new} new in this spec, " \
                   f"{missing} not in it)"
        return (f"root: {self.root} holds {what}; use a new directory, or add this spec's "
                f"trials to it (extend=True; sweep run --extend)")

    def _extend(self, spec: SweepSpec, ids: list[str], spec_text: str | None) -> SweepStore:
        file = f"sweep.{len(self.specs) + 1}.yaml"
        (self.root / file).write_text(spec_text if spec_text is not None else _spec_text(spec))
        have = {r["trial_id"] for r in self.records}
        fresh = [trial_record(t, 0, file) for t in spec.trials() if t.trial_id not in have]
        self.records = _grouped(self.records, fresh)
        self.specs = [*self.specs, {"file": file, "name": spec.name, "trials": ids}]
        self._write_index()
        return self

    def _write_index(self) -> None:
        index = json.loads((self.root / INDEX).read_text())
        index.update(specs=self.specs, trials=self.records, updated=run_lock.now())
        (self.root / INDEX).write_text(json.dumps(index, indent=1))

    # ------------------------------------------------------------------ trials
    @property
    def swept_paths(self) -> list[str]:
        """Every swept field path, in order of first appearance."""
        return list(dict.fromkeys(p for r in self.records for p in r["swept"]))

    def trial_dir(self, trial_id: str) -> Location:
        """``root / "trials" / trial_id``."""
        return self.root / TRIALS / trial_id

    def load_trials(self) -> list[TrialConfig]:
        """The trials as :class:`TrialConfig` objects.

        Those of the spec this store was prepared with are used as parsed; only when some
        indexed trial is not among them (a resume from the directory alone, an earlier
        ``--extend``) are the spec copies re-expanded. Raises ``ConfigError`` if a copy no
        longer expands to the indexed trials (e.g. scalelaw changed a default, which
        changes trial ids).
        """
        by_id: dict[str, TrialConfig] = dict(self._known)
        if any(r["trial_id"] not in by_id for r in self.records):
            for entry in self.specs:
                for trial in _load_copy(self.root / entry["file"]).trials():
                    by_id.setdefault(trial.trial_id, trial)
        lost = [r["trial_id"] for r in self.records if r["trial_id"] not in by_id]
        if lost:
            raise ConfigError(f"{self.root}: the spec copies no longer expand to {len(lost)} "
                              f"indexed trial(s) (e.g. {lost[0]}); was scalelaw upgraded?")
        return [by_id[r["trial_id"]] for r in self.records]

    def groups(self, trials: Sequence[TrialConfig] | None = None) -> list[Group]:
        """Groups in index order; ``trials`` as from :meth:`load_trials` (loaded if None)."""
        trials = self.load_trials() if trials is None else trials
        out: dict[str, list[TrialConfig]] = {}
        for trial in trials:
            out.setdefault(trial.group_id, []).append(trial)
        return [Group(gid, tuple(members)) for gid, members in out.items()]

    def trial_state(self, trial_id: str, live: bool | None = None) -> str:
        """One of :data:`STATES`; ``live`` says whether a run holds the lock (checked if None)."""
        folder = self.trial_dir(trial_id)
        if not folder.iterdir():
            return "pending"
        summary = read_json(folder / "summary.json")
        if isinstance(summary, dict) and summary.get("status") in TERMINAL:
            return summary["status"]
        live = self.lock_holder() is not None if live is None else live
        return "running" if live else "interrupted"

    def states(self) -> dict[str, str]:
        """``{trial_id: state}`` for every trial, in index order."""
        live = self.lock_holder() is not None
        return {r["trial_id"]: self.trial_state(r["trial_id"], live) for r in self.records}

    # ------------------------------------------------------------------ lock
    def lock_holder(self) -> dict[str, Any] | None:
        """The lock's ``{pid, host, started}`` if a live run holds it (see
        :func:`scalelaw.sweep.run_lock.lock_holder`)."""
        return run_lock.lock_holder(self.root / LOCK)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold ``run.lock`` for a run; refuses if another live run holds it (see
        :func:`scalelaw.sweep.run_lock.hold`). On several processes process 0 holds it
        and all of them raise if it could not."""
        if process_count() == 1:
            return run_lock.hold(self.root, LOCK)
        return self._locked_together()

    @contextlib.contextmanager
    def _locked_together(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            error: ConfigError | None = None
            if is_writer():
                try:
                    stack.enter_context(run_lock.hold(self.root, LOCK))
                except ConfigError as exc:
                    error = exc
            if int(agree(0 if error is None else 1)):
                raise error or ConfigError(f"{self.root}: process 0 could not take {LOCK}")
            yield


# ----------------------------------------------------------------------------- helpers
def _load_copy(path: Location) -> SweepSpec:
    """A spec copy of the sweep directory (local: by file name, as before; URL: its text)."""
    if path.is_local:
        return load_spec(path.local)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable spec copy ({exc})") from None
    return load_spec(raw)


def _grouped(old: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old + fresh`` ordered by group (first appearance), members renumbered after old ones."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in [*old, *fresh]:
        groups.setdefault(record["group_id"], []).append(record)
    out = []
    known = {r["trial_id"] for r in old}
    for members in groups.values():
        next_member = max((r["member"] for r in members if r["trial_id"] in known), default=-1)
        for record in members:
            if record["trial_id"] not in known:
                next_member += 1
                record = {**record, "member": next_member}
            out.append(record)
    return out


def _spec_text(spec: SweepSpec) -> str:
    """The spec's file text, or a YAML dump of an in-memory spec."""
    if spec.source is not None:
        return Path(spec.source).read_text()
    raw: dict[str, Any] = {"name": spec.name, "description": spec.description,
                           **{k: dict(v) for k, v in spec.base.items()}}
    sweep = {}
    for axis in spec.axes:
        if len(axis.paths) != 1:
            raise ConfigError("spec: a spec with zip axes must be loaded from a file to be run")
        sweep[axis.paths[0]] = [point[axis.paths[0]] for point in axis.points]
    if spec.overrides:
        raise ConfigError("spec: a spec with overrides must be loaded from a file to be run")
    raw["sweep"] = sweep
    return yaml.safe_dump(plain(raw), sort_keys=False)
