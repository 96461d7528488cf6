"""The connections a dbt session opens: :class:`SessionConnections`.

Every connection dbtproof opens goes through dbt's adapter of the target (its
credentials rendered anew after a token was minted), is opened with retries after a
transient fault (``dbt_connect_retries``), and is watched by the run's guard. A read
whose connection died under it runs once more on a fresh connection; a write never
does. Owned by the session (``session.connections``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from dbtproof import _dbt_compat as compat
from dbtproof.compare.rows import Rows
from dbtproof.errors import AccessDenied, ConnectionFailedError, DbtproofError
from dbtproof.safety import faults
from dbtproof.safety.guard import describe_sql, watch

if TYPE_CHECKING:
    from dbtproof.safety.guard import Guard
    from dbtproof.safety.liveness import LivenessMark
    from dbtproof.session.settings import SessionSettings

T = TypeVar("T")


def _statement_failed(sql: str, exc: BaseException) -> DbtproofError:
    """The error for a statement the warehouse refused."""
    return DbtproofError(f"dbtproof: statement failed: {exc}\n--- SQL ---\n{sql}")


class ConnectionHost(Protocol):
    """What :class:`SessionConnections` reads of its session."""

    settings: SessionSettings
    guard: Guard | None
    liveness: LivenessMark
    #: The derived profile's settings that read minted variables (rendered anew).
    minted_settings: dict[str, Any]

    @property
    def runtime_config(self) -> Any:
        """dbt's ``RuntimeConfig`` of the project and target."""

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest."""

    @property
    def query_comment(self) -> str:
        """The comment on every query of the run."""

    @property
    def target(self) -> str:
        """The target's name."""

    def where(self) -> str:
        """Where the target comes from, for messages."""

    def denied(self, exc: BaseException, relation: str | None = None) -> AccessDenied | None:
        """The :class:`AccessDenied` of a read refused while acting as a role, else None."""


class SessionConnections:
    """Opens, retries and uses the session's connections."""

    def __init__(self, host: ConnectionHost) -> None:
        self.host = host

    def start_step(
        self, what: str, step: Callable[[], T], undo: Callable[[], object] = lambda: None
    ) -> T:
        """``step()``, tried again (as connections are: ``dbt_connect_retries``) after a
        transient connection fault: this thread's connection dropped at once; after the
        wait, the liveness lock renewed and ``undo()`` run as part of the next attempt (a
        server that was restarting is back by then, or the attempt fails and waits again).
        What still fails is one :class:`~dbtproof.errors.ConnectionFaultError`."""

        def again() -> None:
            self.host.liveness.renew(self.adapter())
            undo()

        return faults.start_with_retries(step, self.drop_connection, what, self.retry_policy, again)

    def _connection_facts(self) -> str:
        creds = self.host.runtime_config.credentials
        facts = []
        for key in ("host", "port", "database", "dbname", "path", "user", "role"):
            value = getattr(creds, key, None)
            if value not in (None, "") and f"{key}:" not in " ".join(facts):
                facts.append(f"{key}: {value}")
        return ", ".join(facts)

    def preflight(self) -> None:
        """Open one connection and run ``select 1``; a failure stops the run with one message."""
        try:
            self.query("select 1 as ok")
        except DbtproofError as exc:
            reason = str(exc.__cause__ or exc).strip()
            raise ConnectionFailedError(
                f"dbtproof: cannot connect to the warehouse of target '{self.host.target}'.\n"
                f"{self.host.where()}\n"
                f"  connection: {self._connection_facts()}\n"
                f"  reason: {reason}\n"
                f"Check the profile's settings and that the variables above are set, then rerun."
            ) from exc

    def adapter(self) -> Any:
        """dbt's adapter of the target (connected with the run's derived profile).

        With minted credentials, the adapter's credentials are rendered anew whenever a
        token was minted since they were last rendered, so the connection dbtproof opens
        next logs in with a token that is still valid.
        """
        adapter = compat.adapter_for(self.host.runtime_config, self.host.manifest)
        compat.install_query_comment(adapter, self.host.manifest, self.host.query_comment)
        if self.host.settings.credentials:
            self.host.settings.credentials.render_onto(
                adapter.config.credentials, self.host.minted_settings, self.host.settings.vars
            )
        return adapter

    def query(self, sql: str) -> Rows:
        """Run *sql* in the warehouse, through dbt's adapter, and return the rows.

        A query whose connection died under it runs once more on a fresh connection.
        """

        def read() -> Rows:
            adapter = self.adapter()
            try:
                with (
                    compat.connection(adapter, "dbtproof_query"),
                    watch(self.host.guard, describe_sql("dbt.query", sql)),
                ):
                    self.connect(adapter, "dbtproof_query")
                    columns, data = compat.fetch(adapter, sql)
            except DbtproofError:
                raise
            except Exception as exc:
                denied = self.host.denied(exc)
                if denied is not None:
                    raise denied from None
                raise DbtproofError(f"dbtproof: query failed: {exc}\n--- SQL ---\n{sql}") from exc
            return Rows(columns, data)

        return faults.read_with_retry(read, self.drop_connection, describe_sql("dbt.query", sql))

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, DML) and commit it (never run twice:
        a connection that dies under it is an error naming the fault)."""
        what = describe_sql("dbt.execute", sql)
        try:
            with faults.not_retried(what):
                self.statement(sql, what)
        except DbtproofError:
            raise
        except Exception as exc:
            raise _statement_failed(sql, exc) from exc

    def execute_idempotent(self, sql: str) -> None:
        """Run a statement whose second run changes nothing (``create schema if not exists``,
        ``grant``) and commit it; one whose connection died under it runs once more on a
        fresh connection, as a read does."""
        what = describe_sql("dbt.execute", sql)

        def run() -> None:
            try:
                self.statement(sql, what)
            except DbtproofError:
                raise
            except Exception as exc:
                if faults.transient_fault(exc) is not None:
                    raise  # read_with_retry's to try again
                raise _statement_failed(sql, exc) from exc

        faults.read_with_retry(run, self.drop_connection, what)

    def statement(self, sql: str, what: str) -> None:
        """Run *sql* on the session's statement connection, watched by the guard."""
        adapter = self.adapter()
        with compat.connection(adapter, "dbtproof_execute"), watch(self.host.guard, what):
            self.connect(adapter, "dbtproof_execute")
            compat.execute(adapter, sql)

    def connect(self, adapter: Any, name: str, policy: faults.RetryPolicy | None = None) -> None:
        """Open this thread's connection *name* of *adapter* now, trying again after a
        transient failure (*policy*, else ``dbt_connect_retries`` with exponential backoff);
        a refused login is not retried. Raises :class:`~dbtproof.errors.ConnectionFailedError`."""

        def attempt() -> None:
            compat.hold_connection(adapter, name)
            try:
                compat.open_now(adapter)
            except BaseException:
                compat.release_connection(adapter)
                raise

        faults.open_with_retries(
            attempt, policy or self.retry_policy, f"dbtproof's connection {name}"
        )

    def open_own(self, name: str) -> Any:
        """A driver connection of its own (autocommit; the caller closes it), opened as
        :meth:`connect` opens one."""
        return faults.open_with_retries(
            lambda: compat.open_own_connection(self.adapter(), name),
            self.retry_policy,
            f"dbtproof's connection {name}",
        )

    def drop_connection(self) -> None:
        """After a connection fault: close this thread's connection (one that died is
        dropped) and renew the run's liveness lock if its connection died too; never raises."""
        adapter = self.adapter()
        compat.release_connection(adapter)
        self.host.liveness.renew(adapter)

    @property
    def retry_policy(self) -> faults.RetryPolicy:
        return faults.RetryPolicy(retries=self.host.settings.connect_retries)

    def retried_read(self, what: str, read: Callable[[], T]) -> T:
        """``read()`` (a model run on fixtures, nothing written) on the model engine's
        connection, opened first (:meth:`connect`); run once more on a fresh connection
        when its connection died under it."""
        from dbtproof.engine.execute import CONNECTION

        def attempt() -> T:
            self.connect(self.adapter(), CONNECTION)
            return read()

        return faults.read_with_retry(attempt, self.drop_connection, what)
