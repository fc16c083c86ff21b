"""The choice fields' ``Literal[...]`` values agree with the constants that name them.

The sections declare their choices as explicit ``Literal["a", "b"]`` (so type checkers see
them) while the modules also export them as tuples (``NAMES``, ``SOURCES``, ...) for
messages and checks elsewhere: the two must list the same values in the same order.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import pytest

from scalelaw import corpus
from scalelaw.models import config as model_config
from scalelaw.mup import rules


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` annotation, or of the Literal in ``Literal[...] | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    assert get_origin(annotation) is Literal, annotation
    return get_args(annotation)


@pytest.mark.parametrize(("cls", "field", "constant"), [
    (rules.Parametrization, "name", rules.NAMES),
    (rules.Parametrization, "weight_decay_rule", rules.WEIGHT_DECAY_RULES),
    (rules.Parametrization, "attn_scale", rules.ATTN_SCALES),
    (model_config.TransformerConfig, "mlp", model_config.MLP_KINDS),
    (corpus.DataConfig, "source", corpus.SOURCES),
    (corpus.DataConfig, "dtype", corpus.TOKEN_DTYPES),
])
def test_literal_matches_constant(cls: Any, field: str, constant: tuple[str, ...]) -> None:
    annotation = cls.__pydantic_fields__[field].annotation
    assert _literal_values(annotation) == constant
