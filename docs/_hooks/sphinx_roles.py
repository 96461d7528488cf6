"""Griffe extension: dbtproof's docstrings, written for Sphinx and ``help()``, read as Markdown.

mkdocstrings renders docstrings as Markdown. dbtproof's use two reStructuredText forms that
Markdown would show as typed: cross-reference roles (``:class:`~dbtproof.DbtRunError```,
``:meth:`build```), shown here as code (the last part of the name when it starts with ``~``, as
Sphinx shows it), and a paragraph ending in ``::`` before an indented example, whose ``::`` is
one colon in Markdown (the indented lines are a code block already).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _role(match: re.Match[str]) -> str:
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"`{name}`"


def as_markdown(text: str) -> str:
    """*text* with roles as code spans and ``::`` before a literal block as ``:``."""
    return LITERAL_BLOCK.sub(":", ROLE.sub(_role, text))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring Griffe loads with :func:`as_markdown`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Griffe's hook, once per object loaded."""
        if obj.docstring is not None:
            obj.docstring.value = as_markdown(obj.docstring.value)
