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


class FieldError(ConfigError):
    """One field's problem: ``str(err) == f"{path}: {problem}"``, one line.

    ``path`` is the dotted field path (``train.batch_size``) or where the user wrote the
    value (``sweep['model.width'][1]``); ``problem`` says what is allowed and what was
    given. Raised by the config sections' cross-field rules, which name their field.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)
