"""The CLI as a whole: registration, help text, --version, and errors that name their flag."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import typer.main

from scalelaw import cli
from scalelaw.cli import app, cli_flags, flag_message, main

REPO = Path(__file__).resolve().parents[1]
CLI_FILES = sorted((REPO / "scalelaw" / "_cli").glob("*.py")) + [REPO / "scalelaw" / "cli.py"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def commands() -> list[tuple[str, ...]]:
    """Every command path, e.g. ("sweep", "run")."""
    out: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out.append(path)
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def test_every_command_is_registered_explicitly() -> None:
    source = (REPO / "scalelaw" / "cli.py").read_text()
    assert "pkgutil" not in source and "import_module" not in source
    assert set(commands()) == {("fit",), ("fit-isoflop",), ("fit-hparams",), ("recommend",),
                               ("coord-check",), ("score-laws",),
                               ("sweep", "plan"), ("sweep", "run"), ("sweep", "status"),
                               ("sweep", "recommend"), ("sweep", "collect")}
    for path in CLI_FILES:  # no commands defined as closures inside register()
        assert "def register(" not in path.read_text(), path


def test_no_cli_module_imports_a_private_name() -> None:
    for path in CLI_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("scalelaw") and \
                    not node.module.startswith("scalelaw._cli"):  # the CLI's own helpers
                private_module = any(p.startswith("_") and p != "_cli"
                                     for p in node.module.split("."))
                names = [a.name for a in node.names if a.name.startswith("_")]
                assert not private_module and not names, (path.name, node.module, names)


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_help_is_plain_and_complete(path: tuple[str, ...], capsys) -> None:
    code, out, _ = run([*path, "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out and "``" not in out and ":func:" not in out, out
    assert "..." not in out, out  # no cut lists or cut summaries
    if path[-1] in ("fit", "fit-hparams", "recommend", "coord-check", "score-laws", "plan",
                    "status", "run", "collect"):
        assert "--json" in out, path


def test_law_choices_in_help_are_the_registry() -> None:
    """The built-in laws (a fresh process: tests may register laws of their own)."""
    import subprocess
    import sys

    from scalelaw._cli.fit import LAWS_HELP

    code = "from scalelaw.fit.laws import list_laws; print(','.join(list_laws()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert LAWS_HELP.split(", ") == out.split(",")


def test_version(capsys) -> None:
    from importlib.metadata import version

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"scalelaw {version('scalelaw')}"


def test_flag_names_do_not_conflict() -> None:
    """An API argument maps to one option across commands."""
    seen: dict[str, set[str]] = {}

    def walk(cmd: object) -> None:
        for param in getattr(cmd, "params", ()):
            seen.setdefault(param.name, set()).update(
                o for o in param.opts if o.startswith("--"))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not clashes
    assert cli_flags()["drop_top"] == "--drop-top" and cli_flags()["n_params"] == "--params"
    assert flag_message("width: bad\nmodel.width: bad") == "--width: bad\nmodel.width: bad"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = np.repeat([1e7, 3e7, 1e8], 4)
    d = np.tile([1e9, 3e9, 1e10, 3e10], 3)
    loss = 1.7 + 400 / n**0.34 + 410 / d**0.28 + rng.normal(0, 0.005, n.size)
    path = tmp_path_factory.mktemp("t") / "runs.csv"
    lr, bs = np.tile([1e-3, 2e-3, 4e-3], 4), np.repeat([64, 128, 256, 512], 3)
    pd.DataFrame({"N": n, "D": d, "loss": loss, "lr": lr, "bs": bs}).to_csv(path, index=False)
    return path


def bad_invocations(table: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, the flag its error must name) for a bad value of each kind of option."""
    t = str(table)
    return [
        (["fit", t, "--drop-top", "100"], "--drop-top"),
        (["fit", t, "--bootstrap", "1"], "--bootstrap"),
        (["fit", t, "--holdout-above", "1e20"], "--holdout-above"),
        (["fit", t, "--law", "nope"], "--law"),
        (["fit", t, "--plot", str(tmp / "x.gif")], "--plot"),
        (["fit", t, "--save", str(tmp / "missing" / "f.json")], "--save"),
        (["fit", t, "--loss", "nope"], "nope"),
        (["fit-hparams", t, "--method", "grid"], "--method"),
        (["recommend", "--params", "-5", "--tokens", "1e9"], "--params"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--source", "x"], "--source"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--parametrization", "mupp",
          "--width", "512", "--base-width", "64"], "--parametrization"),
        (["recommend", "--params", "1e9", "--tokens", "1e9", "--seq-len", "0"], "--seq-len"),
        (["coord-check", "--widths", "64"], "--widths"),
        (["coord-check", "--model", "cnn"], "--model"),
        (["coord-check", "--parametrization", "ntk"], "--parametrization"),
        (["sweep", "run", str(REPO / "sweeps" / "quickstart_cpu.yaml"), "--out",
          str(tmp / "o"), "--mode", "fast"], "--mode"),
        (["sweep", "collect", str(tmp / "nothing")], "nothing"),
    ]


def test_every_cli_error_names_its_flag(table, tmp_path, capsys) -> None:
    for argv, flag in bad_invocations(table, tmp_path):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, err)
        lines = err.splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), (argv, err)
        assert flag in lines[0], (argv, err)
        assert "Traceback" not in err and out == "", (argv, err)
        named = re.match(r"error: ([a-z_]+)(\.| |:)", lines[0])
        assert not named or named.group(1) not in cli_flags() or "-" in named.group(1), \
            (argv, err)  # an API argument name left untranslated


def test_sweep_run_and_collect_report_json(tmp_path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: j\nmodel: {width: 32, depth: 1, head_dim: 16, context: 16}\n"
                    "parametrization: {name: mup, base_width: 32}\n"
                    "train: {tokens: 1024, batch_size: 4, eval_every: 16, eval_tokens: 128}\n"
                    "sweep: {optimizer.lr: [1.0e-3, 2.0e-3]}\n")
    out_dir = tmp_path / "out"
    code, out, _ = run(["sweep", "run", str(spec), "--out", str(out_dir), "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["states"] == {"done": 2} and summary["exit_code"] == 0
    assert summary["trained_groups"] == 1 and summary["interrupted"] is False
    code, out, _ = run(["sweep", "collect", str(out_dir), "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["finished"] and report["trials_with_rows"] == 2
    assert Path(report["path"]) == out_dir / "results.parquet"


def test_main_module_has_no_logic_of_its_own() -> None:
    """cli.py registers commands and translates errors: every command lives in _cli."""
    tree = ast.parse(Path(cli.__file__).read_text())
    defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert defs <= {"package_version", "_show_version", "_root", "cli_flags", "flag_message",
                    "main", "_lines"}
