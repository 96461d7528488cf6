"""Names and strings in the catalog SQL dbtproof writes itself (PostgreSQL and DuckDB).

For statements on the warehouse's catalog — drops of breaches, run roles, the doctor's
checks — whose names come from the catalog or the namespace, never from fixture data
(fixture data goes through the engine's ``Dialect``).
"""

from __future__ import annotations


def quote(name: str) -> str:
    """*name* as a quoted identifier (``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """*text* as a standard string literal (``'it''s'``)."""
    return "'" + text.replace("'", "''") + "'"
