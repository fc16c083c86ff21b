"""A Flax NNX module around a pure model (``init_params``, ``roles``, ``forward``).

The reference models are pure functions of a flat parameter dict -- what the training
loop jits. :class:`PureModule` gives each one an NNX face: its parameters become
:class:`nnx.Param` attributes, so ``nnx.split``/``nnx.state`` and NNX transforms see them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
from flax import nnx

from scalelaw.mup.rules import Parametrization


class PureModule(nnx.Module):
    """Base class: a subclass sets ``init_fn``, ``roles_fn`` and ``forward_fn``.

    Parameters
    ----------
    config
        The model's config dataclass.
    parametrization : Parametrization, optional
        Default SP at ``config.width``.
    rngs : nnx.Rngs
    """

    init_fn: ClassVar[Callable[..., dict[str, jax.Array]]]
    roles_fn: ClassVar[Callable[..., Any]]
    forward_fn: ClassVar[Callable[..., Any]]

    def __init__(self, config: Any, parametrization: Parametrization | None = None, *,
                 rngs: nnx.Rngs) -> None:
        self.config = config
        self.parametrization = parametrization or Parametrization("sp", base_width=config.width)
        values = type(self).init_fn(config, self.parametrization, rngs.params())
        self._names = tuple(sorted(values))
        for name, value in values.items():
            setattr(self, name, nnx.Param(value))

    def params(self) -> dict[str, jax.Array]:
        """The parameters as a flat dict of arrays (the layout ``forward`` takes)."""
        return {name: getattr(self, name)[...] for name in self._names}

    def roles(self, overrides: dict[str, str] | None = None) -> Any:
        """muP roles parallel to :meth:`params`."""
        return type(self).roles_fn(self.config, self.parametrization, overrides)

    def __call__(self, x: jax.Array, *, with_activations: bool = False) -> Any:
        return type(self).forward_fn(self.params(), x, self.config, self.parametrization,
                                     with_activations=with_activations)
