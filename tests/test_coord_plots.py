"""scalelaw.plots: the coordinate-check figure, checked through its matplotlib objects."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from scalelaw.mup.diagnostics import _verdicts
from scalelaw.plots import coord_check_figure, coord_ratios, module_family, plot_coord_check


def fake_check(widths: tuple[int, ...] = (64, 256, 1024)) -> pd.DataFrame:
    """A coordinate check as CoordCheck.data: an embedding that moves 1.6% (4.97e-2 to
    5.05e-2), two layers' attention, and a zero-init readout whose t = 1 and t = 2 lines
    coincide at 1 / 0.3 ... before it grows (SP-like) at t = 3."""
    rows = []
    for w, (t, module) in itertools.product(widths, itertools.product(
            (1, 2, 3), ("embed", "layer0.attn", "layer1.attn", "readout"))):
        m = math.log2(w / widths[0])
        l1 = {"embed": 4.97e-2 + 0.04e-2 * m * (t == 3),
              "layer0.attn": 0.8 * (1 + 0.01 * m),
              "layer1.attn": 0.6 * (1 + 0.02 * m * t),
              "readout": 0.0 if t == 1 else 0.3 * (1.0 if t == 2 else 2.0 ** (m / 2))}[module]
        rows.append({"width": w, "module": module, "t": t, "l1": l1, "l1_sd": 0.01 * l1,
                     "seeds": 3})
    return pd.DataFrame(rows)


def step_lines(fig) -> dict[str, object]:  # noqa: ANN001
    return {line.get_gid(): line for ax in fig.axes for line in ax.get_lines()
            if line.get_gid()}


def test_y_is_the_ratio_to_the_base_width_and_x_the_widths() -> None:
    data = fake_check()
    fig = coord_check_figure(data, bound=1.44)
    lines = step_lines(fig)
    assert len(lines) == 4 * 3
    for row in data[data["width"] == 1024].itertuples():
        base = data[(data["width"] == 64) & (data["module"] == row.module)
                    & (data["t"] == row.t)]["l1"].item()
        want = 1.0 if base == row.l1 == 0 else row.l1 / base
        y = lines[f"{row.module}|t={row.t}"].get_ydata()
        assert y[0] == pytest.approx(1.0) and y[-1] == pytest.approx(want)
    x = lines["embed|t=2"].get_xdata()  # the middle step sits on the widths
    assert list(x) == pytest.approx([64, 256, 1024])


def test_a_flat_embedding_looks_flat_on_shared_limits_that_cover_the_bound() -> None:
    data = fake_check()
    bound = 1.44
    fig = coord_check_figure(data, bound=bound)
    used = [ax for ax in fig.axes if ax.get_lines()]
    limits = {ax.get_ylim() for ax in used}
    assert len(limits) == 1  # one y range for every panel
    lo, hi = limits.pop()
    assert lo <= 1 / bound and hi >= bound
    # the embedding's 1.6% drift spans under 3% of the panel's (log) height
    y = step_lines(fig)["embed|t=3"].get_ydata()
    assert math.log(max(y) / min(y)) / math.log(hi / lo) < 0.03
    # and the SP-like readout still reaches its 4x (sqrt(width), 16x span)
    assert max(step_lines(fig)["readout|t=3"].get_ydata()) == pytest.approx(4.0)
    assert hi >= 4.0


def test_every_step_has_its_own_visible_line_and_legend_entry() -> None:
    fig = coord_check_figure(fake_check(), bound=1.44)
    lines = step_lines(fig)
    for module in ("embed", "readout"):
        ts = [lines[f"{module}|t={t}"] for t in (1, 2, 3)]
        styles = {(line.get_marker(), str(line.get_linestyle()), line.get_color())
                  for line in ts}
        assert len(styles) == 3
        assert all(line.get_visible() and line.get_alpha() > 0.5 for line in ts)
        # the readout's t = 1 and t = 2 lines lie on each other (ratio 1): shifted apart in x
        xs = [tuple(line.get_xdata()) for line in ts]
        assert len(set(xs)) == 3
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()][:3] == ["t=1", "t=2", "t=3"]


def test_layers_are_grouped_into_families_when_there_are_many() -> None:
    data = fake_check()
    titles = [ax.get_title() for ax in coord_check_figure(data, families=True).axes
              if ax.get_lines()]
    assert titles == ["embed", "layer*.attn (2)", "readout"]
    titles = [ax.get_title() for ax in coord_check_figure(data).axes if ax.get_lines()]
    assert len(titles) == 4  # few modules: one panel each
    assert module_family("blocks/12/mlp/linear") == "blocks/*/mlp/linear"
    assert module_family("layers/4") == "layers/4"  # a Sequential's readout is no family


def test_tick_labels_do_not_overlap() -> None:
    fig = coord_check_figure(fake_check(), bound=1.44, families=False)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_lines():
            continue
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            boxes = [t.get_window_extent(renderer) for t in labels
                     if t.get_visible() and t.get_text()]
            for a, b in itertools.combinations(boxes, 2):
                assert not a.overlaps(b), [t.get_text() for t in labels]
        assert not [t for t in ax.get_yticklabels(minor=True) if t.get_text()]


def test_flagged_panels_are_titled_red_and_the_file_is_written(tmp_path) -> None:  # noqa: ANN001
    data = fake_check()
    verdicts = _verdicts(data, 1.44)
    assert verdicts.set_index("module").loc["readout", "verdict"] == "blows up"
    fig = coord_check_figure(data, verdicts=verdicts, bound=1.44)
    titles = {ax.get_title(): ax.title.get_color() for ax in fig.axes if ax.get_lines()}
    assert titles["readout: blows up"] == "tab:red" and titles["embed"] == "black"
    plot_coord_check(data, tmp_path / "cc.png", verdicts=verdicts, bound=1.44)
    assert (tmp_path / "cc.png").read_bytes()[:4] == b"\x89PNG"


def test_depth_data_is_drawn_against_depth() -> None:
    data = fake_check((2, 4, 8)).rename(columns={"width": "depth"})
    fig = coord_check_figure(data, bound=1.3)
    assert fig.get_supxlabel() == "depth" and fig.get_supylabel().endswith("at depth 2")
    assert np.isfinite(coord_ratios(data)["ratio"]).all()
    judged = _verdicts(data[data["module"] == "embed"], 1.3, axis="depth")
    fig = coord_check_figure(data, verdicts=judged, bound=1.3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_lines()]
    assert "embed" in titles and "readout (not judged)" in titles
