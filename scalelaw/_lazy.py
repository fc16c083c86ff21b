"""Lazily imported package attributes: a package's public names, imported on first use.

A package lists its public names in a table ``{name: defining module}`` and installs the
module-level ``__getattr__`` and ``__dir__`` that :func:`lazy_exports` returns, so that
importing the package imports none of the modules behind it (``import scalelaw`` does not
import JAX). Type checkers and editors cannot follow a string table: the package mirrors
it in an ``if TYPE_CHECKING:`` block of ordinary imports (``tests/test_public_api.py``
checks that the two agree).

Examples
--------
>>> import types
>>> pkg = types.ModuleType("pkg")
>>> pkg.__getattr__, pkg.__dir__ = lazy_exports("pkg", {"dedent": "textwrap"}, vars(pkg))
>>> pkg.dedent("  x")
'x'
>>> "dedent" in vars(pkg)  # bound on first use: later lookups skip __getattr__
True
>>> pkg.undefined
Traceback (most recent call last):
...
AttributeError: module 'pkg' has no attribute 'undefined'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``exports`` load on first use.

    Parameters
    ----------
    package : str
        The package's name, for the error message (``__name__``).
    exports : mapping of str to str
        Public name -> the module that defines it (the name is read off that module).
    namespace : mutable mapping
        The package's ``globals()``: a name, once imported, is bound there.

    Returns
    -------
    (callable, callable)
        The module-level ``__getattr__`` (``AttributeError`` for a name not in
        ``exports``) and ``__dir__`` (the sorted ``namespace["__all__"]``, else the
        names of ``exports``).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", exports))

    return __getattr__, __dir__
