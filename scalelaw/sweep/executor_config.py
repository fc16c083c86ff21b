"""The ``executor:`` block of a sweep spec: where the groups of a sweep train.

::

    executor: {kind: ray, address: auto, resources_per_group: {GPU: 1}, max_retries: 3}

``kind`` is ``local`` (the default: in the process that runs ``scalelaw sweep run``) or
``ray`` (each group a Ray task in its own worker process; see
:mod:`scalelaw.sweep.ray_executor`). The other keys are read by the Ray executor only:

``address``
    The Ray cluster to join: ``auto`` (the cluster this machine belongs to, as
    ``ray start`` left it), ``HOST:PORT``, ``ray://HOST:10001``; unset (null) connects
    to ``$RAY_ADDRESS`` if set, else starts a Ray instance on this machine for the run.
``resources_per_group``
    What one group's task reserves, as Ray resource names: ``CPU`` (default 1), ``GPU``
    (a fraction such as 0.5 puts two groups on a GPU), ``TPU`` (chips of a TPU host,
    ``{TPU: 4}``) and any custom resource the cluster declares. Amounts above 1 must be
    whole numbers (Ray's rule).
``max_retries``
    How often Ray re-runs a group whose worker process or node died (default 3); a
    retry resumes from the trials' checkpoints, it never repeats finished members.
``env_vars``
    Environment variables of the group's worker process (strings), e.g.
    ``{XLA_PYTHON_CLIENT_PREALLOCATE: "false"}``; they take precedence over the memory
    settings the executor derives from a fractional GPU.

The block is not part of any trial's configuration, so it never changes trial ids: the
same sweep may be run locally and on a cluster into one directory.

Examples
--------
>>> cfg = ExecutorConfig(kind="ray", address="auto", resources_per_group={"GPU": 1})
>>> cfg.describe()
'ray (address auto; per group GPU 1; max_retries 3)'
>>> ExecutorConfig(kind="ray", resources_per_group={"GPU": 1.5})
Traceback (most recent call last):
...
scalelaw.errors.FieldError: resources_per_group.GPU: amounts above 1 must be whole (Ray), got 1.5
>>> resolve_executor(cfg, executor="local").kind
'local'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from scalelaw._validation import NonEmptyStr, NonNegativeInt, section, show, validate
from scalelaw.errors import FieldError

__all__ = ["EXECUTOR_KINDS", "ExecutorConfig", "parse_executor", "resolve_executor"]

EXECUTOR_KINDS = ("local", "ray")


def _resources(value: Any) -> dict[str, float]:
    """``{name: amount > 0}``; amounts above 1 whole (Ray refuses 1.5 GPUs)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("resources_per_group", f"must be a mapping of Ray resource names to "
                                                f"amounts, such as {{GPU: 1}}, got {show(value)}")
    out: dict[str, float] = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise FieldError("resources_per_group", f"resource names must be non-empty "
                                                    f"strings, got {show(name)}")
        where = f"resources_per_group.{name}"
        if isinstance(amount, bool) or not isinstance(amount, int | float) \
                or not math.isfinite(amount) or amount <= 0:
            raise FieldError(where, f"must be a number > 0, got {show(amount)}")
        if amount > 1 and not float(amount).is_integer():
            raise FieldError(where, f"amounts above 1 must be whole (Ray), got {amount!r}")
        out[name] = float(amount)
    return out


def _env_vars(value: Any) -> dict[str, str]:
    """``{NAME: "value"}``, strings only (quote numbers in YAML)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("env_vars", f"must be a mapping of variable names to strings, "
                                     f"got {show(value)}")
    for name, text in value.items():
        if not isinstance(name, str) or not name or "=" in name:
            raise FieldError("env_vars", f"variable names must be non-empty strings without "
                                         f"'=', got {show(name)}")
        if not isinstance(text, str):
            raise FieldError(f"env_vars.{name}", f"must be a string (quote it in YAML), "
                                                 f"got {show(text)}")
    return dict(value)


@section
class ExecutorConfig:
    """The spec's ``executor:`` section (see the module notes for each field)."""

    kind: Literal["local", "ray"] = "local"
    address: NonEmptyStr | None = None
    resources_per_group: Annotated[dict[str, float], BeforeValidator(_resources)] = \
        dataclasses.field(default_factory=dict)
    max_retries: NonNegativeInt = 3
    env_vars: Annotated[dict[str, str], BeforeValidator(_env_vars)] = \
        dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        """One line: the kind and, for Ray, where and with what each group runs."""
        if self.kind == "local":
            return "local (groups one after another in this process)"
        parts = [f"address {self.address or 'local instance or $RAY_ADDRESS'}"]
        if self.resources_per_group:
            parts.append("per group " + ", ".join(
                f"{k} {v:g}" for k, v in self.resources_per_group.items()))
        parts.append(f"max_retries {self.max_retries}")
        return f"ray ({'; '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The section as plain values (for JSON)."""
        return dataclasses.asdict(self)


def parse_executor(block: Any) -> ExecutorConfig:
    """Validate a spec's ``executor:`` block (None: the local executor).

    Errors name ``executor.<field>``.
    """
    if block is None:
        return ExecutorConfig()
    return validate(ExecutorConfig, block, prefix="executor")


def resolve_executor(config: ExecutorConfig, *, executor: str | None = None,
                     ray_address: str | None = None) -> ExecutorConfig:
    """``config`` with command-line choices applied (they win over the spec).

    Parameters
    ----------
    executor : {"local", "ray"}, optional
        Replaces ``config.kind``.
    ray_address : str, optional
        Replaces ``config.address``; implies ``kind: ray`` unless ``executor`` says
        otherwise.

    Raises
    ------
    ValueError
        Naming ``executor`` or ``ray_address`` (the CLI shows them as its flags).
    """
    if executor is not None and executor not in EXECUTOR_KINDS:
        raise ValueError(f"executor: must be one of {', '.join(EXECUTOR_KINDS)}, "
                         f"got {executor!r}")
    if ray_address is not None and not ray_address.strip():
        raise ValueError("ray_address: must be a Ray address such as auto or HOST:PORT, "
                         "got an empty string")
    if ray_address is not None and executor == "local":
        raise ValueError("ray_address: only for the ray executor (drop it or use "
                         "executor ray)")
    changes: dict[str, Any] = {}
    if executor is not None:
        changes["kind"] = executor
    if ray_address is not None:
        changes.update(kind="ray", address=ray_address)
    return dataclasses.replace(config, **changes) if changes else config
