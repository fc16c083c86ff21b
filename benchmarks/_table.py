"""The ratio table every benchmark prints: right-aligned columns under a header."""

from __future__ import annotations


def print_table(head: list[str], rows: list[list[str]]) -> None:
    """Print ``head`` and ``rows`` (strings) with each column right-aligned to its widest."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for line in rows:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
