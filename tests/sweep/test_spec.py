"""Tests for scalelaw.sweep: spec validation, expansion, trial ids, groups, JSON."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalelaw import schedules
from scalelaw.errors import ConfigError
from scalelaw.sweep import SCALAR_PATHS, TrialConfig, load_spec
from scalelaw.train.config import SCHEDULE_DEFAULTS

REPO = Path(__file__).resolve().parents[2]
DELETE = object()

BASE: dict[str, Any] = {
    "name": "t",
    "model": {"family": "transformer", "width": 64, "depth": 2, "head_dim": 16, "context": 32},
    "parametrization": {"name": "mup", "base_width": 64},
    "optimizer": {"lr": 1e-3},
    "schedule": {"name": "wsd", "warmup_tokens": 1000.0, "decay_fraction": 0.2},
    "data": {"source": "stdlib"},
    "train": {"tokens": 16384, "batch_size": 4},
    "sweep": {"model.width": [32, 64], "optimizer.lr": [1e-3, 2e-3]},
}


def spec_with(**patch: Any) -> dict[str, Any]:
    """BASE with sections merged one level deep (``DELETE`` removes a key)."""
    out = copy.deepcopy(BASE)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            for k, v in value.items():
                if v is DELETE:
                    out[key].pop(k, None)
                else:
                    out[key][k] = v
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------------- expansion
def test_product_expansion() -> None:
    spec = load_spec(spec_with(sweep={"optimizer.lr": {"log2_range": [-12, -4], "num": 9},
                                      "train.seed": [0, 1]}))
    trials = spec.trials()
    assert len(trials) == 2 * 9 * 2 == len(spec)
    assert [t.model.width for t in trials[:18]] == [32] * 18  # first axis slowest
    assert trials[0].optimizer.lr == 2.0**-12 and trials[-1].optimizer.lr == 2.0**-4
    assert trials[0].swept == {"model.width": 32, "optimizer.lr": 2.0**-12, "train.seed": 0}
    assert len({t.trial_id for t in trials}) == 36


def test_zip_expansion() -> None:
    spec = load_spec(spec_with(sweep={
        "model.width": DELETE,
        "zip": {"model.width": [32, 64, 128], "train.batch_size": [8, 4, 2]},
    }))
    pairs = {(t.model.width, t.train.batch_size) for t in spec.trials()}
    assert pairs == {(32, 8), (64, 4), (128, 2)}
    assert len(spec.trials()) == 3 * 2
    several = load_spec(spec_with(sweep={"model.width": DELETE, "zip": [
        {"model.width": [32, 64], "train.batch_size": [8, 4]},
        {"optimizer.b1": [0.8, 0.9], "optimizer.b2": [0.95, 0.99]},
    ]}))
    assert len(several.trials()) == 2 * 2 * 2  # two zip axes x optimizer.lr


def test_random_samples_are_seeded_and_in_range() -> None:
    def lrs(seed: int) -> list[float]:
        axis = {"log_uniform": [1e-4, 1e-1], "num": 7, "seed": seed}
        spec = load_spec(spec_with(sweep={"model.width": DELETE, "optimizer.lr": axis}))
        return [t.optimizer.lr for t in spec.trials()]

    first = lrs(0)
    assert len(first) == 7 and all(1e-4 <= x <= 1e-1 for x in first)
    assert first == lrs(0) and first != lrs(1)
    uniform = load_spec(spec_with(sweep={"optimizer.b2": {"uniform": [0.9, 0.99], "num": 4}}))
    assert len(uniform.trials()) == 2 * 2 * 4
    assert all(0.9 <= t.optimizer.b2 <= 0.99 for t in uniform.trials())


def test_range_generators() -> None:
    spec = load_spec(spec_with(sweep={
        "model.width": {"log2_range": [5, 7], "num": 3},
        "optimizer.lr": {"log10_range": [-4, -2], "num": 3},
        "optimizer.weight_decay": {"linear_range": [0, 0.2], "num": 3},
    }))
    trials = spec.trials()
    assert sorted({t.model.width for t in trials}) == [32, 64, 128]
    assert sorted({t.optimizer.lr for t in trials}) == [1e-4, 1e-3, 1e-2]
    assert sorted({t.optimizer.weight_decay for t in trials}) == [0.0, 0.1, 0.2]


def test_overrides() -> None:
    spec = load_spec(spec_with(
        sweep={"model.width": [32, 64, 128]},
        overrides=[{"when": {"model.width": [64, 128]}, "set": {"train.batch_size": 2}},
                   {"when": {"model.width": 128, "optimizer.lr": 2e-3},
                    "set": {"optimizer.weight_decay": 0.1}}],
    ))
    trials = spec.trials()
    assert len(trials) == 6
    assert {t.model.width: t.train.batch_size for t in trials} == {32: 4, 64: 2, 128: 2}
    decayed = [(t.model.width, t.optimizer.lr) for t in trials if t.optimizer.weight_decay]
    assert decayed == [(128, 2e-3)]


def test_overrides_that_merge_trials_are_deduplicated() -> None:
    spec = load_spec(spec_with(sweep={"train.batch_size": [2, 4]},
                               overrides=[{"when": {"model.width": 64},
                                           "set": {"train.batch_size": 2}}]))
    # width 32: 2 batch sizes x 2 lrs; width 64: batch forced to 2 -> 2 lrs
    assert len(spec.trials()) == 4 + 2


def test_tokens_per_param() -> None:
    spec = load_spec(spec_with(sweep={"model.width": [32, 64, 128],
                                      "train.tokens_per_param": [1, 2]}))
    for t in spec.trials():
        assert t.train.tokens == round(t.train.tokens_per_param * t.n_params_nonembed)
        assert t.steps == t.train.tokens // (4 * 32)
    assert len({t.group_id for t in spec.trials()}) == 6


def test_accounting() -> None:
    (trial, *_) = load_spec(spec_with(sweep=DELETE)).trials()
    w, v, t = 64, 256, 32
    n = 2 * (4 * w * w + 2 * w * 4 * w)
    assert trial.n_params_nonembed == n
    assert trial.n_params == n + (2 * 2 + 1) * w + 2 * v * w
    assert trial.tokens_per_step == 4 * 32 and trial.steps == 16384 // 128
    assert trial.flops_per_token == 6 * (n + w * v) + 12 * 2 * t * w
    assert trial.total_flops == trial.flops_per_token * trial.steps * 128
    flat = trial.flat()
    assert flat["model.width"] == 64 and flat["train.tokens"] == 16384
    assert all(flat[p] == trial.get(p) for p in flat)
    kwargs = trial.schedule_kwargs()
    assert kwargs == {"warmup_tokens": 1000.0, "decay_fraction": 0.2, "decay": "linear",
                      "final_fraction": 0.0, "total_tokens": 16384, "peak_lr": 1e-3}


def test_schedule_defaults_match_scalelaw_schedules() -> None:
    for name, defaults in SCHEDULE_DEFAULTS.items():
        params = inspect.signature(getattr(schedules, name)).parameters
        assert {k: params[k].default for k in defaults} == defaults
        (trial, *_) = load_spec(spec_with(sweep=DELETE, schedule={
            "name": name, "decay_fraction": DELETE, "warmup_tokens": DELETE})).trials()
        getattr(schedules, name)(**trial.schedule_kwargs())  # accepted by the function


# ----------------------------------------------------------------------------- identity
GOLDEN = {"model": {"width": 64, "depth": 2, "head_dim": 16, "context": 32},
          "optimizer": {"lr": 1e-3}, "train": {"tokens": 16384, "batch_size": 4}}


def test_trial_id_is_stable_across_processes() -> None:
    trial = TrialConfig.from_dict(GOLDEN)
    assert trial.trial_id == "5c384f02383e"  # changing this invalidates every stored run
    code = ("import json,sys; from scalelaw.sweep import TrialConfig; "
            "print(TrialConfig.from_dict(json.loads(sys.argv[1])).trial_id)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(GOLDEN)], check=True,
                         capture_output=True, text=True, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == trial.trial_id


def test_ids_ignore_yaml_key_order_and_sweep_name(tmp_path) -> None:
    reordered = {k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v)
                 for k, v in reversed(list(BASE.items()))}
    reordered["name"] = "other"
    paths = []
    for i, spec in enumerate((BASE, reordered)):
        paths.append(tmp_path / f"s{i}.yaml")
        paths[-1].write_text(yaml.safe_dump(spec, sort_keys=False))
    a, b = (load_spec(p) for p in paths)
    assert sorted(t.trial_id for t in a.trials()) == sorted(t.trial_id for t in b.trials())
    assert {t.sweep_name for t in b.trials()} == {"other"}
    # equal values written differently (int vs float, 1e-3 vs 0.001) give equal ids
    c = load_spec(spec_with(optimizer={"lr": 0.001}, train={"tokens": 16384.0}))
    assert [t.trial_id for t in c.trials()] == [t.trial_id for t in a.trials()]


def test_groups_partition_members_differing_only_in_scalars() -> None:
    spec = load_spec(spec_with(sweep={
        "model.width": [32, 64], "optimizer.lr": [1e-3, 2e-3], "train.seed": [0, 1],
        "parametrization.output_mult": [1.0, 2.0], "train.batch_size": [2, 4],
        "schedule.warmup_tokens": [0, 500],
    }))
    groups = spec.groups()
    assert len(groups) == 4 and all(len(g) == 16 for g in groups)
    assert sum(len(g) for g in groups) == len(spec.trials())

    def shape_part(t: TrialConfig) -> dict:
        config = t.config_dict()
        for path in SCALAR_PATHS:
            section, name = path.split(".")
            config[section].pop(name, None)  # a schedule kind has only its own constants
        return config

    for g in groups:
        assert all(shape_part(t) == shape_part(g.config) for t in g.trials)
        assert set(g.varying()) == {"optimizer.lr", "train.seed", "parametrization.output_mult",
                                    "schedule.warmup_tokens"}
    parts = [shape_part(g.config) for g in groups]
    assert all(parts[i] != parts[j] for i in range(4) for j in range(i))


def test_json_round_trip() -> None:
    specs = [spec_with(sweep={"train.tokens_per_param": [1, 2], "train.seed": [0, 3]}),
             spec_with(data={"source": "tokens", "path": "x.bin", "vocab": 300},
                       model={"vocab": 320}, schedule={"name": "power", "decay_fraction": 0.1,
                                                       "warmup_tokens": 0},
                       sweep={"optimizer.lr": DELETE, "schedule.a": [2.0, 4.0]}),
             spec_with(model={"family": "mlp", "width": 64, "depth": 1, "d_in": 8, "d_out": 2,
                              "head_dim": DELETE, "context": DELETE})]
    for raw in specs:
        for trial in load_spec(raw).trials():
            again = TrialConfig.from_json(trial.to_json())
            assert again == trial and again.trial_id == trial.trial_id
            assert again.group_id == trial.group_id and again.swept == trial.swept
            assert json.loads(again.to_json(indent=2)) == json.loads(trial.to_json())
    tampered = json.loads(trial.to_json()) | {"trial_id": "000000000000"}
    with pytest.raises(ConfigError, match="trial_id"):
        TrialConfig.from_dict(tampered)


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_repo_sweeps_load(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem and len(spec.trials()) >= 1
    assert spec.summary()["flops"] > 0


def test_repo_has_the_documented_sweeps() -> None:
    names = {p.stem for p in (REPO / "sweeps").glob("*.yaml")}
    assert {"quickstart_cpu", "mup_transfer_cpu", "tpu_pod_example"} <= names
    quick = load_spec(REPO / "sweeps" / "quickstart_cpu.yaml")
    assert len(quick.trials()) == 18 and len(quick.groups()) == 3
    transfer = load_spec(REPO / "sweeps" / "mup_transfer_cpu.yaml")
    assert {t.parametrization.name for t in transfer.trials()} == {"mup", "sp"}


# ----------------------------------------------------------------------------- YAML
def test_yaml_numbers_and_errors(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: y\ntrain: {tokens: 2e5, batch_size: 4}\noptimizer: {lr: 3e-3}\n")
    (trial,) = load_spec(good).trials()
    assert trial.optimizer.lr == 3e-3 and trial.train.tokens == 200000
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: y\nmodel: {width: 64\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML at line \d+"):
        load_spec(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: y\nmodel:\n  width: 64\n  width: 32\n")
    with pytest.raises(ConfigError, match="width: duplicate key at line 4"):
        load_spec(dup)
    with pytest.raises(ConfigError, match="missing.yaml: no such spec file"):
        load_spec(tmp_path / "missing.yaml")


# ----------------------------------------------------------------------------- malformed
MALFORMED = [
    (dict(modle={"width": 3}), "modle"),
    (dict(name=DELETE), "name"),
    (dict(name="has space"), "name"),
    (dict(model=64), "model"),
    (dict(model={"widht": 64}), "model.widht"),
    (dict(model={"width": "64"}), "model.width"),
    (dict(model={"width": True}), "model.width"),
    (dict(sweep={"model.width": [32, -64]}), "sweep['model.width'][1]"),
    (dict(model={"depth": 0}), "model.depth"),
    (dict(sweep={"model.width": [32, 60]}), "sweep['model.width'][1]"),
    (dict(sweep=DELETE, model={"width": 60}), "model.width"),
    (dict(model={"family": "mlp"}), "model.head_dim"),
    (dict(model={"vocab": 100}), "model.vocab"),
    (dict(parametrization={"name": "ntk"}), "parametrization.name"),
    (dict(parametrization={"weight_decay_rule": "big"}), "parametrization.weight_decay_rule"),
    (dict(parametrization={"completep_alpha": 2.0}), "parametrization.completep_alpha"),
    (dict(optimizer={"lr": 0}), "optimizer.lr"),
    (dict(optimizer={"lr": -1e-3}), "optimizer.lr"),
    (dict(optimizer={"b1": 1.0}), "optimizer.b1"),
    (dict(sweep={"optimizer.lr": [1e-3, -1.0]}), "sweep['optimizer.lr'][1]"),
    (dict(schedule={"name": "linear"}), "schedule.name"),
    (dict(schedule={"name": "constant"}), "schedule.decay_fraction"),
    (dict(schedule={"name": "power", "decay": "sqrt"}), "schedule.decay"),
    (dict(schedule={"warmup_tokens": 1e6}), "schedule.warmup_tokens"),
    (dict(data={"source": "web"}), "data.source"),
    (dict(data={"source": "tokens", "path": "x.bin"}), "data.vocab"),
    (dict(data={"source": "text"}), "data.paths"),
    (dict(data={"shuffle": True}), "data.shuffle"),
    (dict(train={"batch_size": 0}), "train.batch_size"),
    (dict(train={"tokens": -5}), "train.tokens"),
    (dict(train={"tokens": 64}), "train.tokens"),
    (dict(train={"tokens": DELETE}), "train.tokens"),
    (dict(train={"tokens_per_param": 20}), "train.tokens_per_param"),
    (dict(train={"eval_every": 2.5}), "train.eval_every"),
    (dict(sweep=[1, 2]), "sweep"),
    (dict(sweep={"model.width": []}), "sweep['model.width']"),
    (dict(sweep={"model.width": 64}), "sweep['model.width']"),
    (dict(sweep={"model.widht": [64]}), "sweep['model.widht']"),
    (dict(sweep={"modle.width": [64]}), "sweep['modle.width']"),
    (dict(sweep={"width": [64]}), "sweep['width']"),
    (dict(sweep={"model.width": [32, 64, 32]}), "sweep['model.width'][2]"),
    (dict(sweep={"optimizer.lr": {"log2_range": [-12, -4], "num": 0}}),
     "sweep['optimizer.lr'].num"),
    (dict(sweep={"optimizer.lr": {"log2_range": [-4, -12], "num": 3}}),
     "sweep['optimizer.lr'].log2_range"),
    (dict(sweep={"optimizer.lr": {"log_uniform": [0, 1], "num": 3}}),
     "sweep['optimizer.lr'].log_uniform"),
    (dict(sweep={"optimizer.lr": {"log2_range": [-4, -2], "values": [1], "num": 2}}),
     "sweep['optimizer.lr']"),
    (dict(sweep={"optimizer.lr": {"log2_range": [-4, -2], "num": 2, "seed": 1}}),
     "sweep['optimizer.lr'].seed"),
    (dict(sweep={"model.width": DELETE, "zip": {"model.width": [32, 64], "train.seed": [1]}}),
     "sweep.zip"),
    (dict(sweep={"zip": {"model.width": [32, 64], "train.seed": [1, 2]}}), "sweep['model.width']"),
    (dict(sweep={"zip": []}), "sweep.zip"),
    (dict(overrides={"when": {}}), "overrides"),
    (dict(overrides=[{"when": {"model.width": 64}, "sett": {}}]), "overrides[0].sett"),
    (dict(overrides=[{"when": {"model.width": 64}}]), "overrides[0].set"),
    (dict(overrides=[{"when": {"model.widht": 64}, "set": {"train.seed": 1}}]),
     "overrides[0].when['model.widht']"),
    (dict(overrides=[{"when": {"model.width": 64}, "set": {"train.batch_size": 0}}]),
     "overrides[0].set['train.batch_size']"),
    (dict(overrides=[{"when": {"model.width": 64}, "set": {"model.head_dim": 48}}]),
     "sweep['model.width'][1]"),
    (dict(description=3), "description"),
]


@pytest.mark.parametrize(("patch", "field"), MALFORMED, ids=[f for _, f in MALFORMED])
def test_malformed_spec_names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(spec_with(**patch))
    first, *others = str(info.value).splitlines()  # one line per problem
    assert first.startswith(field + ":"), first
    assert len(first) > len(field) + 10  # says what is allowed
    for line in others:  # e.g. model.family: mlp refuses both head_dim and context
        assert line.startswith(("model.", "sweep[")) and ": " in line, line


def test_cross_field_errors_name_the_trial() -> None:
    patch = dict(overrides=[{"when": {"model.width": 64}, "set": {"model.head_dim": 48}}])
    with pytest.raises(ConfigError) as info:
        load_spec(spec_with(**patch))
    message = str(info.value)
    assert "divisible by head_dim=48" in message and "model.width=64" in message
    assert "overrides[0].set['model.head_dim']" in message


# ----------------------------------------------------------------------------- golden ids
GOLDEN_IDS = json.loads((Path(__file__).parent / "golden_ids.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN_IDS["sweeps"]))
def test_shipped_sweeps_keep_their_trial_ids(name: str) -> None:
    """Ids of the shipped specs as computed before the typed-configs rewrite."""
    spec = load_spec(REPO / "sweeps" / f"{name}.yaml")
    assert [[t.trial_id, t.group_id] for t in spec.trials()] == GOLDEN_IDS["sweeps"][name]


def test_committed_sweep_results_are_recognised() -> None:
    """Every trial of data/mup_transfer_cpu is a trial of its spec today."""
    import pandas as pd

    runs = pd.read_parquet(REPO / "data" / "mup_transfer_cpu" / "results.parquet")
    ids = {t.trial_id for t in load_spec(REPO / "sweeps" / "mup_transfer_cpu.yaml").trials()}
    assert set(runs.trial_id) <= ids and len(set(runs.trial_id)) == 100


@pytest.mark.parametrize("case", GOLDEN_IDS["configs"], ids=lambda c: c["trial_id"])
def test_varied_configs_keep_their_ids(case: dict[str, Any]) -> None:
    """Every section and field kind (power schedule, token files, MLP, CompleteP, ...)."""
    trial = TrialConfig.from_dict(case["config"])
    assert (trial.trial_id, trial.group_id) == (case["trial_id"], case["group_id"])
    again = TrialConfig.from_json(trial.to_json())
    assert again == trial and again.trial_id == case["trial_id"]
    stored = TrialConfig.from_dict(case["stored_json"])  # a config.json written before
    assert stored == trial


@pytest.mark.parametrize("text", ["1e-3", "1.0e-3", ".001", "1E-3", "0.001", "+1e-3"])
def test_yaml_float_spellings(tmp_path, text: str) -> None:
    """Every YAML spelling of a float reads as that float (plain PyYAML reads 1e-3 as str)."""
    path = tmp_path / "s.yaml"
    path.write_text("name: y\ntrain: {tokens: 2.0e5, batch_size: 4}\n"
                    f"optimizer: {{lr: {text}}}\n")
    (trial,) = load_spec(path).trials()
    assert trial.optimizer.lr == 1e-3 and trial.train.tokens == 200000


def test_mesh_block_is_typed_and_never_changes_trial_ids(tmp_path) -> None:
    from scalelaw.sweep.spec import load_mesh
    from scalelaw.train.mesh_config import MeshConfig

    plain = load_spec(BASE)
    assert plain.mesh.automatic
    meshed = load_spec(spec_with(mesh={"members": 2, "data": 2}))
    assert meshed.mesh == MeshConfig(members=2, data=2)
    assert [t.trial_id for t in meshed.trials()] == [t.trial_id for t in plain.trials()]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec_with(mesh={"members": 4})))
    assert load_mesh(path) == MeshConfig(members=4)
    with pytest.raises(ConfigError,
                       match=r"^mesh\.data: must be a positive integer \(or null\), got 0$"):
        load_spec(spec_with(mesh={"data": 0}))
    with pytest.raises(ConfigError, match=r"^mesh\.hosts: unknown key"):
        load_spec(spec_with(mesh={"hosts": 2}))
