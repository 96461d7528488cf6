"""``dbtproof doctor``'s live test: connect as a test run would, and say as whom.

The project is parsed with a derived profile, as a run's (the namespace's schema, on
DuckDB a database file of its own in a temporary folder, so the user's file is never
touched), with the credential providers exporting their tokens. Then, on one
connection: the warehouse identity (current user / role), on PostgreSQL whether the server is a
protected target's under another spelling (then nothing is created), whether it can create a
schema (a namespace-like one is created and dropped, so no run's guard mistakes it for a
breach and ``dbtproof clean`` recognises it if the drop fails), and warnings when the
identity is a superuser or owns, or may create in, a protected target's schema.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dbtproof.cli.doctor.report import Report, one_line
from dbtproof.credentials import CredentialSet
from dbtproof.errors import DbtproofError, ProtectedTargetError
from dbtproof.project.discovery import (
    DbtProject,
    ProfileTarget,
    minted_settings,
    write_derived_profiles,
)
from dbtproof.project.servers import ServerFacts
from dbtproof.project.targets import (
    DEFAULT_PROTECTED_PATTERNS,
    check_protected_server,
    namespace_overrides,
    protected_schemas,
    rules_for,
)
from dbtproof.safety.access import protected_rights_sql
from dbtproof.safety.namespace import DEFAULT_PREFIX, new_run_id
from dbtproof.session.runner import DbtRunner

#: PostgreSQL / Redshift: who the connection is and what it may do.
_POSTGRES_IDENTITY = (
    "select current_user as current_user, session_user as session_user, r.rolsuper as "
    "superuser, r.rolcreaterole as createrole from pg_roles r where r.rolname = current_user"
)
#: Redshift: the same, from its catalog.
_REDSHIFT_IDENTITY = (
    "select current_user as current_user, usesuper as superuser from pg_user "
    "where usename = current_user"
)
#: Snowflake roles that may do anything in the account.
_SNOWFLAKE_ADMIN_ROLES = frozenset({"ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN", "ORGADMIN"})


def check_connection(
    report: Report,
    project: DbtProject,
    target: ProfileTarget,
    credentials: CredentialSet,
    cli_vars: dict[str, Any],
    allow_protected: bool = False,
) -> None:
    """Connect with the target as a run would and report identity and rights; on a
    protected target's server (PostgreSQL, however spelled) create nothing unless
    *allow_protected*."""
    from dbtproof import _dbt_compat as compat

    namespace = new_run_id(DEFAULT_PREFIX)
    with tempfile.TemporaryDirectory(prefix="dbtproof-doctor-") as tmp:
        workdir = Path(tmp)

        def render(value: Any) -> Any:
            return compat.render_profile_value(value, cli_vars)

        overrides = namespace_overrides(
            target.adapter_type, namespace, target.raw_output, render, workdir
        )
        profiles_dir = write_derived_profiles(target, overrides, workdir / "profile")
        runner = DbtRunner(
            project_dir=project.root,
            profiles_dir=profiles_dir,
            profile=target.profile_name,
            target=target.target_name,
            target_path=workdir / "target",
            log_path=workdir / "logs",
            vars=cli_vars,
            credentials=credentials,
        )
        try:
            manifest = runner.parse()
        except DbtproofError as exc:
            report.add("connection", "error", one_line(exc))
            return
        config = compat.registered_runtime_config(target.adapter_type)
        adapter = compat.adapter_for(config, manifest)
        credentials.render_onto(
            adapter.config.credentials, minted_settings(target, credentials.variables), cli_vars
        )
        database = getattr(config.credentials, "database", None)
        try:
            with compat.connection(adapter, "dbtproof_doctor"):
                _live(report, adapter, target, database, namespace, render, allow_protected)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises, it is reported
            report.add(
                "connection",
                "error",
                f"cannot connect to target '{target.target_name}': {one_line(exc)}. Check the "
                f"profile's settings and the variables above",
            )
        finally:
            compat.close_adapter_connections(adapter)


def _live(
    report: Report,
    adapter: Any,
    target: ProfileTarget,
    database: Any,
    namespace: str,
    render: Any,
    allow_protected: bool,
) -> None:
    """The checks on one open connection."""
    from dbtproof import _dbt_compat as compat

    compat.fetch(adapter, "select 1 as ok")
    report.add("connection", "ok", f"connected to target '{target.target_name}'")
    identity = _identity(report, adapter, target.adapter_type)
    if target.adapter_type == "postgres" and not _outside_protected_servers(
        report, adapter, target, render, allow_protected
    ):
        return
    try:
        compat.ensure_schema(adapter, database, namespace)
        compat.drop_schemas(
            adapter, database, [namespace], rules_for(target.adapter_type).drop_cascades
        )
    except Exception as exc:  # noqa: BLE001 - the warehouse's refusal, whatever its class
        compat.rollback_if_open(adapter)
        report.add(
            "connection",
            "error",
            f"the identity cannot create a schema{_in(database)}: {one_line(exc)}. A test run "
            f"creates one namespace (schema) per run: grant the identity CREATE on the database",
            can_create_schema=False,
        )
    else:
        report.add(
            "connection",
            "ok",
            f"may create a schema{_in(database)} (created and dropped {namespace})",
            can_create_schema=True,
        )
    if target.adapter_type == "postgres" and identity is not None:
        _production_schemas(report, adapter, target, render)


def _outside_protected_servers(
    report: Report, adapter: Any, target: ProfileTarget, render: Any, allow_protected: bool
) -> bool:
    """PostgreSQL: False (an error) when the server that answered is a protected target's,
    with its database, however the profile spells its host; allowed, a warning."""
    from dbtproof import _dbt_compat as compat

    facts = ServerFacts.read(lambda sql: compat.fetch(adapter, sql)[1])
    try:
        check_protected_server(
            target.profile_name,
            target.target_name,
            target.profiles_path,
            target.profile_outputs or {target.target_name: target.raw_output},
            list(DEFAULT_PROTECTED_PATTERNS),
            render,
            facts,
        )
    except ProtectedTargetError as exc:
        if allow_protected:
            report.add("connection", "warning", f"{exc} (allowed by --allow-protected-target)")
            return True
        report.add("connection", "error", f"{exc} Nothing was created there.")
        return False
    return True


def _in(database: Any) -> str:
    return f" in database {database}" if database else ""


def _identity(report: Report, adapter: Any, adapter_type: str) -> dict[str, Any] | None:
    """Report who the connection is; warn when it may do anything."""
    from dbtproof import _dbt_compat as compat

    if adapter_type == "duckdb":
        report.add(
            "connection",
            "info",
            "identity: DuckDB has no users; tests run on a database file of their own",
        )
        return None
    sql = {
        "postgres": _POSTGRES_IDENTITY,
        "redshift": _REDSHIFT_IDENTITY,
        "snowflake": "select current_user() as current_user, current_role() as current_role",
    }.get(adapter_type, "select current_user as current_user")
    try:
        columns, rows = compat.fetch(adapter, sql)
    except Exception as exc:  # noqa: BLE001 - a warehouse without these functions
        compat.rollback_if_open(adapter)
        report.add("connection", "info", f"identity: unknown ({one_line(exc)})")
        return None
    identity = dict(zip([c.lower() for c in columns], rows[0], strict=True)) if rows else {}
    shown = ", ".join(f"{key} {value}" for key, value in identity.items() if value is not None)
    report.add("connection", "ok", f"identity: {shown}", identity=identity)
    if identity.get("superuser"):
        report.add(
            "connection",
            "warning",
            f"{identity.get('current_user')} is a superuser: a test (a hook, a run_query, "
            f"dbt.execute) could change anything on the server. Give CI a role that may only "
            f"create schemas in the test database",
            superuser=True,
        )
    elif identity.get("createrole"):
        report.add(
            "connection",
            "info",
            "may create roles: runs work as a per-run role allowed only their namespace",
        )
    role = str(identity.get("current_role") or "").upper()
    if role in _SNOWFLAKE_ADMIN_ROLES:
        report.add(
            "connection",
            "warning",
            f"role {role} may do anything in the account: give CI a role that owns only a "
            f"test database",
            admin_role=role,
        )
    return identity


def _production_schemas(report: Report, adapter: Any, target: ProfileTarget, render: Any) -> None:
    """Warn when the identity owns, or may create in, a schema of a protected target."""
    from dbtproof import _dbt_compat as compat

    schemas = protected_schemas(
        target.adapter_type,
        target.target_name,
        target.profile_outputs,
        DEFAULT_PROTECTED_PATTERNS,
        render,
    )
    if not schemas:
        return
    for schema, owns, creates in compat.fetch(adapter, protected_rights_sql(schemas))[1]:
        if owns or creates:
            what = "owns" if owns else "may create in"
            report.add(
                "connection",
                "warning",
                f"the identity {what} schema {schema} of protected target "
                f"'{schemas[schema]}': a test run with it could change production data. Give "
                f"CI an identity without rights there",
                production_schema=schema,
            )
