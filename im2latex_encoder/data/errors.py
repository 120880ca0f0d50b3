"""Typed errors for data files: each names the file and the reason."""

from __future__ import annotations

import os


class DataError(ValueError):
    """A data file could not be used. `path` names the file, `reason` says why.

    Args:
        path: str or PathLike. The file at fault (or a description, e.g. ``"<bytes>"``).
        reason: str. What was expected and what was found.

    Example:
    >>> str(DataError("a.inkml", "no <trace> element"))
    'a.inkml: no <trace> element'
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Pickled by the preparer's worker processes: rebuild from (path, reason), not the message.
        return type(self), (self.path, self.reason)


class InkMLError(DataError):
    """An InkML file is malformed, hostile or holds no usable strokes.

    Example:
    >>> isinstance(InkMLError("a.inkml", "truncated XML"), DataError)
    True
    """


class GroundTruthError(DataError):
    """A ground-truth file (``UI,label`` rows) is malformed.

    Example:
    >>> GroundTruthError("iso_GT.txt", "line 3: expected 'UI,label'").path
    'iso_GT.txt'
    """


class CacheError(DataError):
    """A prepared-dataset cache file is corrupt, truncated or of an unknown version.

    Example:
    >>> CacheError("train.npz", "missing array 'labels'").reason
    "missing array 'labels'"
    """
