"""Checks of the arguments an agent passes to a tool: names, ids, short texts.

Every tool argument is typed and checked here before it reaches anything else; what
fails a check is refused with one short :class:`~dbtproof.agents.catalog.ToolRefusal`
that never repeats the argument (it may be an attempt to smuggle SQL or Jinja).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dbtproof.agents.catalog import ToolRefusal

#: What a dbt name (model, column, test) may look like when an agent passes it.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: What a proposal id may look like.
PROPOSAL_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
#: Jinja's delimiters: no text an agent passes may hold one.
JINJA = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
#: The longest free text (a description) an agent may pass.
TEXT_LIMIT = 500


def check_name(value: str, what: str) -> str:
    """*value* if it is a plain dbt name; refused otherwise."""
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise ToolRefusal(
            f"refused: {what} must be a plain name (letters, digits, underscores), "
            f"not SQL or Jinja."
        )
    return value


def check_proposal_id(value: str, known: Iterable[str]) -> str:
    """*value* if it is the id of a proposal this server made; refused otherwise."""
    if not isinstance(value, str) or PROPOSAL_ID.fullmatch(value) is None or value not in known:
        raise ToolRefusal("refused: unknown proposal id; use an id that propose_tests returned.")
    return value


def check_text(value: str, what: str) -> str:
    """*value* if it is a short plain text without Jinja or control characters."""
    if not isinstance(value, str) or len(value) > TEXT_LIMIT:
        raise ToolRefusal(f"refused: {what} must be a text of at most {TEXT_LIMIT} characters.")
    if JINJA.search(value) or any(ord(c) < 32 and c not in "\t" for c in value):
        raise ToolRefusal(f"refused: {what} may not hold Jinja delimiters or control characters.")
    return value
