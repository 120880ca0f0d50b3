"""Renamed keyword arguments: the old spelling keeps working, with a warning, for one release.

`renamed_arguments` is the one way the package renames a public argument: the old keyword
is mapped to the new one, a `DeprecationWarning` names both and the release that removes the
old one, and giving both is a `TypeError`. An old keyword may also stand for one element of
the new argument (0.1.0's ``height=`` and ``width=`` are ``image_size=(height, width)``).

Example:
>>> import warnings
>>> @renamed_arguments(directories="folders")
... def scan(folders):
...     return folders
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     scan(directories="crohme/train")
'crohme/train'
>>> str(caught[0].message)
'`scan(directories=...)` is deprecated and will be removed in 0.3.0: use `folders=...`.'
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

#: The release that drops the spellings deprecated in this one.
REMOVED_IN = "0.3.0"

F = TypeVar("F", bound=Callable[..., Any])


def deprecation_message(where: str, old: str, new: str) -> str:
    """The warning for an old keyword `old` of `where`, renamed `new`.

    Example:
    >>> deprecation_message("prepare_crohme", "source", "folders")
    '`prepare_crohme(source=...)` is deprecated and will be removed in 0.3.0: use `folders=...`.'
    """
    return (
        f"`{where}({old}=...)` is deprecated and will be removed in {REMOVED_IN}: use `{new}=...`."
    )


def renamed_arguments(**renames: str | tuple[str, int]) -> Callable[[F], F]:
    """Accept each old keyword (``old="new"``) for one release, warning that it was renamed.

    A value ``("new", i)`` makes the old keyword element ``i`` of the new argument, whose
    other elements come from the new argument's default (see the module's example).

    Args:
        **renames: old keyword -> new keyword, or (new keyword, index in it).

    Raises (from the decorated callable):
        TypeError: if an old keyword and its new one are both given.

    Example:
    >>> @renamed_arguments(height=("image_size", 0), width=("image_size", 1))
    ... def draw(*, image_size=(64, 512)):
    ...     return image_size
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     draw(width=256)
    (64, 256)
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        names = list(signature.parameters)
        where = func.__qualname__.removesuffix(".__init__")

        def given(new: str, args: tuple, kwargs: dict) -> bool:
            if new in kwargs:
                return True
            parameter = signature.parameters[new]
            positional = parameter.kind in (
                parameter.POSITIONAL_ONLY,
                parameter.POSITIONAL_OR_KEYWORD,
            )
            return positional and names.index(new) < len(args)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            parts: dict[str, dict[int, Any]] = {}
            for old, target in renames.items():
                if old not in kwargs:
                    continue
                new, index = (target, None) if isinstance(target, str) else target
                shown = new if index is None else f"{new}[{index}]"
                if given(new, args, kwargs):
                    raise TypeError(
                        f"`{where}` got both `{old}=` (deprecated) and `{new}=`; expected only "
                        f"`{new}=`. Received: {old}={kwargs[old]!r}"
                    )
                warnings.warn(
                    deprecation_message(where, old, shown), DeprecationWarning, stacklevel=2
                )
                value = kwargs.pop(old)
                if index is None:
                    kwargs[new] = value
                else:
                    parts.setdefault(new, {})[index] = value
            for new, values in parts.items():
                whole = list(signature.parameters[new].default)
                for index, value in values.items():
                    whole[index] = value
                kwargs[new] = tuple(whole)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def deprecated_attribute(old: str, new: str, owner: str) -> property:
    """A read-only property `old` that warns and returns the attribute `new`.

    Example:
    >>> class Scan:
    ...     folders = ["a"]
    ...     directories = deprecated_attribute("directories", "folders", "Scan")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     Scan().directories
    ['a']
    """

    def get(self):
        warnings.warn(
            f"`{owner}.{old}` is deprecated and will be removed in {REMOVED_IN}: "
            f"use `{owner}.{new}`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, new)

    return property(get, doc=f"Deprecated spelling of `{new}` (removed in {REMOVED_IN}).")


def moved_names(old_module: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for names that moved: each warns once per use and returns the
    name from its new module, for one release.

    Args:
        old_module: str. The module the names used to live in (named in the warning).
        moved: dict. name -> the module that holds it now.

    Example:
    >>> __getattr__ = moved_names("pkg.old", {"sqrt": "math"})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     __getattr__("sqrt")(4.0)
    2.0
    >>> str(caught[0].message)
    '`pkg.old.sqrt` is deprecated and will be removed in 0.3.0: import it from `math`.'
    """

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        import importlib

        warnings.warn(
            f"`{old_module}.{name}` is deprecated and will be removed in {REMOVED_IN}: "
            f"import it from `{moved[name]}`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
