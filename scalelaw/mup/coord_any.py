"""The coordinate check of any Flax NNX model: :func:`coord_check_model`.

The model is a factory ``model(width)`` (or ``model(width, seed)``, so that seeds differ)
returning an NNX module, as for :func:`scalelaw.mup.any_model.apply_mup`, which sets it up
at every width (roles from shapes, init by role, readout multiplier absorbed). The check
then records the mean absolute output ("l1") of *every submodule* that returns an array
-- the forward hooks of microsoft/mup's ``get_coord_data``, done here by wrapping each
submodule class's ``__call__`` while the model is traced -- plus the model's output, and
judges them as :func:`scalelaw.mup.diagnostics.run_coord_check` does.

A module called several times records its first call; arrays used without a call (a tied
embedding's ``attend``) are seen through the modules around them. Modules run inside NNX
transforms (``nnx.scan``, ``nnx.vmap``) are recorded as the transform's output only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import optax

from scalelaw.mup.any_model import apply_mup
from scalelaw.mup.diagnostics import CoordCheck, CoordModel, run_coord_check
from scalelaw.mup.rules import Parametrization


def default_loss(output: Any, y: Any) -> jax.Array:
    """Cross-entropy over the last axis for integer targets, else mean squared error."""
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer):
        return optax.softmax_cross_entropy_with_integer_labels(output, y).mean()
    return jnp.mean(jnp.square(output - y))


def _l1(value: Any) -> jax.Array | None:
    leaf = value[0] if isinstance(value, tuple) and value else value
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.floating):
        return jnp.mean(jnp.abs(leaf))
    return None


@contextmanager
def recording(module: Any) -> Iterator[dict[str, jax.Array]]:
    """Record the l1 of every submodule's first output while the block runs.

    Examples
    --------
    >>> from flax import nnx
    >>> net = nnx.Sequential(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), jax.nn.relu)
    >>> with recording(net) as stats:
    ...     _ = net(jnp.ones((1, 2)))
    >>> sorted(stats)
    ['layers/0']
    """
    from flax import nnx

    names = {id(m): "/".join(map(str, path)) for path, m in nnx.iter_modules(module) if path}
    stats: dict[str, jax.Array] = {}
    saved: dict[type, Any] = {}
    for cls in {type(m) for _, m in nnx.iter_modules(module)}:
        if not any("__call__" in vars(k) for k in cls.__mro__):  # a container (nnx.List)
            continue
        saved[cls] = cls.__dict__.get("__call__")
        original = cls.__call__

        def wrapped(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            out = __original(self, *args, **kwargs)
            name = names.get(id(self))
            l1 = _l1(out) if name is not None and name not in stats else None
            if l1 is not None:
                stats[name] = l1  # type: ignore[index]
            return out

        cls.__call__ = wrapped  # type: ignore[method-assign]
    try:
        yield stats
    finally:
        for cls, own in saved.items():
            if own is None:
                delattr(cls, "__call__")
            else:
                cls.__call__ = own  # type: ignore[method-assign]


def _call(module: Any, x: Any) -> Any:
    return module(*x) if isinstance(x, tuple) else module(x)


def _seeded(model: Callable[..., Any]) -> bool:
    try:
        return len(inspect.signature(model).parameters) >= 2
    except (TypeError, ValueError):  # a builtin or C callable
        return False


def nnx_coord_model(
    model: Callable[..., Any],
    batch: tuple[Any, Any],
    *,
    loss: Callable[[Any, Any], Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    init: str = "rescale",
) -> Callable[[int], CoordModel]:
    """``width -> CoordModel`` for an NNX model factory, for :func:`run_coord_check`."""
    from flax import nnx

    loss_fn = default_loss if loss is None else loss
    with_seed = _seeded(model)

    def at(width: int) -> CoordModel:
        graphs: dict[str, Any] = {}

        def setup(p: Parametrization, seed: int = 0) -> Any:
            factory = (lambda w: model(w, seed)) if with_seed else model
            return apply_mup(factory, width=width, parametrization=p, overrides=overrides,
                             init=init, key=jax.random.key(seed))

        def init_fn(_: int, p: Parametrization, key: jax.Array) -> Any:
            seed = int(jax.random.key_data(key).ravel()[-1])
            s = setup(p, seed)
            parts: tuple[Any, ...] = nnx.split(s.module, nnx.Param, ...)
            graph, params, rest = parts
            graphs.update(graph=graph, rest=rest)
            return params

        def rules_fn(_: int, p: Parametrization, depth: int) -> Any:
            return setup(p).rules

        def forward(params: Any, x: Any, _: int, p: Parametrization,
                    with_activations: bool = False) -> Any:
            module = nnx.merge(graphs["graph"], params, graphs["rest"])
            with recording(module) as stats:
                out = _call(module, x)
            l1 = _l1(out)
            stats = dict(stats, **({"output": l1} if l1 is not None else {}))
            return (out, stats) if with_activations else out

        def roles_fn(_: int, p: Parametrization) -> Any:
            return setup(p).roles

        return CoordModel(width, init_fn, roles_fn, forward, loss_fn, batch, rules_fn)

    return at


def coord_check_model(
    model: Callable[..., Any],
    batch: tuple[Any, Any],
    widths: Sequence[int] = (128, 512),
    *,
    parametrization: Parametrization | str = "mup",
    loss: Callable[[Any, Any], Any] | None = None,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    seeds: int = 3,
    bound: float | None = None,
    zero_init_readout: bool = True,
    overrides: Mapping[str, str] | None = None,
    init: str = "rescale",
) -> CoordCheck:
    """Coordinate check of your NNX model over ``widths`` (see the module docstring).

    The parameters not listed here are those of :func:`scalelaw.coord_check`; a
    parametrization name builds ``Parametrization(name, base_width=min(widths),
    zero_init_readout=zero_init_readout)``.

    Parameters
    ----------
    model : callable
        ``model(width)`` or ``model(width, seed)`` returning an ``nnx.Module``.
    batch : (x, y)
        One fixed batch; ``x`` a tuple is passed as several arguments (``module(*x)``).
    loss : callable, optional
        ``loss(output, y)``; default :func:`default_loss`.
    overrides, init
        As in :func:`scalelaw.mup.any_model.apply_mup`.

    Examples
    --------
    >>> from flax import nnx
    >>> def net(width):
    ...     return nnx.Sequential(nnx.Linear(4, width, rngs=nnx.Rngs(0)), jax.nn.relu,
    ...                           nnx.Linear(width, width, rngs=nnx.Rngs(1)), jax.nn.relu,
    ...                           nnx.Linear(width, 2, rngs=nnx.Rngs(2)))
    >>> batch = (jax.random.normal(jax.random.key(0), (8, 4)), jnp.arange(8) % 2)
    >>> coord_check_model(net, batch, widths=(64, 256), steps=2).stable
    True
    """
    return run_coord_check(
        nnx_coord_model(model, batch, loss=loss, overrides=overrides, init=init),
        parametrization, widths, steps=steps, optimizer=optimizer, lr=lr, depth=1,
        seeds=seeds, bound=bound, zero_init_readout=zero_init_readout)
