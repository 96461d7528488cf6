"""Prevention on PostgreSQL: the run works as a role of its own, allowed only the namespace.

When the connecting identity may create roles (``rolsuper`` or ``rolcreaterole``),
:func:`create_run_role` creates a ``NOLOGIN`` role named after the worker's namespace
(``<namespace>_role``), grants it to the identity (so its connections may ``SET ROLE``),
creates the namespace's schemas owned by it, and grants it reading (``USAGE`` on the
schema, ``SELECT`` on the relation) of the sources the project reads but does not write
-- as far as the identity may grant them; what it may not is left out, and the run then
fails with PostgreSQL's own permission error, which is right. :func:`enable_login` then
lets the role log in with a random password that lives only in this process (the
derived profile reads it from a ``DBTPROOF_SECRET_*`` variable; the server is sent its
SCRAM verifier, never the password): dbt's connections (and so dbtproof's) log in as
the role itself, so ``RESET ROLE`` has nothing to go back to, and creating roles,
granting what it does not own or changing the database's settings fail like writing
to another schema does, with PostgreSQL's "permission denied". Where the server will
not let it log in (``pg_hba.conf``), connections switch to it with ``SET ROLE``
through dbt-postgres's ``role`` profile key instead, and the guard lists and drops as
the identity.

:func:`drop_run_role` drops what the role still owns and the role itself, as the identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dbtproof.errors import DbtproofError
from dbtproof.safety.namespace import MAX_IDENTIFIER, Leftover, find_leftovers
from dbtproof.safety.quoting import quote
from dbtproof.safety.redaction import Secret

#: What a run role's name adds to the namespace.
ROLE_SUFFIX = "_role"


@dataclass
class RunRole:
    """The role a run works as, and what it was granted."""

    name: str
    #: Sources' relations the identity could not grant reading of (the run may then fail).
    not_granted: list[str] = field(default_factory=list)
    #: The password it logs in with (None: connections ``SET ROLE`` to it instead).
    password: Secret | None = None
    #: Why it does not log in, when logging in as it was refused (the header says so).
    login_refused: str = ""

    @property
    def quoted(self) -> str:
        """The role's name quoted as an identifier (what ``SET ROLE`` takes)."""
        return quote(self.name)


def role_name(namespace: str) -> str | None:
    """The run role's name for *namespace*; ``None`` when it would pass the identifier limit."""
    name = f"{namespace}{ROLE_SUFFIX}"
    return name if len(name.encode()) <= MAX_IDENTIFIER else None


def may_create_roles(handle: Any) -> bool:
    """Whether the identity of the driver connection *handle* may create roles."""
    with handle.cursor() as cursor:
        cursor.execute(
            "select rolsuper or rolcreaterole from pg_roles where rolname = current_user"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def create_run_role(
    handle: Any,
    namespace: str,
    schemas: Iterable[str],
    sources: Iterable[tuple[str, str]],
) -> RunRole | None:
    """Create the run role of *namespace* on *handle* (an autocommit connection as the identity).

    *schemas* are the namespace's schemas to create, owned by the role; *sources* the
    ``(schema, relation)`` pairs (both quoted as SQL) of what the project reads and does
    not write. Returns ``None`` when the identity may not create roles, or the name
    would be too long. On failure, whatever was created is dropped again and a
    :class:`DbtproofError` says why.
    """
    name = role_name(namespace)
    if name is None or not may_create_roles(handle):
        return None
    role = RunRole(name)
    try:
        with handle.cursor() as cursor:
            cursor.execute(f"create role {role.quoted} nologin")
            cursor.execute("show server_version_num")
            version = int(cursor.fetchone()[0])
            # The identity's own connections switch to the role with SET ROLE.
            with_set = " with set true" if version >= 160000 else ""
            cursor.execute(f"grant {role.quoted} to current_user{with_set}")
        create_schemas(handle, role, schemas)
        with handle.cursor() as cursor:
            for schema, relation in dict.fromkeys(sources):
                for grant in (
                    f"grant usage on schema {schema} to {role.quoted}",
                    f"grant select on {relation} to {role.quoted}",
                ):
                    if not _try(cursor, grant) and relation not in role.not_granted:
                        role.not_granted.append(relation)
    except Exception as exc:
        drop_run_role(handle, role)
        raise DbtproofError(
            f"dbtproof: could not set up the run role {name} (the identity may create "
            f"roles, so the run works as a role allowed only its namespace): {exc}".strip()
            + "\nSet `dbt_run_role = false` in the pytest ini file to run as the identity."
        ) from exc
    return role


def enable_login(handle: Any, role: RunRole) -> Secret:
    """Let *role* log in with a new random password (held as :attr:`RunRole.password`).

    The server gets the password's SCRAM-SHA-256 verifier, computed here, so the
    password itself is in no statement (nor the server's log of it).
    """
    import secrets

    from psycopg2.extensions import encrypt_password

    password = Secret(secrets.token_urlsafe(32), f"the password of run role {role.name}")
    verifier = encrypt_password(password.reveal(), role.name, handle, "scram-sha-256")
    with handle.cursor() as cursor:
        cursor.execute(f"alter role {role.quoted} login password %s", (verifier,))
    role.password = password
    return password


def disable_login(handle: Any, role: RunRole, reason: str) -> None:
    """*role* logs in no more (its password removed); *reason* says why, for the header."""
    with handle.cursor() as cursor:
        cursor.execute(f"alter role {role.quoted} nologin password null")
    role.password = None
    role.login_refused = reason


def create_schemas(handle: Any, role: RunRole, schemas: Iterable[str]) -> None:
    """Create *schemas* (where missing) owned by *role*, as the identity of *handle*.

    The role may not create schemas itself; dbt's ``create schema if not exists`` is
    only sent for schemas missing from the catalog, so these are never sent.
    """
    with handle.cursor() as cursor:
        for schema in dict.fromkeys(schemas):
            cursor.execute(f"create schema if not exists {quote(schema)}")
            cursor.execute(f"alter schema {quote(schema)} owner to {role.quoted}")


def create_shared_role(handle: Any, name: str, schemas: Iterable[str]) -> RunRole:
    """Under ``pytest -n``, the run-level build's owner: create (where missing) the
    ``NOLOGIN`` role *name* (``<run id>_shared_role``), granted to the identity of *handle*
    (an autocommit connection as the identity), and *schemas* (where missing) owned by it.
    The workers' run roles join it (:func:`join_role`): what one worker builds there is
    then every worker's, and outlives that worker's run role."""
    role = RunRole(name)
    with handle.cursor() as cursor:
        cursor.execute("select 1 from pg_roles where rolname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(f"create role {role.quoted} nologin")
            cursor.execute("show server_version_num")
            with_set = " with set true" if int(cursor.fetchone()[0]) >= 160000 else ""
            cursor.execute(f"grant {role.quoted} to current_user{with_set}")
    create_schemas(handle, role, schemas)
    return role


def join_role(handle: Any, member: RunRole, group: str) -> None:
    """Make *member* (a worker's run role) a member of *group* (the run-level build's
    owner, :func:`create_shared_role`), on *handle* (the identity's connection); a
    :class:`DbtproofError` when *group* does not exist."""
    with handle.cursor() as cursor:
        cursor.execute("select 1 from pg_roles where rolname = %s", (group,))
        if cursor.fetchone() is None:
            raise DbtproofError(
                f"dbtproof: the role {group}, which owns the run-level build's schemas, does "
                f"not exist, so this xdist worker's run role cannot read them. Set "
                f"`dbt_shared_build = false` in the pytest ini file to build in each worker."
            )
        cursor.execute(f"grant {quote(group)} to {member.quoted}")


def hand_over_owned(handle: Any, role: RunRole, group: str) -> None:
    """Give everything *role* owns to *group* (the run-level build's owner), on *handle*
    (the identity's connection): what one worker built for every worker then outlives
    that worker's run role (whose teardown drops what it owns)."""
    with handle.cursor() as cursor:
        cursor.execute(f"reassign owned by {role.quoted} to {quote(group)}")


def _try(cursor: Any, statement: str) -> bool:
    """Run *statement*; False (and nothing else) when PostgreSQL refuses it or grants nothing."""
    import psycopg2

    notices = len(cursor.connection.notices)
    try:
        cursor.execute(statement)
    except psycopg2.Error:
        return False
    return not any("no privileges were granted" in n for n in cursor.connection.notices[notices:])


def drop_run_role(handle: Any, role: RunRole, keep_owned: bool = False) -> None:
    """Drop what *role* owns and the role itself, on *handle* (the identity's connection).

    With *keep_owned* (``--dbt-keep``), what the role owns passes to the identity instead.
    """
    with handle.cursor() as cursor:
        cursor.execute("reset role")
        cursor.execute("select 1 from pg_roles where rolname = %s", (role.name,))
        if cursor.fetchone() is None:
            return
        if keep_owned:
            cursor.execute(f"reassign owned by {role.quoted} to current_user")
        cursor.execute(f"drop owned by {role.quoted} cascade")
        cursor.execute(f"drop role {role.quoted}")


def list_leftover_roles(fetch: Any, prefix: str) -> list[Leftover]:
    """Run roles of runs with *prefix* that still exist (``schema`` holds the role's name).

    *fetch* runs a query and returns its rows (the caller's connection, as the identity).
    """
    names = [str(row[0]) for row in fetch("select rolname from pg_roles")]
    return find_leftovers([name for name in names if name.endswith(ROLE_SUFFIX)], prefix)


def drop_role_statements(name: str) -> list[str]:
    """What drops a left-over run role: what it owns (and its grants), then the role.

    ``drop owned`` needs the role's privileges: membership is taken first (a no-op for
    the identity that ran the run, which has it).
    """
    return [
        f"grant {quote(name)} to current_user",
        f"drop owned by {quote(name)} cascade",
        f"drop role {quote(name)}",
    ]
