"""``scalelaw sweep plan | run | status | recommend | collect``.

``plan``, ``status`` and ``collect`` do not import JAX (``plan`` does once, to measure
and cache the matmul peak); ``run`` imports the trainer inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelaw._cli._common import print_json

sweep_app = typer.Typer(help="Plan, run, inspect and collect sweeps (see sweeps/*.yaml).",
                        no_args_is_help=True, rich_markup_mode=None)

OutDir = Annotated[str, typer.Option(
    "--out", help="Sweep directory (created if missing): a local folder or a URL "
                  "(s3://bucket/path, gs://bucket/path, any fsspec URL).")]
SweepDir = Annotated[str, typer.Argument(
    help="Sweep directory (--out of run): a local folder or a URL.")]


def _spec(path: Path):  # noqa: ANN202
    from scalelaw.sweep import load_spec

    return load_spec(path)


def fmt_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 m 05 s"``, ``"2 h 07 m"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} m {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} m"


def si(x: float) -> str:
    """``"786k"``, ``"3.3T"``: three significant digits with an SI prefix."""
    for power, prefix in ((24, "Y"), (21, "Z"), (18, "E"), (15, "P"), (12, "T"), (9, "G"),
                          (6, "M"), (3, "k")):
        if abs(x) >= 10**power:
            return f"{x / 10**power:.3g}{prefix}"
    return f"{x:.3g}"


# ----------------------------------------------------------------------------- plan
@sweep_app.command("plan")
def plan_cmd(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (.yaml).")],
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Time a few real steps per group shape instead of the model.")] = False,
    mode: Annotated[str, typer.Option(
        help="How members run: auto, vmap or sequential (also for --calibrate).")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Groups, trials, FLOPs and the estimated wall time.

    The time is estimated for this machine (its measured matmul peak), or measured with
    --calibrate.
    """
    from scalelaw.sweep.plan import group_table, plan

    loaded = _spec(spec)
    calibration = None
    if calibrate:
        _jax_cache()
        from scalelaw.sweep.plan import calibrate as run_calibration

        calibration = run_calibration(loaded, mode=mode)
    result = plan(loaded, calibration=calibration, mode=mode)
    if json_out:
        print_json({"name": result.name, "method": result.method, "note": result.note,
                    "peak_flops": result.peak_flops, "trials": result.trials,
                    "tokens": result.tokens, "flops": result.flops, "seconds": result.seconds,
                    "backend": result.backend, "devices": result.devices,
                    "device_kind": result.device_kind, "hosts": result.hosts,
                    "mode": result.mode, "executor": loaded.executor.to_dict(),
                    "mesh": loaded.mesh.to_dict(), "groups": group_table(result)})
        return
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    table = Table(title=f"sweep {result.name}: {len(result.groups)} groups, "
                        f"{result.trials} trials")
    for name in ("#", "shape", "trials", "varying", "steps", "tokens", "FLOPs", "mesh", "time"):
        table.add_column(name, justify="left" if name in ("shape", "varying", "mesh")
                         else "right", no_wrap=name != "varying")
    for i, g in enumerate(result.groups):
        varying = ", ".join(p.split(".")[-1] for p in g.varying) or "-"
        table.add_row(str(i + 1), g.shape, str(g.members), varying, str(g.steps),
                      si(g.tokens), si(g.flops), g.mesh, fmt_seconds(g.seconds))
    table.add_section()
    table.add_row("", "total", str(result.trials), "", "", si(result.tokens),
                  si(result.flops), "", fmt_seconds(result.seconds))
    console = make_console()
    console.print(table)
    console.print(f"estimated wall time {fmt_seconds(result.seconds)} ({result.note})")
    kind = f" ({result.device_kind})" if result.device_kind else ""
    console.print(f"devices: {result.devices} {result.backend}{kind} on {result.hosts} "
                  f"host{'s' if result.hosts > 1 else ''}; members run {result.mode}")
    console.print(f"executor: {loaded.executor.describe()}")
    console.print(f"mesh: {loaded.mesh.describe()} (per group in the mesh column)")


# ----------------------------------------------------------------------------- run
@sweep_app.command("run")
def run_cmd(
    spec: Annotated[Path | None, typer.Argument(
        help="Sweep spec (.yaml); omit to resume the sweep in --out.")] = None,
    out: OutDir = "runs/sweep",
    mode: Annotated[str, typer.Option(help="auto, vmap or sequential.")] = "auto",
    max_groups: Annotated[int | None, typer.Option(
        "--max-groups", min=1, help="Train at most N groups that have work left.")] = None,
    extend: Annotated[bool, typer.Option(
        "--extend", help="Add this spec's trials to a sweep directory holding another spec.")
    ] = False,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="local or ray (default: the spec's executor.kind, else local).")
    ] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster to join (auto, HOST:PORT, ray://HOST:10001); "
                              "implies --executor ray.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the run's summary as one JSON object.")] = False,
    coordinator: Annotated[str | None, typer.Option(
        "--coordinator", help="Several processes, one run: process 0's HOST:PORT (with "
                              "--num-processes and --process-id; SLURM and TPU pods are "
                              "found without them).")] = None,
    num_processes: Annotated[int | None, typer.Option(
        "--num-processes", help="How many processes run this command together.")] = None,
    process_id: Annotated[int | None, typer.Option(
        "--process-id", help="This process's index, 0 .. N-1 (0 writes the files).")] = None,
) -> None:
    """Train every unfinished trial (re-run to resume).

    On a TPU pod or GPU cluster run the same command on every host: JAX's distributed
    runtime is started from --coordinator/--num-processes/--process-id, SLURM or the TPU
    metadata, and each group trains over all hosts' devices.
    """
    from scalelaw._cli._sweep_run import run_sweep
    from scalelaw.distributed import initialize, launch_environment
    from scalelaw.sweep.executor_config import resolve_executor
    from scalelaw.sweep.executors import check_trainable
    from scalelaw.sweep.runner import make_executor
    from scalelaw.sweep.spec import load_executor, load_mesh, load_tracker
    from scalelaw.sweep.store import SPEC, SweepStore

    # Everything is checked (and a Ray cluster joined) before anything is written.
    store = None
    if spec is not None:
        loaded = _spec(spec)
        check_trainable(loaded.trials())
        config, tracker, mesh = loaded.executor, loaded.tracker, loaded.mesh
    else:
        store = SweepStore.open(out)
        config = load_executor(store.root / SPEC)
        tracker, mesh = load_tracker(store.root / SPEC), load_mesh(store.root / SPEC)
    config = resolve_executor(config, executor=executor, ray_address=ray_address)
    launch = launch_environment(coordinator=coordinator, num_processes=num_processes,
                                process_id=process_id)
    if config.kind == "ray":  # Ray's workers each train a group on their own devices
        if launch is not None and launch.source != "tpu":
            raise ValueError("executor: ray runs groups in its own workers; on several "
                             "processes use the local executor (each group over all hosts)")
        launch = None
    # validates --mode; Ray and the tracker's package installed
    chosen = make_executor(config, mode=mode, tracker=tracker, mesh=mesh)
    _jax_cache()  # before Ray starts its workers, which inherit the environment
    initialize(launch)  # JAX's distributed runtime, before any device is used
    connect = getattr(chosen, "connect", None)
    if connect is not None:
        connect()
    if config.kind != "ray":  # a mesh that cannot be laid out here: refused before writing
        from scalelaw.train.loop import check_mesh

        groups = loaded.groups() if store is None else store.groups()
        check_mesh([g.trials for g in groups], mode=mode, mesh=mesh)
    if store is None:
        store = SweepStore.prepare(out, loaded, extend=extend)
    raise typer.Exit(run_sweep(store, chosen, max_groups=max_groups, json_out=json_out))


def _jax_cache() -> None:
    """Use JAX's persistent compilation cache (set before JAX is imported)."""
    from scalelaw.cache import enable_compilation_cache

    enable_compilation_cache()


# ----------------------------------------------------------------------------- status
@sweep_app.command("status")
def status_cmd(
    sweep_dir: SweepDir,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Trial states per group and the best LR per width."""
    from scalelaw._cli._sweep_status import print_status
    from scalelaw.sweep.status import sweep_status

    data = sweep_status(sweep_dir)
    if json_out:
        print_json(data)
    else:
        print_status(data)


# --------------------------------------------------------------------------- recommend
@sweep_app.command("recommend")
def recommend_cmd(
    sweep_dir: SweepDir,
    width: Annotated[int, typer.Option("--width", help="Target model width.")],
    tokens: Annotated[float, typer.Option("--tokens", help="Training tokens D of the run.")],
    params: Annotated[float | None, typer.Option(
        "--params", help="Parameters N (default: the sweep's model at --width, "
                         "non-embedding).")] = None,
    parametrization: Annotated[str | None, typer.Option(
        "--parametrization", help="Which of the sweep's parametrizations.")] = None,
    seq_len: Annotated[int | None, typer.Option(
        "--seq-len", help="Tokens per sequence (default: the sweep's context).")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="Published law for batch and schedule: steplaw, deepseek, "
                         "power.")] = "steplaw",
    drift: Annotated[str, typer.Option(
        "--drift", help="auto (none for muP/CompleteP, else fit), fit or none.")] = "auto",
    save: Annotated[Path | None, typer.Option(
        "--save", help="Save the LR-transfer fit (JSON).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Recommend hyperparameters at --width from the sweep.

    Fits the best LR per width and its drift with width, then recommends.
    """
    from scalelaw._cli._common import check_output_path
    from scalelaw._cli._sweep_recommend import print_recommendation
    from scalelaw.sweep_recommend import recommend_from_sweep

    check_output_path(save, "save")
    result = recommend_from_sweep(sweep_dir, width=width, tokens=tokens, n_params=params,
                                  parametrization=parametrization, seq_len=seq_len,
                                  source=source, drift=drift)
    if save is not None:
        result.fit.save(save)
    if json_out:
        print_json(result.to_dict() | {"saved": str(save) if save else None})
    else:
        print_recommendation(result)


# ----------------------------------------------------------------------------- collect
@sweep_app.command("collect")
def collect_cmd(
    sweep_dir: SweepDir,
    out: Annotated[str | None, typer.Option(
        "--out", help="Parquet file or URL (default: DIR/results.parquet).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write the results table (a row per trial and step) to parquet."""
    from scalelaw.sweep.results import collect_summary

    report = collect_summary(sweep_dir, out)
    if json_out:
        print_json(report)
        return
    states = ", ".join(f"{n} {s}" for s, n in report["states"].items())
    typer.echo(f"wrote {report['path']}: {report['rows']} rows, {report['trials_with_rows']} "
               f"trials with rows ({states})")
    if not report["finished"]:
        typer.echo(f"note: the sweep is not finished; resume with "
                   f"`scalelaw sweep run --out {sweep_dir}`", err=True)
