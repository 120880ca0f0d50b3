"""A griffe extension for the API pages: fence doctest examples as ``pycon`` code blocks.

The project's docstrings put ``>>>`` examples directly under ``Example:`` (not indented), which
Google-style parsing reads as plain Markdown: ``>>>`` would become nested block quotes and
``x["a"]`` a link reference. Wrapping each run of doctest lines (prompts and their output, up
to a blank line) in a fence renders them as code. Used by `mkdocs.yml`; no effect on the code.
"""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    """Wrap every block of ``>>>`` lines and their output in a ``pycon`` fence.

    Example:
    >>> fence_doctests("Example:\\n>>> 1 + 1\\n2\\n\\nAfter.").splitlines()
    ['Example:', '```pycon', '>>> 1 + 1', '2', '```', '', 'After.']
    """
    out, in_block, in_fence = [], False, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if not in_fence and not in_block and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            in_block = True
        elif in_block and not stripped:
            out.append(f"{indent}```")
            in_block = False
        out.append(line)
    if in_block:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every object's docstring as it is loaded."""

    def on_instance(self, *, obj, **kwargs) -> None:  # griffe's hook for every object
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
