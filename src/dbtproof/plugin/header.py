"""The run's header: project, profile, target, adapter and namespace, then what was
relocated, the identity's excess rights, the run role, DuckDB's file access, the
grants, minted credentials, and a warning when protection is off."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dbtproof.project.targets import DEFAULT_PROTECTED_PATTERNS

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession


def header(session: DbtSession, namespace: str) -> str:
    """The run's header: project, profiles.yml and its sha256, target, adapter, namespace;
    then what was relocated, and the run role."""
    target = session.profile_target
    return (
        (
            f"dbtproof: project {session.project.name} ({session.project.root}), "
            f"profiles {target.profiles_path} (sha256 {target.profiles_sha256}), "
            f"target {target.target_name}, adapter {target.adapter_type}, namespace {namespace}"
        )
        + "".join(f"\ndbtproof: relocated: {line}" for line in _relocated(session, namespace))
        + "".join(f"\ndbtproof: {line}" for line in session.access.privilege_lines())
        + "".join(f"\ndbtproof: {line}" for line in _run_role_lines(session))
        + "".join(f"\ndbtproof: {line}" for line in _file_access_lines(session))
        + "".join(f"\ndbtproof: {line}" for line in _grants_lines(session))
        + "".join(f"\ndbtproof: {line}" for line in session.profile.credential_lines())
    )


def protection_lines(session: DbtSession, config: pytest.Config) -> list[str]:
    """The header's warning when protection is off: ``dbt_protected_targets`` set empty."""
    if any(pattern.strip() for pattern in session.settings.protected_targets):
        return []
    where = f" in {config.inipath}" if config.inipath else ""
    return [
        f"WARNING: PROTECTION IS OFF: dbt_protected_targets is empty{where}, so no target is "
        f"refused, not even one named prod or sharing a production database. Remove the empty "
        f"setting to protect {', '.join(DEFAULT_PROTECTED_PATTERNS)} again."
    ]


def _relocated(session: DbtSession, namespace: str) -> list[str]:
    """The header's lines on what was relocated, in *namespace* (the xdist controller's
    header speaks for its workers: ``<run id>_gw<N>``, not its own schema)."""
    lines = session.relocation.summary() if session.relocation else []
    if namespace == session.schema:
        return lines
    return [line.replace(f"-> {session.schema}", f"-> {namespace}", 1) for line in lines]


def _grants_lines(session: DbtSession) -> list[str]:
    """The header's lines on the nodes' grants (none where the adapter applies none)."""
    return session.access.grants.header_lines() if session.access.grants is not None else []


def _file_access_lines(session: DbtSession) -> list[str]:
    """The header's line on DuckDB's file access, when dbtproof could not limit it."""
    access = session.file_access
    if access is None or not access.unlimited:
        return []
    return [
        f"warning: DuckDB file access not limited ({access.unlimited}): the run's SQL can "
        f"attach and write files outside its folder"
    ]


def _run_role_lines(session: DbtSession) -> list[str]:
    """The header's lines on the run role (PostgreSQL), if the run works as one."""
    role = session.access.run_role
    if role is None:
        return []
    how = "logs in as it" if role.password is not None else "connections SET ROLE to it"
    return [
        f"run role {role.name} (may create only in the namespace's schemas and read the "
        f"project's sources; {how})",
        *(f"run role may not read {rel}: the identity cannot grant it" for rel in role.not_granted),
        *(
            [
                f"warning: the run role cannot log in ({role.login_refused}): its SQL can "
                f"RESET ROLE back to the identity"
            ]
            if role.login_refused
            else []
        ),
    ]
