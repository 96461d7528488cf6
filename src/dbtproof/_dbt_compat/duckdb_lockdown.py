"""A dbt-duckdb plugin that limits the database's file access (see ``file_access.py``).

Named in the derived profile's ``plugins:``; dbt-duckdb calls
:meth:`Plugin.configure_connection` each time it opens the run's database, before the
profile's ``attach:`` statements run.
"""

from __future__ import annotations

import contextlib
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


def _list(values: Any) -> str:
    """A DuckDB list literal of strings."""
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values or []) + "]"


class Plugin(BasePlugin):
    """Sets ``allowed_directories``, ``allowed_paths``, then ``enable_external_access = false``."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """Keep the folders and files the run may touch."""
        self.directories = list(plugin_config.get("directories") or [])
        self.paths = list(plugin_config.get("paths") or [])

    def configure_connection(self, conn: Any) -> None:
        """Limit the database *conn* belongs to (once: DuckDB refuses to change it after)."""
        row = conn.execute("select current_setting('enable_external_access')").fetchone()
        if row is not None and not row[0]:
            return  # this database is limited already (another connection opened it)
        # DuckDB reads its persistent secrets (the secret directory) on the first use of
        # its secret manager: done now, so a secret dbt-duckdb creates later (1.8 creates
        # the profile's `secrets:` on each cursor) needs no file access.
        # (A secret directory it cannot read fails later, as without dbtproof, if one is used.)
        with contextlib.suppress(Exception):
            conn.execute("select count(*) from duckdb_secrets()").fetchone()
        conn.execute(f"set allowed_directories = {_list(self.directories)}")
        conn.execute(f"set allowed_paths = {_list(self.paths)}")
        conn.execute("set enable_external_access = false")
