"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def check_output_path(path: Path | None, name: str, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, an output file whose directory is missing or read-only, or
    whose suffix is not one of ``suffixes``; the error names the argument ``name``."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{name}: use a {', '.join(suffixes)} file, got {path.name!r}")
    if path.is_dir():
        raise ValueError(f"{name}: {path} is a directory")
    if not parent.is_dir():
        raise ValueError(f"{name}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{name}: directory {parent} is not writable")


def parse_int_list(text: str, field: str) -> list[int]:
    """Parse ``"64,256,1024"`` into positive ints, or raise ``ValueError`` naming ``field``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{field}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{field}: expected positive integers, got {text!r}")
    return values


def print_json(obj: Any) -> None:
    """Print one strict JSON object on stdout (numpy scalars converted, NaN/inf -> null)."""
    def default(o: Any) -> Any:
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    from scalelaw.fit.result import json_safe

    plain = json.loads(json.dumps(obj, default=default))  # numpy -> Python, NaN kept
    sys.stdout.write(json.dumps(json_safe(plain), allow_nan=False) + "\n")


def console(stderr: bool = False) -> Any:
    """A rich console; when the output is not a terminal (a pipe, a log file, CI), tables
    get 140 columns instead of rich's default 80 so that they are not truncated."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 140)


def print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    """A two-column ``quantity | value`` table (a recommendation, a fitted law)."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("quantity", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, value)
    console().print(table)


def parse_name_list(text: str, field: str) -> list[str]:
    """Parse ``"model_id,D"`` into column names, or raise ``ValueError`` naming ``field``."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"{field}: expected comma-separated column names, got {text!r}")
    return names


def warn_line(message: str) -> None:
    """One ``warning: ...`` line on stderr (the loud notes of a fit, e.g. its loss column)."""
    sys.stderr.write(f"warning: {message}\n")
