"""Exceptions shared across scalelaw."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration, sweep spec or input table is malformed.

    The message is one line and names the offending field (a dotted path such as
    ``sweep.model.width``, or a column name) together with what is allowed. The CLI
    prints it on stderr and exits with status 2.

    Examples
    --------
    >>> raise ConfigError("model.width: must be a positive integer, got -3")
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: model.width: must be a positive integer, got -3
    """
