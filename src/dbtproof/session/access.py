"""Who a dbt session acts as, and what it may do: :class:`SessionAccess`.

On PostgreSQL, the run's own role (:mod:`dbtproof.safety.run_role`: made at start when the
identity may create roles, dropped at teardown) and the identity's excess rights
(least privilege, the protected server checked once connected); on adapters with
grants, the nodes' grants planned, applied and checked (:mod:`dbtproof.safety.grants`);
``as_role``: acting as another role, with refused reads told as
:class:`~dbtproof.errors.AccessDenied`. Owned by the session (``session.access``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.errors import AccessDenied, DbtproofError, LeastPrivilegeError, RoleError
from dbtproof.project import targets
from dbtproof.project.servers import ServerFacts
from dbtproof.safety import access, faults
from dbtproof.safety import namespace as ns
from dbtproof.safety.grants import GrantsDiff, GrantsPlan, compare, map_role
from dbtproof.safety.quoting import quote
from dbtproof.safety.redaction import Secret
from dbtproof.safety.run_role import (
    RunRole,
    create_run_role,
    create_schemas,
    create_shared_role,
    disable_login,
    drop_run_role,
    enable_login,
    hand_over_owned,
    join_role,
    role_name,
)
from dbtproof.session.host import RunFacts
from dbtproof.session.settings import check_protected_server

if TYPE_CHECKING:
    from dbtproof.project.discovery import ProfileTarget
    from dbtproof.safety.relocation import Relocation
    from dbtproof.session.connections import SessionConnections
    from dbtproof.session.settings import SessionSettings


class AccessHost(RunFacts, Protocol):
    """What :class:`SessionAccess` reads of its session."""

    settings: SessionSettings
    profile_target: ProfileTarget
    connections: SessionConnections
    relocation: Relocation | None
    #: The derived profile's settings that read minted variables.
    minted_settings: dict[str, Any]

    @property
    def target(self) -> str:
        """The target's name."""

    def render(self, value: str) -> Any:
        """A profile value rendered as dbt renders it."""

    def require_runner(self) -> Any:
        """The started runner (raises before the start)."""

    def write_profile(self) -> None:
        """Write the derived profile anew (the run role's login changed)."""


class SessionAccess:
    """The run role, the identity's rights, the grants and the role acted as."""

    def __init__(self, host: AccessHost) -> None:
        self.host = host
        #: PostgreSQL: the role dbt and dbtproof work as (None: the identity's own rights).
        self.run_role: RunRole | None = None
        #: The role the profile itself sets (``role:``), which the guard and teardown keep.
        self._identity_role: str | None = None
        #: How the identity logs in, while connections log in as the run role.
        self.identity_login: compat.Login | None = None
        #: Secrets the session made (the run role's password): the run registers them.
        self.made_secrets: list[Secret] = []
        #: The run role's name while it is being set up (a failed setup's teardown drops it).
        self._role_in_setup: str | None = None
        #: The nodes' grants, mapped (None: the adapter applies no grants).
        self.grants: GrantsPlan | None = None
        #: Rights of the identity a test run does not need (PostgreSQL; the header warns).
        self.privilege_findings: list[str] = []
        #: Why the server's identity could not be read (PostgreSQL; the header warns).
        self.server_unread: str | None = None
        #: The role ``as_role`` acts as now (None: the run's own).
        self._acting_role: str | None = None
        #: The role this worker's run role joined (the run-level build's owner).
        self._joined: str | None = None

    def identity_sql(self) -> str | None:
        """The statement that makes a run role's connection act as the identity again
        (None without a run role, or when connections log in as it: none can)."""
        if self.run_role is None or self.identity_login is not None:
            return None
        return f"set role {self._identity_role}" if self._identity_role else "reset role"

    def restore_sql(self) -> str | None:
        """The statement that switches a connection :meth:`_identity_sql` switched back."""
        return f"set role {self.run_role.quoted}" if self.identity_sql() is not None else None

    def identity_name(self) -> str | None:
        """The role the identity acts as (its profile's ``role:``, else its user), unquoted."""
        login = self.identity_login or compat.login_of(self.host.runtime_config)
        role = login[2]
        if role and role.startswith('"') and role.endswith('"'):
            return role[1:-1].replace('""', '"')
        return role or login[0]

    def _identity_handle(self) -> Any:
        """A driver connection of its own (autocommit) as the identity; the caller closes it."""
        login = self.identity_login
        if login is not None:  # connections log in as the run role: log in as the identity
            return faults.open_with_retries(
                lambda: compat.open_own_connection(
                    self.host.connections.adapter(),
                    "dbtproof_identity",
                    compat.credentials_with_login(
                        self.host.connections.adapter().config.credentials, login
                    ),
                ),
                self.host.connections.retry_policy,
                "dbtproof's connection dbtproof_identity",
            )
        handle = self.host.connections.open_own("dbtproof_identity")
        statement = self.identity_sql()
        if statement is not None:
            with handle.cursor() as cursor:
                cursor.execute(statement)
        return handle

    def _namespace_schemas(self, relocation: Relocation) -> list[str]:
        """The namespace and every schema of it the relocation plan writes to."""
        same = {None, "", self.host.database}
        return [
            self.host.schema,
            *(move.to_schema for move in relocation.moves if move.to_database in same),
        ]

    def _source_reads(self, manifest: Any, relocation: Relocation) -> list[tuple[str, str]]:
        """``(schema, relation)`` (quoted) of the sources the project reads but does not write."""
        same = {None, "", self.host.database}
        reads = []
        for unique_id, source in manifest.sources.items():
            if unique_id in relocation.feeders or source.database not in same:
                continue
            if ns.belongs_to(str(source.schema), self.host.schema):
                continue
            schema = quote(str(source.schema))
            reads.append((schema, f"{schema}.{quote(str(source.identifier))}"))
        return [*reads, *self.host.settings.extra_reads]

    def start_run_role(self) -> None:
        """PostgreSQL: when the identity may create roles, switch the run to a role of its own.

        The role owns the namespace's schemas and may read the project's sources;
        the derived profile's ``role`` makes every dbt connection (and so dbtproof's)
        work as it from here on. A setup a connection fault cut short is undone and made
        again (see :meth:`_start_step`).
        """
        if not self.host.settings.run_role or self.host.relocation is None:
            return
        self._identity_role = compat.credentials_role(self.host.runtime_config)
        adapter = self.host.connections.adapter()
        schemas = self._namespace_schemas(self.host.relocation)
        reads = self._source_reads(self.host.manifest, self.host.relocation)
        self._role_in_setup = role_name(self.host.schema)

        def create() -> RunRole | None:
            handle = self.host.connections.open_own("dbtproof_run_role")
            try:
                role = create_run_role(handle, self.host.schema, schemas, reads)
                if role is not None:
                    self.made_secrets.append(enable_login(handle, role))
                return role
            finally:
                with suppress(Exception):  # a dead connection is closed already
                    handle.close()

        def undo() -> None:
            if self._role_in_setup is not None:
                self._drop_role(RunRole(self._role_in_setup))

        self.run_role = self.host.connections.start_step("the run role's setup", create, undo)
        self._role_in_setup = None
        if self.run_role is None:
            return
        try:
            self._log_in_as_run_role(adapter)
        except BaseException:
            self.drop_run_role()
            raise

    def _log_in_as_run_role(self, adapter: Any) -> None:
        """Make every connection from here on log in as the run role (with its password);
        where the server refuses that login, switch them to it with ``SET ROLE`` instead."""
        role = self.run_role
        assert role is not None and role.password is not None
        login = compat.login_of(self.host.runtime_config)
        compat.use_login(self.host.runtime_config, role.name, role.password.reveal(), None)
        self.identity_login = login
        # minted user/password settings are the identity's: the run role's stay as set
        for key in ("user", "password", "role"):
            self.host.minted_settings.pop(key, None)
        compat.close_adapter_connections(adapter)
        try:
            self.host.connections.open_own("dbtproof_run_role_login").close()
        except Exception as exc:  # noqa: BLE001 - told in the header; SET ROLE then
            compat.use_login(self.host.runtime_config, login[0], login[1], role.quoted)
            self.identity_login = None
            handle = self._identity_handle()
            try:
                reason = " ".join(str(exc).split())[:200]
                disable_login(handle, role, reason)
            finally:
                handle.close()
        self.host.write_profile()
        compat.close_adapter_connections(adapter)

    def drop_run_role(self) -> None:
        """Drop the run role (what it still owns first) as the identity; also one whose
        setup failed half-way. Tried again, patiently, while the connection fails."""
        name = self.run_role.name if self.run_role is not None else self._role_in_setup
        if name is None:
            return
        patient = faults.RetryPolicy(retries=self.host.settings.connect_retries + 3)
        faults.read_with_retry(
            lambda: self._drop_role(RunRole(name)),
            lambda: None,
            f"the drop of the run role {name}",
            patient,
        )
        self.run_role = self._role_in_setup = None

    def _drop_role(self, role: RunRole) -> None:
        """Drop *role* (if it exists) and what it owns, on a connection of its own; a role
        whose setup was cut short before the identity was granted it is granted first
        (``drop owned`` needs membership)."""
        handle = self._identity_handle()
        try:
            with handle.cursor() as cursor:
                cursor.execute(
                    "select 1 from pg_roles where rolname = %s "
                    "and not pg_has_role(current_user, oid, 'member')",
                    (role.name,),
                )
                if cursor.fetchone() is not None:
                    cursor.execute(f"grant {role.quoted} to current_user")
            drop_run_role(handle, role, keep_owned=self.host.settings.keep)
        finally:
            with suppress(Exception):
                handle.close()

    def check_least_privilege(self) -> None:
        """PostgreSQL: refuse a protected target's server reached under another spelling
        (what the server says of itself, :func:`check_protected_server`); find the
        identity's rights a test run does not need (the header warns); with
        ``require_least_privilege``, refuse to start. Runs before the run role exists."""
        handle = self.host.connections.open_own("dbtproof_privilege")
        try:

            def fetch(sql: str) -> list[Any]:
                with handle.cursor() as cursor:
                    cursor.execute(sql)
                    return list(cursor.fetchall())

            facts = self._server_facts(fetch)
            if facts is not None:
                check_protected_server(
                    self.host.profile_target, self.host.settings, facts, self.host.render
                )
            protected = targets.protected_schemas(
                self.host.adapter_type,
                self.host.target,
                self.host.profile_target.profile_outputs or {},
                self.host.settings.protected_targets,
                self.host.render,
            )
            self.privilege_findings = access.identity_findings(fetch, protected)
        finally:
            handle.close()
        if self.privilege_findings and self.host.settings.require_least_privilege:
            found = "".join(f"\n  - {line}" for line in self.privilege_findings)
            raise LeastPrivilegeError(
                f"dbtproof: dbt_require_least_privilege = true, and the test identity of "
                f"target '{self.host.target}' has rights a test run does not need:{found}\n"
                f"Give CI a role that is not a superuser and may only create schemas in the "
                f"test database, or set dbt_require_least_privilege = false."
            )

    def _server_facts(self, fetch: Callable[[str], list[Any]]) -> ServerFacts | None:
        """What the server says of itself; None (the header warns: the protected targets
        were compared by host only, before connecting) when it refuses to say."""
        self.server_unread = None
        try:
            return ServerFacts.read(fetch)
        except Exception as exc:
            if faults.transient_fault(exc) is not None:
                raise  # the start step's to try again
            self.server_unread = " ".join(str(exc).split())[:200]
            return None

    def privilege_lines(self) -> list[str]:
        """The header's warnings on the identity's excess rights, and on a server that did
        not say what it is."""
        lines = [f"warning: {line}" for line in self.privilege_findings]
        if self.server_unread is not None:
            lines.append(
                f"warning: the server's identity could not be read ({self.server_unread}); "
                f"protected targets were compared by host name only"
            )
        return lines

    def prepare_grants(self) -> None:
        """Plan the nodes' grants (mapped; unknown grantees found on PostgreSQL), have dbt
        grant the mapped roles, and give every grantee USAGE on the namespace's schemas,
        which dbtproof creates (in production a DBA grants it)."""
        if not targets.rules_for(self.host.adapter_type).grants:
            return
        postgres = self.host.adapter_type == "postgres"
        implicit = targets.rules_for(self.host.adapter_type).implicit_roles

        def lookup(names: set[str]) -> set[str]:
            def fetch(sql: str) -> list[list[Any]]:
                return [list(row.values()) for row in self.host.connections.query(sql)]

            return access.existing_roles(fetch, names) | implicit

        self.grants = GrantsPlan.build(
            self.host.manifest, self.host.settings.grant_roles, lookup if postgres else None
        )
        self.grants.rewrite(self.host.manifest)
        if not postgres or not self.grants.roles or self.host.relocation is None:
            return
        schemas = self._namespace_schemas(self.host.relocation)
        if self.run_role is None:  # with a run role, it created them
            for schema in schemas:
                self.host.connections.execute_idempotent(
                    f"create schema if not exists {quote(schema)}"
                )
        for statement in access.schema_usage_statements(schemas, self.grants.roles):
            self.host.connections.execute_idempotent(statement)

    def check_grants(
        self, unique_id: str, manifest: Any = None, place_schema: str | None = None
    ) -> GrantsDiff:
        """The node's relation's privileges, read back through dbt's macros, against what
        its (mapped) grants config asks for. *manifest*: the run-level build's, whose
        schema is *place_schema* (its relation there; with a run role, read as the role
        that owns it, :meth:`shared_role`: dbt reads the grants the relation's owner gave)."""
        if self.grants is None or unique_id not in self.grants.nodes:
            raise DbtproofError(f"dbtproof: {unique_id} has no grants to check.")
        node = (self.host.manifest if manifest is None else manifest).nodes[unique_id]
        owner = self.shared_role(place_schema) if place_schema is not None else None

        def read() -> dict[str, list[str]]:
            adapter = self.host.connections.adapter()
            with compat.connection(adapter, "dbtproof_grants"):
                self.host.connections.connect(adapter, "dbtproof_grants")
                relation = compat.node_relation(adapter, self.host.runtime_config, node)
                if owner is None or self.run_role is None:
                    return compat.show_grants(adapter, relation)
                compat.execute(adapter, f"set role {quote(owner)}")
                try:
                    return compat.show_grants(adapter, relation)
                finally:
                    compat.execute(adapter, f"set role {self.run_role.quoted}")

        actual = faults.read_with_retry(
            read, self.host.connections.drop_connection, f"the grants of {unique_id}"
        )
        return compare(self.grants.nodes[unique_id].expected, actual)

    @property
    def roles_supported(self) -> bool:
        """Whether :meth:`as_role` can act as a role on this adapter."""
        return targets.rules_for(self.host.adapter_type).role_key is not None

    @contextmanager
    def as_role(self, role: str) -> Iterator[str]:
        """Run :meth:`query`, :meth:`table` and :meth:`run_model` as *role* (mapped by
        ``dbt_grant_roles``) inside the block: every connection dbtproof opens sets it,
        and the run's own role (the run role, else the profile's) comes back afterwards,
        even after an error. Yields the role acted as.

        :raises RoleError: the adapter has no roles, the role does not exist, or the
            identity may not act as it (the message names the grant that is missing).
        """
        rules = targets.rules_for(self.host.adapter_type)
        if rules.role_key is None:
            raise RoleError(
                f"dbtproof: dbt.as_role({role!r}): the {self.host.adapter_type} adapter has no "
                f"roles dbtproof can act as."
            )
        actual = map_role(self.host.settings.grant_roles, role)
        self.host.require_runner()
        if self.identity_login is not None:  # the run role may act as no other role
            handle = self._identity_handle()
        else:
            handle = self.host.connections.open_own("dbtproof_role_check")
        try:
            access.check_can_act_as(handle, actual, role)
        finally:
            handle.close()
        previous = compat.login_of(self.host.runtime_config)
        previous_acting = self._acting_role
        compat.close_adapter_connections(self.host.connections.adapter())
        # logged in as the run role, which may act as no other: as the identity instead
        user, password, _ = self.identity_login or previous
        compat.use_login(self.host.runtime_config, user, password, quote(actual))
        self._acting_role = actual
        try:
            yield actual
        finally:
            self._acting_role = previous_acting
            compat.use_login(self.host.runtime_config, *previous)
            compat.close_adapter_connections(self.host.connections.adapter())

    def denied(self, exc: BaseException, relation: str | None = None) -> AccessDenied | None:
        """The :class:`AccessDenied` of a read refused while acting as a role, else None."""
        if self._acting_role is None:
            return None
        refused = access.denied_object(exc)
        if refused is None:
            return None
        reason = next((" ".join(str(e).split()) for e in (exc.__cause__, exc) if e is not None), "")
        return AccessDenied(self._acting_role, relation or refused, reason.splitlines()[0])

    def shared_role(self, place_schema: str) -> str | None:
        """With a run role: the role that owns the run-level build's schemas (named after
        *place_schema*, ``<run id>_shared``, as the run roles are after their namespace:
        ``<run id>_shared_role``); else None (every worker is the same identity)."""
        return role_name(place_schema) if self.run_role is not None else None

    def share_run_schemas(self, place_schema: str, schemas: Sequence[str]) -> None:
        """PostgreSQL's run-level build (:mod:`dbtproof.session.shared_build`), with a run
        role: *schemas* (the ones the build writes, given before it) made as the identity,
        owned by the :meth:`shared_role` (made where missing), which this worker's run role
        joins (once). Without a run role nothing is needed: dbt makes them."""
        owner = self.shared_role(place_schema)
        if owner is None or self.run_role is None or (self._joined == owner and not schemas):
            return
        handle = self._identity_handle()
        try:
            if schemas:
                create_shared_role(handle, owner, schemas)
            join_role(handle, self.run_role, owner)
        finally:
            handle.close()
        self._joined = owner

    def hand_over_to_run(self, place_schema: str) -> None:
        """After this worker built the run-level build, with a run role: what its run role
        owns goes to the :meth:`shared_role` (its namespace too, which it still reaches as
        a member), so that its teardown leaves the build to the workers still reading it."""
        owner = self.shared_role(place_schema)
        if owner is None or self.run_role is None:
            return
        handle = self._identity_handle()
        try:
            hand_over_owned(handle, self.run_role, owner)
        finally:
            handle.close()

    def drop_shared_role(self, place_schema: str) -> None:
        """The run's last worker, at its teardown, with a run role: the :meth:`shared_role`
        dropped with what it owns (the run-level schemas; with ``keep``, they pass to the
        identity), as the identity."""
        owner = self.shared_role(place_schema)
        if owner is None:
            return
        handle = self._identity_handle()
        try:
            drop_run_role(handle, RunRole(owner), keep_owned=self.host.settings.keep)
        finally:
            handle.close()

    def create_role_schemas(self, relocation: Relocation) -> None:
        """With a run role (which may not create schemas itself), create the namespace's
        schemas *relocation* writes to, as the identity."""
        if self.run_role is None:
            return
        handle = self._identity_handle()
        try:
            create_schemas(handle, self.run_role, self._namespace_schemas(relocation))
        finally:
            handle.close()
