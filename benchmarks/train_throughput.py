"""Benchmark: training throughput of scalelaw's compiled step vs plain PyTorch (issue 3 §5).

For each width (default 64, 128, 256, 512; depth 4, head_dim 32, context 128, batch 32,
byte vocab 256; muP with base width 64, Adam, grad clip 1.0) it runs the real training
path -- :func:`scalelaw.train.step.step_fns` ``chunk`` (``lax.scan`` over
``--steps-per-call`` steps, LR passed as data, state donated), as
:func:`scalelaw.train.loop.train_group` runs it -- and prints

- tokens/s: ``steps_per_call * batch * context`` over the median wall time of one call
  (after warm-up calls, each call blocked with ``block_until_ready``);
- MFU: tokens/s x :func:`scalelaw.models.flops_per_token` over an f32 matmul peak
  measured in the same run (the best of several jitted 2048^3 and 4096^3 matmuls);
- compile s: wall time of the first call minus one steady-state call (trace + lower +
  compile; JAX's persistent compilation cache is not used here);
- where PyTorch is installed, the same for a plain eager PyTorch model of the identical
  shape, initial weights (copied from scalelaw's init) and muP multipliers (pre-norm
  RMSNorm, rotary, tanh-GELU MLP, no biases, readout multiplier ``1/m``, attention scale
  ``1/d``, per-layer AdamW LR groups, grad clip 1.0, ``torch.set_num_threads(--threads)``,
  default 2), and the ratio scalelaw / torch. For a one-core measurement pin the whole
  process, e.g. ``taskset -c 1 python benchmarks/train_throughput.py --threads 1`` (XLA
  threads are confined with it). ``--torch-compile`` adds a ``torch.compile`` column.

The script re-executes itself once with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
(:mod:`scalelaw.train.runtime`); ``SCALELAW_MALLOC=system`` keeps glibc's default malloc,
``SCALELAW_MALLOC=tcmalloc`` preloads tcmalloc. It measures and prints; it asserts
nothing. Other processes on the machine distort the numbers: the load average is printed
before and after.

Run: ``python benchmarks/train_throughput.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _table import print_table  # benchmarks/_table.py (this script's folder)

from scalelaw.models import flops_per_token
from scalelaw.models import transformer as tf
from scalelaw.models.config import TransformerConfig
from scalelaw.mup.optim import layer_rules
from scalelaw.mup.rules import Parametrization
from scalelaw.train.runtime import reexec_with_fast_malloc
from scalelaw.train.step import member_hyper, step_fns

try:  # optional baseline
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

BASE_WIDTH = 64
LR, B1, B2, EPS, GRAD_CLIP = 3e-3, 0.9, 0.95, 1e-8, 1.0


@dataclasses.dataclass
class Result:
    """One framework at one width."""

    tokens_per_s: float
    compile_s: float = float("nan")
    first_loss: float = float("nan")


def _median_call(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(repeats: int = 5) -> float:
    """Best f32 GFLOP/s of a jitted square matmul (n = 2048 and 4096), best of ``repeats``."""
    best = 0.0
    for n in (2048, 4096):
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
        f = jax.jit(lambda a, b: a @ b)
        f(a, b).block_until_ready()
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b).block_until_ready()
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def config_for(width: int, args: argparse.Namespace) -> TransformerConfig:
    return TransformerConfig(width=width, depth=args.depth, head_dim=args.head_dim,
                             context=args.context, vocab=256)


def batches_for(cfg: TransformerConfig, args: argparse.Namespace, n: int) -> np.ndarray:
    """``n`` batches of random bytes, ``i32[n, B, T+1]``."""
    rng = np.random.default_rng(0)
    return rng.integers(0, cfg.vocab, (n, args.batch, cfg.context + 1)).astype(np.int32)


def bench_scalelaw(cfg: TransformerConfig, p: Parametrization,
                   args: argparse.Namespace) -> Result:
    """Tokens/s of ``step_fns(...).chunk``, as ``train_group`` calls it (sequential mode)."""
    S = args.steps_per_call
    fns = step_fns(cfg, p, grad_clip=GRAD_CLIP, vmapped=False)
    hyper = member_hyper(weight_decay=0.0, b1=B1, b2=B2, eps=EPS, output_mult=1.0)
    lrs, active = np.full(S, LR, np.float32), np.ones(S, bool)
    batches = batches_for(cfg, args, S)
    state = fns.init(jax.random.key(0))
    jax.block_until_ready(state)

    holder = {"state": state}

    def call() -> Any:
        holder["state"], out = fns.chunk(holder["state"], hyper, lrs, batches, active)
        return jax.block_until_ready(out)

    t0 = time.perf_counter()
    first = call()
    first_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        call()
    per_call = _median_call(call, args.repeats)
    return Result(S * args.batch * cfg.context / per_call, max(first_s - per_call, 0.0),
                  float(first["loss"][0]))


# ---------------------------------------------------------------------------- PyTorch


def _torch_model(cfg: TransformerConfig, p: Parametrization) -> Any:
    """A plain PyTorch twin of :func:`scalelaw.models.transformer.forward` (GELU MLP)."""
    nn, F = torch.nn, torch.nn.functional
    H, K, T = cfg.n_heads, cfg.head_dim, cfg.context
    res_mult = p.residual_mult(cfg.depth)
    attn_scale = p.attention_scale(K)
    out_mult = p.layer_rule("output", cfg.width / p.base_width).forward_mult
    freqs = 10000.0 ** (-torch.arange(0, K // 2, dtype=torch.float32) / (K // 2))
    angles = torch.arange(T, dtype=torch.float32)[:, None] * freqs[None, :]
    cos, sin = angles.cos()[None, None], angles.sin()[None, None]  # (1, 1, T, K/2)

    def rms_norm(x: Any, gain: Any) -> Any:
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6) * gain

    def rotary(x: Any) -> Any:  # (B, H, T, K)
        x1, x2 = x[..., : K // 2], x[..., K // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            D, Fw = cfg.width, cfg.mlp_width
            for name, shape in (("wq", (D, D)), ("wk", (D, D)), ("wv", (D, D)), ("wo", (D, D)),
                                ("w1", (D, Fw)), ("w2", (Fw, D))):
                setattr(self, name, nn.Parameter(torch.empty(shape)))
            self.attn_norm = nn.Parameter(torch.ones(D))
            self.mlp_norm = nn.Parameter(torch.ones(D))

        def forward(self, x: Any) -> Any:
            B = x.shape[0]
            h = rms_norm(x, self.attn_norm)
            q, k, v = ((h @ w).view(B, T, H, K).transpose(1, 2)
                       for w in (self.wq, self.wk, self.wv))
            a = F.scaled_dot_product_attention(rotary(q), rotary(k), v, is_causal=True,
                                               scale=attn_scale)
            x = x + res_mult * (a.transpose(1, 2).reshape(B, T, H * K) @ self.wo)
            h = rms_norm(x, self.mlp_norm)
            return x + res_mult * (F.gelu(h @ self.w1, approximate="tanh") @ self.w2)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Parameter(torch.empty(cfg.vocab, cfg.width))
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.depth))
            self.norm = nn.Parameter(torch.ones(cfg.width))
            self.readout = nn.Parameter(torch.empty(cfg.width, cfg.vocab))

        def forward(self, tokens: Any) -> Any:
            x = self.embed[tokens]
            for block in self.blocks:
                x = block(x)
            return out_mult * (rms_norm(x, self.norm) @ self.readout)

    model = Model()
    init = tf.init_params(cfg, dataclasses.replace(p, output_mult=1.0), jax.random.key(0))
    with torch.no_grad():
        for name in ("embed", "norm", "readout"):
            getattr(model, name).copy_(torch.from_numpy(np.array(init[name])))
        for i, block in enumerate(model.blocks):
            for name in ("wq", "wk", "wv", "wo", "w1", "w2", "attn_norm", "mlp_norm"):
                getattr(block, name).copy_(torch.from_numpy(np.array(init[name][i])))
    return model


def _torch_optimizer(model: Any, cfg: TransformerConfig, p: Parametrization) -> Any:
    """AdamW with one param group per muP rule (LR and eps multipliers, as scalelaw)."""
    rules = layer_rules(tf.roles(cfg, dataclasses.replace(p, output_mult=1.0)), p, cfg.depth)
    groups: dict[Any, list[Any]] = {}
    for name, param in model.named_parameters():
        key = name.rsplit(".", 1)[-1]  # blocks.3.wq -> wq
        groups.setdefault(rules[key], []).append(param)
    return torch.optim.AdamW(
        [{"params": ps, "lr": LR * r.lr_mult, "eps": EPS * r.eps_mult, "weight_decay": 0.0,
          "lr_mult": r.lr_mult} for r, ps in groups.items()], betas=(B1, B2))


def bench_torch(cfg: TransformerConfig, p: Parametrization, args: argparse.Namespace,
                compiled: bool) -> Result:
    """Tokens/s of a plain PyTorch training loop over the same batches."""
    torch.manual_seed(0)
    model = _torch_model(cfg, p)
    opt = _torch_optimizer(model, cfg, p)
    S = args.steps_per_call
    batches = torch.from_numpy(batches_for(cfg, args, S).astype(np.int64))
    params = list(model.parameters())
    forward = torch.compile(model) if compiled else model

    def step(batch: Any) -> Any:
        for group in opt.param_groups:  # LR per step from the schedule, as a real loop would
            group["lr"] = LR * group["lr_mult"]
        logits = forward(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab),
                                                 batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        return loss.detach()

    def call() -> list[Any]:
        return [step(batches[s]) for s in range(S)]

    t0 = time.perf_counter()
    first = call()
    first_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        call()
    per_call = _median_call(call, args.repeats)
    return Result(S * args.batch * cfg.context / per_call,
                  max(first_s - per_call, 0.0), float(first[0]))


# ---------------------------------------------------------------------------- table


def _fmt(x: float, spec: str) -> str:
    return "-" if x != x else format(x, spec)  # NaN -> "-"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps-per-call", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1, help="calls after the first one")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls (median)")
    ap.add_argument("--threads", type=int, default=2,
                    help="PyTorch intra-op threads (pin XLA with taskset, e.g. "
                         "`taskset -c 1 ... --threads 1`)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    ap.add_argument("--torch-compile", action="store_true",
                    help="also time torch.compile (needs a C++ compiler)")
    args = ap.parse_args(argv)

    use_torch = torch is not None and not args.no_torch
    if use_torch:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"jax {jax.__version__} on {jax.default_backend()} ({os.cpu_count()} CPUs), "
          f"torch {torch.__version__ if torch is not None else 'not installed'}; "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r} "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r} "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
    peak = matmul_peak()
    print(f"f32 matmul peak (jax, best of 5): {peak:.1f} GFLOP/s; load average before: "
          f"{load0[0]:.2f}", flush=True)

    rows = []
    for width in args.widths:
        cfg = config_for(width, args)
        p = Parametrization("mup", base_width=BASE_WIDTH)
        fpt = flops_per_token(cfg)
        ours = bench_scalelaw(cfg, p, args)
        theirs = bench_torch(cfg, p, args, False) if use_torch else Result(float("nan"))
        comp = (bench_torch(cfg, p, args, True) if use_torch and args.torch_compile
                else Result(float("nan")))
        mfu = ours.tokens_per_s * fpt / (peak * 1e9)
        rows.append((width, ours, mfu, theirs, comp))
        print(f"  width {width}: scalelaw {ours.tokens_per_s:,.0f} tok/s "
              f"(first loss {ours.first_loss:.4f}), torch {theirs.tokens_per_s:,.0f} tok/s "
              f"(first loss {theirs.first_loss:.4f})", file=sys.stderr, flush=True)

    head = ["width", "scalelaw tok/s", "MFU", "compile s", "torch tok/s", "ratio"]
    if args.torch_compile:
        head += ["torch.compile tok/s", "ratio (compile)"]
    lines = []
    for width, ours, mfu, theirs, comp in rows:
        line = [str(width), f"{ours.tokens_per_s:,.0f}", f"{100 * mfu:.1f}%",
                f"{ours.compile_s:.2f}", _fmt(theirs.tokens_per_s, ",.0f"),
                _fmt(ours.tokens_per_s / theirs.tokens_per_s, ".2f")]
        if args.torch_compile:
            line += [_fmt(comp.tokens_per_s, ",.0f"),
                     _fmt(ours.tokens_per_s / comp.tokens_per_s, ".2f")]
        lines.append(line)
    print(f"\ndepth {args.depth}, head_dim {args.head_dim}, context {args.context}, "
          f"batch {args.batch}, {args.steps_per_call} steps per call, median of "
          f"{args.repeats} calls; muP base width {BASE_WIDTH}, AdamW, clip {GRAD_CLIP}")
    print_table(head, lines)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    reexec_with_fast_malloc()  # SCALELAW_MALLOC=system for glibc's default malloc
    main()
