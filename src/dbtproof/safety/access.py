"""Who may do what, on PostgreSQL: roles that exist, acting as a role, the schema usage a
run's grantees get, a refused read told apart, and the test identity's excess rights.

The catalog SQL of access rules, in one place and without dbt: each function is handed
a way to run a query (``fetch(sql) -> rows``) or a driver connection as the caller holds
it. Grants on relations are dbt's own (its ``apply_grants`` / ``get_show_grant_sql``
macros, :mod:`dbtproof.safety.grants`); dbt has no statement for schema usage or roles, so
those are written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dbtproof.errors import RoleError
from dbtproof.safety.namespace import is_run_schema
from dbtproof.safety.quoting import literal, quote

Fetch = Callable[[str], Sequence[Sequence[Any]]]

#: PostgreSQL's SQLSTATE of a refused right (``insufficient_privilege``).
INSUFFICIENT_PRIVILEGE = "42501"
_DENIED = re.compile(
    r"permission denied for (?:table|view|materialized view|relation|sequence|schema|"
    r"function|database) (\"(?:[^\"]|\"\")+\"|\S+)",
    re.IGNORECASE,
)
#: How many owned schemas a warning names before it counts the rest.
SHOWN_SCHEMAS = 5


def existing_roles(fetch: Fetch, names: Iterable[str]) -> set[str]:
    """Which of *names* are roles of the server, compared as PostgreSQL folds an unquoted
    name (casefolded); returned casefolded."""
    wanted = sorted({name.casefold() for name in names})
    if not wanted:
        return set()
    listed = ", ".join(literal(name) for name in wanted)
    rows = fetch(f"select lower(rolname) from pg_roles where lower(rolname) in ({listed})")
    return {str(row[0]) for row in rows}


def schema_usage_statements(schemas: Iterable[str], roles: Iterable[str]) -> list[str]:
    """``GRANT USAGE`` on each of *schemas* to each of *roles* (``public`` unquoted: it is
    a keyword there, not a role's name)."""
    grantees = [role if role.casefold() == "public" else quote(role) for role in roles]
    if not grantees:
        return []
    to = ", ".join(dict.fromkeys(grantees))
    return [f"grant usage on schema {quote(schema)} to {to}" for schema in dict.fromkeys(schemas)]


def check_can_act_as(handle: Any, role: str, asked: str) -> None:
    """Raise :class:`RoleError` unless the session user of *handle* (a driver connection,
    autocommit) may ``SET ROLE`` to *role* (*asked*: the name the test gave, before the
    ``dbt_grant_roles`` mapping). The handle's role is reset afterwards."""
    import psycopg2

    with handle.cursor() as cursor:
        cursor.execute("select session_user, current_user")
        login, current = cursor.fetchone()
        try:
            cursor.execute(f"set role {quote(role)}")
        except psycopg2.Error as exc:
            reason = " ".join(str(exc).split())
            cursor.execute("select 1 from pg_roles where rolname = %s", (role,))
            exists = cursor.fetchone() is not None
            raise RoleError(_cannot_act(role, asked, login, exists, reason)) from None
        cursor.execute(f"set role {quote(current)}")


def _cannot_act(role: str, asked: str, login: str, exists: bool, reason: str) -> str:
    named = f"'{asked}'" + (f" (mapped to '{role}' by dbt_grant_roles)" if role != asked else "")
    if not exists:
        return (
            f"dbtproof: cannot act as role {named}: it does not exist in the test warehouse. "
            f"Create it for CI (CREATE ROLE {quote(role)} NOLOGIN), or map it to a role "
            f"that exists: dbt_grant_roles = {asked}:<ci role> in the pytest ini file."
        )
    return (
        f"dbtproof: the test identity {login} cannot act as role {named} ({reason}). "
        f"Have an administrator run: GRANT {quote(role)} TO {quote(login)};"
    )


def denied_object(exc: BaseException) -> str | None:
    """What PostgreSQL refused *exc* the right to read (``permission denied for table x``:
    ``x``), looking through the exception's causes; None when it is no such refusal."""
    seen: set[int] = set()
    current: BaseException | None = exc
    refused = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "pgcode", None) == INSUFFICIENT_PRIVILEGE:
            refused = True
        match = _DENIED.search(str(current))
        if match:
            return match.group(1)
        current = current.__cause__ or current.__context__
    return "(a relation)" if refused else None


def protected_rights_sql(schemas: Iterable[str]) -> str:
    """For each of *schemas* that exists: its name, whether the connection's identity owns
    it (is a member of its owner) and whether it may create in it."""
    names = ", ".join(literal(schema) for schema in schemas)
    return (
        "select nspname, pg_has_role(nspowner, 'MEMBER') as owns, "
        f"has_schema_privilege(oid, 'CREATE') as creates from pg_namespace "
        f"where nspname in ({names})"
    )


def identity_findings(fetch: Fetch, protected: Mapping[str, str]) -> list[str]:
    """Rights of the connection's identity that a test run does not need, one line each:
    superuser; schemas it owns outside any dbtproof namespace (system schemas aside); the
    schemas of protected targets (*protected*: schema -> target) it owns or may create in.
    """
    findings = []
    rows = fetch("select current_user, rolsuper from pg_roles where rolname = current_user")
    who, superuser = (str(rows[0][0]), bool(rows[0][1])) if rows else ("?", False)
    if superuser:
        findings.append(
            f"the test identity {who} is a superuser: a test (a hook, a run_query, "
            f"dbt.execute) could change anything on the server"
        )
    owned = [
        str(row[0])
        for row in fetch(
            "select nspname from pg_namespace where pg_has_role(nspowner, 'MEMBER') "
            "and nspname !~ '^pg_' and nspname <> 'information_schema' order by 1"
        )
        if not is_run_schema(str(row[0]))
    ]
    if owned:
        shown = ", ".join(owned[:SHOWN_SCHEMAS])
        more = f" and {len(owned) - SHOWN_SCHEMAS} more" if len(owned) > SHOWN_SCHEMAS else ""
        findings.append(
            f"the test identity {who} owns schema(s) outside the namespace: {shown}{more}"
        )
    if protected:
        for schema, owns, creates in fetch(protected_rights_sql(protected)):
            if owns or creates:
                what = "owns" if owns else "may create in"
                findings.append(
                    f"the test identity {who} {what} schema {schema} of protected target "
                    f"'{protected[str(schema)]}'"
                )
    return findings
