"""The end of a dbt session: :class:`SessionTeardown`.

Drops everything the session created (unless ``keep``): the guard's last look at what
the run's tests wrote, the namespace's schemas (or the DuckDB file), the run's folder,
the run-level build's schemas when this is the run's last xdist worker (PostgreSQL), then
the run role, and releases the liveness mark. Owned by the session
(``session.teardown``); reads it through :class:`TeardownHost`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.project import targets
from dbtproof.safety import faults
from dbtproof.safety import namespace as ns
from dbtproof.session.host import RunFacts

if TYPE_CHECKING:
    from dbtproof.safety.guard import Guard
    from dbtproof.safety.liveness import LivenessMark
    from dbtproof.session.access import SessionAccess
    from dbtproof.session.connections import SessionConnections
    from dbtproof.session.settings import SessionSettings
    from dbtproof.session.shared_build import SharedHost, SharedPlace


class TeardownHost(RunFacts, Protocol):
    """What :class:`SessionTeardown` reads of its session."""

    settings: SessionSettings
    workdir: Path
    database_file: Path | None
    guard: Guard | None
    liveness: LivenessMark
    connections: SessionConnections
    access: SessionAccess
    shared: SharedHost
    #: Where the run-level build lives (None: this worker builds what it runs itself).
    shared_place: SharedPlace | None
    #: The start has finished (or the session started offline).
    started: bool
    #: The start reached the warehouse: a failed start's teardown drops what it made.
    in_warehouse: bool
    #: Started without a connection: nothing in the warehouse to drop.
    offline: bool


class SessionTeardown:
    """Drops what a session created; see :meth:`run`."""

    def __init__(self, host: TeardownHost) -> None:
        self.host = host

    def run(self) -> list[str]:
        """Drop everything the session created (unless ``keep``); return what was dropped/kept.

        The run's last worker (PostgreSQL) drops the run-level build's schemas too. The run
        role goes last, kept schemas (``keep``) passing to the identity.
        """
        try:
            dropped = self._drop_namespace()
            return dropped + self._drop_shared_place()
        finally:
            try:
                self.host.access.drop_run_role()
            finally:
                self.host.liveness.release()

    def _drop_namespace(self) -> list[str]:
        host = self.host
        if (not host.started and not host.in_warehouse) or host.offline:
            shutil.rmtree(host.workdir, ignore_errors=True)
            return []
        adapter = host.connections.adapter()
        self._last_guard_check()
        if host.database_file is not None:
            return self._drop_database_file(adapter, host.database_file)
        ours = self._drop_schemas(adapter, host.schema)
        compat.close_adapter_connections(adapter)
        if not host.settings.keep:
            shutil.rmtree(host.workdir, ignore_errors=True)
        return ours

    def _drop_schemas(self, adapter: Any, namespace: str) -> list[str]:
        """Drop (unless ``keep``) the schemas of *namespace*; return them, named."""
        host = self.host
        database = host.database
        # more patient than a test: the warehouse may be on its way back
        patient = faults.RetryPolicy(retries=host.settings.connect_retries + 3)

        def drop() -> list[str]:  # `drop schema if exists`: the same again if cut short
            with compat.connection(adapter, "dbtproof_teardown"):
                host.connections.connect(adapter, "dbtproof_teardown", patient)
                found = [
                    s for s in compat.list_schemas(adapter, database) if ns.belongs_to(s, namespace)
                ]
                if not host.settings.keep:
                    compat.drop_schemas(
                        adapter, database, found, targets.rules_for(host.adapter_type).drop_cascades
                    )
            return found

        ours = faults.read_with_retry(
            drop, host.connections.drop_connection, "the teardown's drop", patient
        )
        return [f"{database}.{s}" if database else s for s in sorted(ours)]

    def _drop_shared_place(self) -> list[str]:
        """PostgreSQL, the run's last worker (the last to hold the run's advisory lock):
        drop the run-level build's schemas, and with a run role the role that owns them
        (:mod:`dbtproof.session.shared_build`); return them, named. Another worker, or a
        place that is a DuckDB file (the controller removes it), drops nothing."""
        host = self.host
        place = host.shared_place
        if (
            place is None
            or place.catalog is not None
            or host.offline
            or not host.in_warehouse
            or not host.liveness.last_of_run()
        ):
            return []
        host.access.drop_shared_role(place.schema)
        adapter = host.connections.adapter()
        try:
            return self._drop_schemas(adapter, place.schema)
        finally:
            compat.close_adapter_connections(adapter)

    def _last_guard_check(self) -> None:
        """What the last tests wrote, outside any watched call; the guard closed."""
        guard = self.host.guard
        if guard is None:
            return
        try:
            with guard.deferred():
                guard.check("the run's tests (seen when the run ended)")
        except Exception as exc:
            if faults.connection_fault(exc) is None:
                raise  # a warehouse that cannot be reached now still gets the drop
        finally:
            guard.close()

    def _drop_database_file(self, adapter: Any, database_file: Path) -> list[str]:
        """DuckDB: close the run's database and remove its file (unless ``keep``)."""
        host = self.host
        host.shared.release()
        compat.close_adapter_connections(adapter)
        if not host.settings.keep:
            for path in database_file.parent.glob(database_file.name + "*"):
                path.unlink(missing_ok=True)
            shutil.rmtree(host.workdir, ignore_errors=True)
        return [str(database_file)]
