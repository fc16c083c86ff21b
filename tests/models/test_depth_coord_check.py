"""The coordinate check over depth: CompleteP and depth-muP stable from depth 2 to 16,
plain muP's residual stream blowing up (Dey et al. 2025)."""

from __future__ import annotations

import pytest

from scalelaw.models.coord_check import depth_coord_check

DEPTHS = (2, 4, 8, 16)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_completep_and_depth_mup_are_stable_over_depth(alpha: float) -> None:
    result = depth_coord_check("completep", DEPTHS, completep_alpha=alpha)
    assert result.stable, result.verdicts.to_string()
    assert set(result.verdicts["module"]) == {"last.residual", "readout", "embed"}
    assert "last.mlp_out" in set(result.data["module"])  # recorded, not judged


@pytest.mark.slow
def test_plain_mup_blows_up_as_depth_grows() -> None:
    result = depth_coord_check("mup", DEPTHS)
    assert not result.stable
    verdicts = result.verdicts.set_index("module")
    assert verdicts.loc["last.residual", "verdict"] == "blows up"
    assert verdicts.loc["last.residual", "max_ratio"] > 2  # ~sqrt(8) at init, more trained


def test_fast_depth_check_and_bad_arguments() -> None:
    mup = depth_coord_check("mup", (2, 8), width=32, steps=3, judge_from=1)
    assert mup.verdicts.set_index("module").loc["last.residual", "verdict"] == "blows up"
    assert set(mup.data.columns) == {"depth", "module", "t", "l1", "l1_sd", "seeds"}
    for kwargs, field in (({"depths": (4,)}, "depths"), ({"width": 40}, "width"),
                          ({"judge_from": 9}, "judge_from"), ({"parametrization": "ntk"},
                                                               "parametrization"),
                          ({"depths": (2, 4), "width": 32, "steps": 3, "judge": ("nope",)},
                           "judge")):
        with pytest.raises(ValueError, match=f"^{field}: "):
            depth_coord_check(**kwargs)
