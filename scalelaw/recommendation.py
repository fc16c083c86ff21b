"""The result of :func:`scalelaw.recommend`: a :class:`Recommendation` and its views (a
table of rows, a short repr, HTML for Jupyter, a DataFrame, JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scalelaw import published

__all__ = ["Recommendation"]


@dataclass(frozen=True)
class Recommendation:
    """Recommended hyperparameters for a run of ``n_params`` parameters on ``n_tokens``.

    Attributes
    ----------
    lr : float
        Peak learning rate (the optimizer's global LR; muP per-role values in ``per_role``).
    batch_tokens : float
        Batch size in tokens as the law gives it (not rounded).
    batch_sequences : int
        ``batch_tokens / seq_len`` rounded to a whole number of sequences (at least 1).
    weight_decay : float
        Coupled AdamW weight decay (see ``weight_decay_source``).
    schedule : dict
        Name, constants and a one-line ``description`` of the LR schedule.
    intervals : dict
        95% intervals ``{"lr": (lo, hi), "batch_tokens": (lo, hi)}`` when known.
    source : str
        Which law produced ``lr`` and ``batch_tokens``.
    compute : dict
        C = 6·N·D and the Chinchilla / Epoch compute-optimal N, D and tokens per parameter.
    per_role : tuple of dict
        With a parametrization: ``role, lr, weight_decay, lr_mult, wd_mult, forward_mult``.
    notes : tuple of str
        Approximations made (e.g. DeepSeek's M ≈ 6N).
    """

    n_params: float
    n_tokens: float
    seq_len: int
    lr: float
    batch_tokens: float
    batch_sequences: int
    weight_decay: float
    schedule: dict[str, Any]
    intervals: dict[str, tuple[float, float]]
    source: str
    weight_decay_source: str
    compute: dict[str, float]
    per_role: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {
            "n_params": self.n_params, "n_tokens": self.n_tokens, "seq_len": self.seq_len,
            "lr": self.lr, "batch_tokens": self.batch_tokens,
            "batch_sequences": self.batch_sequences, "weight_decay": self.weight_decay,
            "schedule": dict(self.schedule),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "source": self.source, "weight_decay_source": self.weight_decay_source,
            "compute": dict(self.compute), "per_role": [dict(r) for r in self.per_role],
            "notes": list(self.notes),
        }

    def rows(self) -> list[tuple[str, str]]:
        """(quantity, value) rows for a table; used by ``__str__`` and the CLI."""
        def iv(name: str) -> str:
            if name not in self.intervals:
                return ""
            lo, hi = self.intervals[name]
            return f"  [95%: {lo:.4g}, {hi:.4g}]"

        c = self.compute
        sized = [("N, D", f"N {self.n_params:.4g}{iv('n_params')}, D "
                          f"{self.n_tokens:.4g}{iv('n_tokens')}")] \
            if "n_params" in self.intervals else []
        out = [*sized,
            ("peak lr", f"{self.lr:.4g}{iv('lr')}"),
            ("batch", f"{self.batch_sequences} seq x {self.seq_len} = "
                      f"{self.batch_sequences * self.seq_len:,} tokens "
                      f"(law: {self.batch_tokens:,.0f}){iv('batch_tokens')}"),
            ("weight decay", f"{self.weight_decay:.4g}"),
            ("schedule", self.schedule.get("description", self.schedule.get("name", ""))),
            ("source", self.source),
            ("weight decay source", self.weight_decay_source),
            ("compute 6ND", f"{c['flops']:.3g} FLOPs; tokens/param {c['tokens_per_param']:.3g}"),
        ]
        for name in (*published.ALLOCATIONS, *(["yours"] if "yours_n_opt" in c else [])):
            out.append((f"{name} optimum", f"N {c[name + '_n_opt']:.3g}, D "
                        f"{c[name + '_d_opt']:.3g}, tokens/param "
                        f"{c[name + '_tokens_per_param']:.3g}"))
        for r in self.per_role:
            out.append((f"{r['role']} (x{r['lr_mult']:.3g} lr, x{r['wd_mult']:.3g} wd)",
                        f"lr {r['lr']:.4g}, weight decay {r['weight_decay']:.4g}"))
        out.extend(("note", n) for n in self.notes)
        return out

    def __repr__(self) -> str:
        iv = f", intervals for {', '.join(self.intervals)}" if self.intervals else ""
        return (f"Recommendation(N={self.n_params:.3g}, D={self.n_tokens:.3g}, "
                f"lr={self.lr:.4g}, batch={self.batch_sequences}x{self.seq_len} tokens, "
                f"weight_decay={self.weight_decay:.4g}{iv}, {len(self.notes)} notes)")

    def interval(self, name: str) -> tuple[float, float]:
        """The 95% interval of ``name`` (``lr``, ``batch_tokens``; with ``compute=``,
        ``n_params`` and ``n_tokens``); a ``KeyError`` naming the ones known otherwise.

        >>> from scalelaw import recommend
        >>> recommend(1e9, 1e11).interval("lr")
        Traceback (most recent call last):
        ...
        KeyError: 'lr: no interval (a published law has none; fit laws with bootstrap > 0)'
        """
        if name not in self.intervals:
            known = ("known: " + ", ".join(self.intervals) if self.intervals else
                     "a published law has none; fit laws with bootstrap > 0")
            raise KeyError(f"{name}: no interval ({known})")
        lo, hi = self.intervals[name]
        return float(lo), float(hi)

    def to_frame(self) -> Any:
        """The recommendation as a two-column table (quantity, value), as printed.

        >>> from scalelaw import recommend
        >>> recommend(1e9, 1e11).to_frame().loc["peak lr", "value"]
        '0.001632'
        """
        import pandas as pd

        rows = self.rows()
        return pd.DataFrame({"value": [v for _, v in rows]},
                            index=pd.Index([k for k, _ in rows], name="quantity"))

    def _repr_html_(self) -> str:
        import html

        head = (f"Recommendation for N = {self.n_params:.3g} params, "
                f"D = {self.n_tokens:.3g} tokens")
        body = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self.rows())
        return f"<table><caption>{html.escape(head)}</caption><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        head = f"Recommendation for N = {self.n_params:.3g} params, D = {self.n_tokens:.3g} tokens"
        return "\n".join([head, *(f"  {k:<{width}}  {v}" for k, v in rows)])
