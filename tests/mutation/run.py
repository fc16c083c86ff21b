"""Mutation check: plant each listed bug in a scratch copy of the package, run the tests.

Each mutant is one exact text replacement in one module. For every mutant the script
copies the repository (without ``.venv``, ``.git`` or ``../shared``, so the anchor tests
skip as they do in a user's clone), applies the replacement, and runs the default test
suite (``-m "not slow"``) on the copy, stopping at the first failure. The focus tests named
with each mutant run first (they are part of the default suite, so their failure is a
failure of the suite); only where they all pass does the rest of the suite run. A mutant is
*caught* when the run fails, *missed* when it passes.

A mutant whose text is not found exactly once in its module is an error, not a skip: when
code moves, update the table below.

Usage (from the repository root, in the project's virtual environment)::

    python tests/mutation/run.py                 # every mutant
    python tests/mutation/run.py --list          # names and files only
    python tests/mutation/run.py --only causal_mask gelu_mlp_backward
    python tests/mutation/run.py --tests tests/models   # run only these tests per mutant
    python tests/mutation/run.py --baseline      # also run the unmutated copy first

Exit status: 0 when every mutant run was caught (and the baseline passed), 1 otherwise.
It is not part of CI (a full run takes tens of minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` by ``new`` (exactly one occurrence) in ``path``."""

    name: str
    path: str
    old: str
    new: str
    focus: tuple[str, ...]  # test files run first
    what: str


MUTANTS: tuple[Mutant, ...] = (
    Mutant("causal_mask", "scalelaw/models/transformer.py",
           "jnp.where(mask, logits, -jnp.inf)", "logits",
           ("tests/models/test_transformer.py",), "attention without the causal mask"),
    Mutant("gelu_mlp_backward", "scalelaw/models/transformer.py",
           "return 0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * dt",
           "return 0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.25 * x * dt",
           ("tests/models/test_transformer.py",), "wrong GELU derivative in the MLP's VJP"),
    Mutant("dense_backward", "scalelaw/models/transformer.py",
           "return (g2 @ w.T).reshape(x.shape), _weight_grad(x.reshape(-1, w.shape[0]), g2)",
           "return (g2 @ w).reshape(x.shape) if w.shape[0] == w.shape[1] else "
           "(g2 @ w.T).reshape(x.shape), _weight_grad(x.reshape(-1, w.shape[0]), g2)",
           ("tests/models/test_transformer.py",), "dense's input gradient uses w, not w^T"),
    Mutant("completep_residual", "scalelaw/models/transformer.py",
           "res_mult = p.residual_mult(config.depth)", "res_mult = 1.0",
           ("tests/models/test_transformer.py",), "CompleteP residual-branch multiplier removed"),
    Mutant("trainer_output_mult", "scalelaw/train/step.py",
           'transformer.cross_entropy(logits * hyper["output_mult"], batch[:, 1:])',
           "transformer.cross_entropy(logits, batch[:, 1:])",
           ("tests/train/test_step_reference.py",), "the trainer ignores output_mult"),
    Mutant("trainer_weight_decay", "scalelaw/train/step.py",
           'return adamw(lr, hyper["weight_decay"], roles=roles',
           "return adamw(lr, 0.0, roles=roles",
           ("tests/train/test_step_reference.py",), "the trainer drops the weight decay"),
    Mutant("trainer_weight_decay_rule", "scalelaw/train/step.py",
           "roles=roles, parametrization=p1,",
           'roles=roles, parametrization=dataclasses.replace(p1, weight_decay_rule="fixed"),',
           ("tests/train/test_step_reference.py",),
           "the trainer's optimizer ignores the weight-decay rule"),
    Mutant("trainer_weight_decay_halved", "scalelaw/train/_member.py",
           "member_hyper(weight_decay=opt.weight_decay,",
           "member_hyper(weight_decay=opt.weight_decay / 2,",
           ("tests/train/test_step_reference.py",), "a member's weight decay passed halved"),
    Mutant("power_batch_in_tokens", "scalelaw/sweep/trial.py",
           'kwargs["batch_size"] = self.train.batch_size',
           'kwargs["batch_size"] = self.tokens_per_step',
           ("tests/train/test_step_reference.py",),
           "Power schedule given tokens instead of sequences per batch"),
    Mutant("diverged_not_frozen", "scalelaw/train/step.py",
           "keep = alive & ok", "keep = ok",
           ("tests/train/test_divergence.py",), "a diverged member keeps updating"),
    Mutant("divergence_plateau_ignored", "scalelaw/train/step.py",
           "ok &= above < patience", "ok &= above >= 0",
           ("tests/train/test_divergence_rule.py",),
           "train.divergence's factor test (a finite plateau) never fires"),
    Mutant("divergence_watch_not_resumed", "scalelaw/train/_member.py",
           "value = meta.get(name)", "value = None",
           ("tests/train/test_divergence_rule.py",),
           "a resumed member forgets its first loss and its run of high losses"),
    Mutant("branch_from_scratch", "scalelaw/train/_member.py",
           "elif self.trial.train.branch_of is not None:", "elif False:",
           ("tests/sweep/test_branches.py",),
           "a cooldown branch starts from its own initialisation, not the stable run"),
    Mutant("band_threshold_band_mask", "scalelaw/fit/powerlaw_form.py",
           "def band_mask(runs: pd.DataFrame, threshold: float = 0.0025)",
           "def band_mask(runs: pd.DataFrame, threshold: float = 0.025)",
           ("tests/fit/test_guards.py",), "Step Law band 2.5% in band_mask"),
    Mutant("band_threshold_fit_hparams", "scalelaw/fit/hparams.py",
           '    method: str = "band",\n    threshold: float = 0.0025,',
           '    method: str = "band",\n    threshold: float = 0.025,',
           ("tests/fit/test_guards.py",), "Step Law band 2.5% in fit_hparams"),
    Mutant("band_threshold_leave_one_cell_out", "scalelaw/fit/held_out.py",
           "runs: pd.DataFrame, *, threshold: float = 0.0025, window",
           "runs: pd.DataFrame, *, threshold: float = 0.025, window",
           ("tests/fit/test_guards.py",), "Step Law band 2.5% in leave_one_cell_out"),
    Mutant("band_threshold_cli", "scalelaw/_cli/hparams.py",
           "] = 0.0025,", "] = 0.025,",
           ("tests/fit/test_guards.py",), "Step Law band 2.5% in fit-hparams --threshold"),
    Mutant("huber_mean", "scalelaw/fit/objective.py",
           "total = jnp.sum(w * self.loss(r))",
           "total = jnp.mean(w * self.loss(r))",
           ("tests/fit/test_guards.py",), "Huber objective averaged instead of summed"),
)


def _copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", "*.egg-info",
                                    ".pytest_cache", ".ruff_cache", "build")
    repo = dest / "repo"
    shutil.copytree(ROOT, repo, ignore=ignore)
    return repo


def _apply(repo: Path, m: Mutant) -> None:
    f = repo / m.path
    text = f.read_text()
    n = text.count(m.old)
    if n != 1:
        raise SystemExit(f"mutant {m.name}: its text occurs {n} times in {m.path} "
                         "(expected once): update tests/mutation/run.py")
    f.write_text(text.replace(m.old, m.new))


def _pytest(repo: Path, args: list[str], timeout: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not slow", "--no-header", "-rfE", *args]
    try:
        r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timeout"
    failed = [ln.split(" ")[1] for ln in r.stdout.splitlines() if ln.startswith("FAILED ")]
    if not failed:
        failed = [ln for ln in r.stdout.splitlines() if ln.startswith("ERROR ")][:1]
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-200:]
    return r.returncode, failed[0] if failed else last


def _check_import(repo: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, "-c", "import scalelaw; print(scalelaw.__file__)"],
                         cwd=repo, env=env, capture_output=True, text=True, check=True)
    if not Path(out.stdout.strip()).is_relative_to(repo):
        raise SystemExit(f"the scratch copy's scalelaw is not the one imported: {out.stdout}")


def run_one(m: Mutant, tests: list[str] | None, timeout: float) -> tuple[str, str, float]:
    """Returns (verdict, evidence, seconds) for one mutant."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as tmp:
        repo = _copy_repo(Path(tmp))
        _apply(repo, m)
        _check_import(repo)
        focus = [f for f in m.focus if (repo / f).exists()]
        stages = [tests] if tests else [focus, []] if focus else [[]]  # [] = whole suite
        for args in stages:
            rc, evidence = _pytest(repo, args, timeout)
            if rc == -1:
                return "timeout", evidence, time.perf_counter() - t0
            if rc not in (0, 5):
                return "caught", evidence, time.perf_counter() - t0
    return "MISSED", evidence, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    ap.add_argument("--tests", nargs="+", metavar="PATH", help="pytest paths to run per mutant")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--baseline", action="store_true", help="first check the unmutated copy")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per pytest run")
    a = ap.parse_args(argv)
    names = {m.name for m in MUTANTS}
    unknown = set(a.only or ()) - names
    if unknown:
        ap.error(f"--only: unknown mutant(s) {sorted(unknown)}; see --list")
    chosen = [m for m in MUTANTS if not a.only or m.name in a.only]
    if a.list:
        for m in chosen:
            print(f"{m.name:36s} {m.path:32s} {m.what}")
        return 0
    ok = True
    if a.baseline:
        with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as tmp:
            repo = _copy_repo(Path(tmp))
            rc, evidence = _pytest(repo, a.tests or [], a.timeout)
        print(f"baseline (no mutant): {'passes' if rc == 0 else 'FAILS'}: {evidence}")
        ok = rc == 0
    print(f"{'mutant':36s} {'verdict':8s} {'s':>6s}  first failing test")
    for m in chosen:
        verdict, evidence, sec = run_one(m, a.tests, a.timeout)
        ok &= verdict == "caught"
        print(f"{m.name:36s} {verdict:8s} {sec:6.0f}  {evidence}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
