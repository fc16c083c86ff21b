"""``run(argv, capsys)``: the CLI's exit code, stdout and stderr, for the fit CLI tests."""

from __future__ import annotations

import pytest

from scalelaw.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
