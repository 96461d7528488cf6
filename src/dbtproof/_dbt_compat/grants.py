"""Grants as dbt sees them: a relation's privileges read back through the adapter's own
``get_show_grant_sql`` macro and ``standardize_grants_dict``, compared with dbt's own
``diff_of_two_dicts`` (privileges and grantees case-insensitively, as ``apply_grants`` does)."""

from __future__ import annotations

from typing import Any


def show_grants(adapter: Any, relation: Any) -> dict[str, list[str]]:
    """The privileges on *relation* as ``{privilege: [grantee, ...]}``, read on the adapter's
    open connection as dbt's ``apply_grants`` reads them (dbt-postgres leaves out what the
    connection's own role holds and what others granted)."""
    sql = adapter.execute_macro("get_show_grant_sql", kwargs={"relation": relation})
    _, table = adapter.execute(str(sql), fetch=True)
    standard = adapter.standardize_grants_dict(table)
    return {str(key): [str(grantee) for grantee in value] for key, value in standard.items()}


def grants_difference(
    first: dict[str, list[str]], second: dict[str, list[str]]
) -> dict[str, list[str]]:
    """*first* minus *second* (``{privilege: [grantee]}``), as dbt's ``diff_of_two_dicts``
    computes what to grant and what to revoke."""
    from dbt.context.base import BaseContext

    return dict(BaseContext.diff_of_two_dicts(first, second))
