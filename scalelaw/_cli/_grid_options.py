"""The options that ``fit-hparams`` and ``score-laws`` share: how an LR x batch grid's table
is read (batch column and unit, sequence length, loss column, cell keys)."""

from __future__ import annotations

from typing import Annotated

import typer

Batch = Annotated[str, typer.Option("--batch", help="Column with the batch size.")]
BatchUnit = Annotated[str, typer.Option("--batch-unit", help="sequences or tokens.")]
SeqLen = Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")]
Loss = Annotated[str | None, typer.Option(
    "--loss", help="Column with the final loss (default 'loss'; said loudly when a "
    "smoothed-loss column exists).")]
CellKeys = Annotated[str | None, typer.Option(
    "--cell-keys", help="Comma-separated columns that define a cell (default: the N "
    "and D columns), e.g. model_id,D.")]
