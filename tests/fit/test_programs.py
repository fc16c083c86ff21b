"""Tests for scalelaw.fit.programs: the on-disk cache of exported fit programs."""

import numpy as np
import pandas as pd
import pytest

from scalelaw.fit import programs as _programs
from scalelaw.fit import solver
from scalelaw.fit.fit_law import fit_law
from scalelaw.fit.laws import Law, get_law, logsumexp3
from scalelaw.fit.programs import export_cache, export_cache_dir

GRID = {"a": [5.0, 10.0], "b": [5.0, 10.0], "e": [0.0, 0.5], "alpha": [0.5], "beta": [0.5]}

needs_export = pytest.mark.skipif(not _programs._exportable(get_law("chinchilla")),
                                  reason="jax.export serialisation needs flatbuffers")


def table(noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(2e8, 2e11, 6)))
    L = 1.8 + 400 / N**0.34 + 2000 / D**0.37
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(noise * rng.standard_normal(N.size))})


@pytest.fixture
def fresh(monkeypatch):
    """An empty in-process program cache, as in a new process (restored afterwards)."""
    monkeypatch.setattr(_programs, "_COMPILED", {})


def test_off_by_default_and_scoped(tmp_path):
    assert export_cache_dir() is None
    with export_cache(tmp_path):
        assert export_cache_dir() == tmp_path
    assert export_cache_dir() is None


@needs_export
def test_programs_written_then_loaded_without_tracing(tmp_path, fresh, monkeypatch):
    plain = fit_law(table(), init_grid=GRID, bootstrap=20, seed=3)
    with export_cache(tmp_path):
        first = fit_law(table(), init_grid=GRID, bootstrap=20, seed=3)
    kinds = sorted(p.name.split("-")[0] for p in tmp_path.glob("*/*.jaxexport"))
    assert kinds[0] == "multistart" and "refits" in kinds and "whitening" in kinds
    assert first.objective == pytest.approx(plain.objective, rel=1e-12)
    for k, v in plain.samples.items():
        np.testing.assert_allclose(first.samples[k], v, rtol=1e-9)

    # a "new process": nothing in memory, and the solver programs cannot be traced
    monkeypatch.setattr(_programs, "_COMPILED", {})
    for name in ("multistart", "refits", "full_data_whitening"):
        monkeypatch.setattr(solver, name, _no_tracing)
    with export_cache(tmp_path):
        again = fit_law(table(), init_grid=GRID, bootstrap=20, seed=3)
    assert again.objective == first.objective and again.samples == first.samples
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")  # no disk caches at all
    with pytest.raises(AssertionError, match="traced"):  # the same call, uncached, traces
        fit_law(table(), init_grid=GRID)


def _no_tracing(*args, **kwargs):
    raise AssertionError("traced although the exported program was on disk")


@needs_export
def test_other_shapes_and_settings_get_their_own_program(tmp_path, fresh):
    with export_cache(tmp_path):
        fit_law(table(), init_grid=GRID)
        fit_law(table().head(30), init_grid=GRID)  # other row count
        fit_law(table(), init_grid=GRID, tol=1e-10)  # other static setting
    assert len(list(tmp_path.glob("*/multistart-*.jaxexport"))) == 3


@needs_export
def test_corrupt_file_is_replaced(tmp_path, fresh, monkeypatch):
    with export_cache(tmp_path):
        ref = fit_law(table(), init_grid=GRID)
    (path,) = tmp_path.glob("*/multistart-*.jaxexport")
    path.write_bytes(b"not a program")
    monkeypatch.setattr(_programs, "_COMPILED", {})
    with export_cache(tmp_path):
        again = fit_law(table(), init_grid=GRID)
    assert again.objective == ref.objective
    assert path.stat().st_size > 1000


@needs_export
def test_user_laws_are_not_exported(tmp_path, fresh):
    def form(p, x):
        import jax.numpy as jnp

        return logsumexp3(p["a"] - p["alpha"] * jnp.log(x["N"]),
                          p["b"] - p["beta"] * jnp.log(x["D"]), p["e"])

    law = Law("user_chinchilla", ("a", "b", "e", "alpha", "beta"), form, ("N", "D"), GRID,
              log_params={"a": "A", "b": "B", "e": "E"})
    with export_cache(tmp_path):
        res = fit_law(table(), law)
    assert res.objective == pytest.approx(fit_law(table(), init_grid=GRID).objective, rel=1e-8)
    assert list(tmp_path.iterdir()) == []


def test_cli_and_cache_modules_do_not_import_jax():
    import subprocess
    import sys

    code = ("import sys, scalelaw.cli, scalelaw.fit.programs; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'optimistix')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_export
def test_a_failing_export_falls_back_to_the_plain_program(tmp_path, fresh, monkeypatch):
    from jax import export

    def broken(*args, **kwargs):
        raise RuntimeError("cannot serialise here")

    monkeypatch.setattr(export, "export", broken)
    plain = fit_law(table(), init_grid=GRID)
    with export_cache(tmp_path):
        cached = fit_law(table(), init_grid=GRID)
    assert cached.objective == pytest.approx(plain.objective, rel=1e-12)
    assert not any(tmp_path.iterdir())


@needs_export
def test_programs_of_another_code_version_are_pruned(tmp_path, fresh):
    stale = tmp_path / ("0" * 16)
    stale.mkdir()
    (stale / "multistart-old.jaxexport").write_bytes(b"x")
    with export_cache(tmp_path):
        fit_law(table(), init_grid=GRID)
    (current,) = tmp_path.iterdir()
    assert current.name == _programs._fingerprint()[:16] and any(current.iterdir())


def test_a_replaced_builtin_law_is_not_exported():
    import dataclasses

    law = get_law("chinchilla")
    assert not _programs._exportable(dataclasses.replace(law, bounds={}))


def _fit_in_fresh_process(env: dict) -> None:
    import os
    import subprocess
    import sys

    code = ("import numpy as np, pandas as pd; from scalelaw.fit.fit_law import fit_law; "
            "N, D = np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e9, 1e11, 4)); "
            "L = 1.8 + 400 / N**0.34 + 2000 / D**0.37; "
            "fit_law(pd.DataFrame({'N': N.ravel(), 'D': D.ravel(), 'loss': L.ravel()}), "
            "keep=2); from scalelaw.fit.programs import export_cache_dir; "
            "assert export_cache_dir() is None")  # scoped to the fit
    base = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    subprocess.run([sys.executable, "-c", code], env={**base, **env}, check=True, timeout=300)


@pytest.mark.slow
def test_the_api_keeps_its_programs_in_the_machine_cache(tmp_path) -> None:
    """A fit from Python (a fresh kernel) uses the persistent compilation cache and the
    exported programs, as the CLI does; ``JAX_COMPILATION_CACHE_DIR=""`` turns both off."""
    _fit_in_fresh_process({"XDG_CACHE_HOME": str(tmp_path / "on")})
    exported = tmp_path / "on" / "scalelaw" / "jax" / "scalelaw-exported"
    assert exported.is_dir() and any(exported.rglob("*"))
    _fit_in_fresh_process({"XDG_CACHE_HOME": str(tmp_path / "off"),
                           "JAX_COMPILATION_CACHE_DIR": ""})
    assert not (tmp_path / "off").exists()
