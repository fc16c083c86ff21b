"""Cooldown branches: a branch equals the from-scratch WSD run of its budget.

One model shape (width 32, depth 1, context 16, batch 4: 64 tokens per step) throughout.
"""

from __future__ import annotations

import copy

import pytest

from scalelaw.errors import ConfigError
from scalelaw.sweep import TrialConfig, load_spec
from scalelaw.sweep.executors import LocalExecutor
from scalelaw.sweep.results import collect, trial_summary
from scalelaw.sweep.runner import run_sweep
from scalelaw.sweep.store import SweepStore
from scalelaw.train import read_metrics, read_summary, train_group

TPS = 4 * 16
SPEC = {
    "name": "branches",
    "model": {"width": 32, "depth": 1, "head_dim": 16, "context": 16},
    "parametrization": {"name": "mup", "base_width": 32},
    "optimizer": {"lr": 4e-3},
    "schedule": {"name": "wsd", "warmup_tokens": 256, "decay_fraction": 0.25},
    "train": {"tokens": 40 * TPS, "batch_size": 4, "eval_every": 5, "eval_tokens": 128,
              "log_every": 5, "checkpoint_every": 10},
    "branches": {"tokens": [20 * TPS, 40 * TPS]},
    "sweep": {"optimizer.lr": [2e-3, 4e-3]},
}


def spec(**patch):  # noqa: ANN003, ANN201
    out = copy.deepcopy(SPEC)
    out.update(patch)
    return load_spec(out)


def test_expansion_stable_first_then_one_branch_per_budget() -> None:
    trials = spec().trials()
    assert len(trials) == 2 * 3
    stable, *branches = trials[:3]
    assert stable.schedule.decay_fraction == 0.0 and stable.train.branch_of is None
    assert stable.train.keep_checkpoints == (15 * TPS, 30 * TPS) == (stable.train.tokens / 2,
                                                                     stable.train.tokens)
    for b, steps in zip(branches, (20, 40), strict=True):
        assert b.schedule.decay_fraction == 0.25 and b.train.tokens == steps * TPS
        assert b.train.branch_of == stable.trial_id and b.train.branch_at == 0.75 * steps * TPS
        assert b.swept["train.tokens"] == steps * TPS
    groups = spec().groups()
    assert [len(g) for g in groups] == [2, 2, 2]  # stable (both LRs), then each budget
    assert all(t.train.branch_of is None for t in groups[0].trials)
    again = TrialConfig.from_json(branches[0].to_json())
    assert again == branches[0] and again.trial_id == branches[0].trial_id


@pytest.mark.parametrize(("patch", "where"), [
    ({"schedule": {"name": "cosine"}}, "branches: needs schedule wsd"),
    ({"branches": {"tokens": []}}, "branches.tokens: must be a non-empty list"),
    ({"branches": {"tokens": [40 * TPS, 20 * TPS]}}, "branches.tokens: must be increasing"),
    ({"branches": {"tokens": [1]}}, "branches.tokens[0]: must be at least"),
    ({"branches": {"tokens": [-5]}}, "branches.tokens[0]: must be a positive integer"),
    ({"branches": {"tokens": [TPS * 8], "decay_fraction": 1.5}},
     "branches.decay_fraction: must be a number in (0, 1)"),
    ({"branches": {"tokens": [TPS * 8], "every": 2}}, "branches.every: unknown key"),
])
def test_bad_branches_name_the_field(patch, where) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError) as info:
        spec(**patch)
    assert str(info.value).startswith(where), str(info.value)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("branches") / "sweep"
    store = SweepStore.prepare(out, spec())
    summary = run_sweep(store, LocalExecutor(mode="sequential"))
    assert summary.states == {"done": 6} and summary.failed == 0
    return store


def test_a_branch_equals_the_from_scratch_run(swept, tmp_path) -> None:
    """Same losses, LRs and evals as a WSD run of the branch's budget from step 0."""
    for branch in [t for t in swept.load_trials() if t.train.branch_of]:
        plain = copy.deepcopy(SPEC)
        plain.pop("branches")
        plain["train"]["tokens"] = branch.train.tokens
        plain["optimizer"]["lr"] = branch.optimizer.lr
        plain.pop("sweep")
        (scratch,) = load_spec(plain).trials()
        train_group([scratch], [tmp_path / scratch.trial_id], mode="sequential")
        full = {r["step"]: r for r in read_metrics(tmp_path / scratch.trial_id)}
        rows = read_metrics(swept.trial_dir(branch.trial_id))
        start = branch.train.branch_at // TPS
        assert rows[0]["step"] > start and rows[-1]["step"] == branch.steps
        assert [r["step"] for r in rows] == [s for s in full if s > start]
        for r in rows:
            ref = full[r["step"]]
            assert r["lr"] == pytest.approx(ref["lr"], rel=1e-6)
            assert r["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-5)
            if ref["eval_loss"] is not None:
                assert r["eval_loss"] == pytest.approx(ref["eval_loss"], rel=1e-5)
            assert r["tokens"] == ref["tokens"]


def test_collect_gives_each_branch_its_own_rows(swept) -> None:
    _, table = collect(swept.root)
    summary = trial_summary(table)
    assert len(summary) == 6 and set(summary["status"]) == {"done"}
    final_tokens = table.groupby("trial_id")["tokens"].max()
    assert sorted(final_tokens) == sorted([30 * TPS, 20 * TPS, 40 * TPS] * 2)
    assert table.groupby("trial_id")["step"].apply(lambda s: s.is_unique).all()


def test_a_branch_waits_for_its_stable_run_and_inherits_divergence(tmp_path) -> None:
    """Without the stable run's checkpoint a branch fails (and is retried); a stable run
    that diverged before the branch point takes its branches with it."""
    store = SweepStore.prepare(tmp_path / "a", spec(sweep={"optimizer.lr": [4e-3]}))
    stable, first, second = store.groups()
    early = LocalExecutor(mode="sequential").run([first], store)
    assert early[0].counts == {"failed": 1}
    assert "has no kept checkpoint" in (store.trial_dir(first.trials[0].trial_id)
                                        / "summary.json").read_text()
    assert run_sweep(store, LocalExecutor(mode="sequential")).states == {"done": 3}

    bad = SweepStore.prepare(tmp_path / "b", spec(sweep={"optimizer.lr": [5.0]},
                                                  optimizer={"lr": 5.0, "grad_clip": 1.0}))
    result = run_sweep(bad, LocalExecutor(mode="sequential"))
    assert result.states == {"diverged": 3}
    steps = [read_summary(bad.trial_dir(r["trial_id"]))["diverged_step"] for r in bad.records]
    assert len(steps) == 3 and len(set(steps)) == 1  # where the stable run diverged


def test_loss_points_mark_the_cooled_ones(swept) -> None:
    """Branch finals are cooled points at their budgets; stable-phase ends are not."""
    from scalelaw.sweep.results import loss_points

    table = collect(swept.root)[1]
    final = loss_points(table)
    assert len(final) == 6 and (final["N"] == final["N"].iloc[0]).all()
    cooled = final[final["cooled"]]
    assert sorted(cooled["D"]) == sorted([20 * TPS, 40 * TPS] * 2)
    assert sorted(final[~final["cooled"]]["D"]) == [30 * TPS] * 2  # the stable phases
    assert (final["tokens_per_step"] == TPS).all()  # LR x batch fits read the batch
    assert (final["batch_size"] * table["tokens_per_step"].iloc[0]
            == final["tokens_per_step"] * table["batch_size"].iloc[0]).all()
    logged = loss_points(table, points="logged")
    assert len(logged) == table["eval_loss"].notna().sum() and logged["cooled"].sum() == 4
    with pytest.raises(ValueError, match="points: must be"):
        loss_points(table, points="all")
