"""The ``dbt`` fixture's public object: :class:`DbtFixture`.

A narrow front (as syrupy's ``SnapshotAssertion`` is) over the worker's
:class:`~dbtproof.session.session.DbtSession`: exactly the calls and attributes its reference page
documents, each with its documentation, so ``help(dbt)`` and type checkers show the
public API and nothing of the session's workings. This module is cheap to load:
dbt is loaded only when the session starts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof.engine.request import ModelRunRequest

if TYPE_CHECKING:
    from dbtproof.compare.rows import Rows, RowsView
    from dbtproof.session.runner import InvocationResult
    from dbtproof.session.session import DbtSession

Selection = str | Sequence[str] | None


class DbtFixture:
    """The dbt project under test, opened in this run's own namespace (one per xdist worker).

    Annotate the fixture with it for completion and type checking::

        from dbtproof import DbtFixture

        def test_customers(dbt: DbtFixture) -> None:
            dbt.build(select="+customers")
            assert dbt.table("customers") == [{"customer_id": 1, "number_of_orders": 2}]
    """

    __slots__ = ("_session",)

    def __init__(self, session: DbtSession) -> None:
        self._session = session

    def __repr__(self) -> str:
        session = self._session
        return (
            f"<DbtFixture project {session.project.name!r} target {session.target!r} "
            f"schema {session.schema!r}>"
        )

    # -- attributes --------------------------------------------------------------------

    @property
    def schema(self) -> str:
        """This worker's schema: the run's namespace (other schemas are ``<schema>_<name>``)."""
        return self._session.schema

    @property
    def target(self) -> str:
        """The name of the dbt target in use."""
        return self._session.target

    @property
    def adapter_type(self) -> str:
        """The target's adapter type (``duckdb``, ``postgres``, ...)."""
        return self._session.adapter_type

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest, every node already moved into this run's namespace."""
        return self._session.manifest

    # -- dbt commands ------------------------------------------------------------------

    def build(self, select: Selection = None, exclude: Selection = None,
              vars: Mapping[str, Any] | None = None, full_refresh: bool = False,
              force: bool = False, expect_fail: bool = False) -> InvocationResult:  # fmt: skip
        """``dbt build`` of the selection (models, seeds, snapshots and tests, in DAG order).

        Returns each node's status. The same selection runs once per session unless
        ``force=True``. A failing node raises :class:`dbtproof.DbtRunError` naming each
        failing node and dbt's message, unless ``expect_fail=True``. *vars* are dbt vars
        for this invocation (on top of ``--dbt-vars``).
        """
        return self._session.commands.build(
            select, exclude, _vars(vars), full_refresh, force, expect_fail
        )

    def run(self, select: Selection = None, exclude: Selection = None,
            vars: Mapping[str, Any] | None = None, full_refresh: bool = False,
            force: bool = False, expect_fail: bool = False) -> InvocationResult:  # fmt: skip
        """``dbt run`` of the selection; the arguments are :meth:`build`'s."""
        return self._session.commands.run(
            select, exclude, _vars(vars), full_refresh, force, expect_fail
        )

    def seed(self, select: Selection = None, exclude: Selection = None,
             vars: Mapping[str, Any] | None = None, full_refresh: bool = False,
             force: bool = False, expect_fail: bool = False) -> InvocationResult:  # fmt: skip
        """``dbt seed`` of the selection; the arguments are :meth:`build`'s."""
        return self._session.commands.seed(
            select, exclude, _vars(vars), full_refresh, force, expect_fail
        )

    def test(self, select: Selection = None, exclude: Selection = None,
             vars: Mapping[str, Any] | None = None, full_refresh: bool = False,
             force: bool = False, expect_fail: bool = False) -> InvocationResult:  # fmt: skip
        """``dbt test`` of the selection; the arguments are :meth:`build`'s."""
        return self._session.commands.test(
            select, exclude, _vars(vars), full_refresh, force, expect_fail
        )

    def snapshot(self, select: Selection = None, exclude: Selection = None,
                 vars: Mapping[str, Any] | None = None, full_refresh: bool = False,
                 force: bool = False, expect_fail: bool = False) -> InvocationResult:  # fmt: skip
        """``dbt snapshot`` of the selection; the arguments are :meth:`build`'s."""
        return self._session.commands.snapshot(
            select, exclude, _vars(vars), full_refresh, force, expect_fail
        )

    # -- reading and writing -----------------------------------------------------------

    def query(self, sql: str) -> Rows:
        """The rows of *sql*, run in the warehouse through dbt's adapter connection."""
        return self._session.connections.query(sql)

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, DML) and commit it.

        Unqualified names land in the namespace; a write outside it is a breach
        (named, undone and failed).
        """
        self._session.connections.execute(sql)

    def table(self, name: str) -> Rows:
        """All rows of the model, seed, snapshot or source (``"shop.raw_orders"``) *name*."""
        return self._session.commands.table(name)

    def relation(self, name: str) -> str:
        """The fully qualified relation of *name* in this run's namespace."""
        return self._session.commands.relation(name)

    def node(self, name: str) -> Any:
        """The manifest node of the model, seed, snapshot or source (``"shop.raw_orders"``)
        *name*, or of a unique id."""
        return self._session.commands.node(name)

    def compile(self, name: str) -> str:
        """The SQL dbt compiles for the model (or test, or analysis) *name*."""
        return self._session.commands.compile(name)

    @contextmanager
    def as_role(self, role: str) -> Iterator[str]:
        """Run :meth:`query`, :meth:`table` and :meth:`run_model` as the warehouse *role*
        inside the block (PostgreSQL: ``SET ROLE`` on each connection), the run's own role
        back afterwards, even after an error; yields the role acted as::

            with dbt.as_role("reporter"):
                dbt.table("customers")  # granted
                with pytest.raises(dbtproof.AccessDenied):
                    dbt.table("stg_orders")  # not granted

        A read the role may not make raises :class:`dbtproof.AccessDenied` naming role and
        relation. ``dbt_grant_roles`` maps *role* as it maps grantees. dbt commands
        (``build`` ...) still run as the run's identity. Where the adapter has no roles
        (DuckDB) the test is skipped with the reason.

        :raises dbtproof.errors.RoleError: the role does not exist, or the test identity
            may not act as it (the message names the ``GRANT`` that is missing).
        """
        session = self._session
        if not session.access.roles_supported:
            from dbtproof.errors import skip_here

            skip_here(
                f"dbtproof: dbt.as_role({role!r}) needs roles, and the {session.adapter_type} "
                f"adapter has none"
            )
        with session.access.as_role(role) as actual:
            yield actual

    # -- model unit tests --------------------------------------------------------------

    def run_model(
        self,
        model: Any,
        given: Mapping[Any, Any] | None = None,
        *,
        vars: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        macros: Mapping[str, Any] | None = None,
        is_incremental: bool = False,
        this: Any = None,
        apply: bool = False,
        ordered: bool = False,
        approx: Any = None,
        queries: Mapping[Any, Any] | None = None,
    ) -> Rows | RowsView:
        """Run one model on fixture rows, without building anything upstream; return its rows.

        ::

            out = dbt.run_model("customers", given={
                ref("stg_orders"): [{"order_id": 1, "customer_id": 1, "amount": 10}],
                source("shop", "raw_customers"): "fixtures/raw_customers.csv",
            })
            assert out == [{"customer_id": 1, "n_orders": 1}]

        *given* maps ``ref(...)``/``source(...)`` (or a model name) to a list of dicts,
        ``[]``, a CSV file path (relative to the test file, the project or the current
        folder), CSV text, a pandas DataFrame or a pyarrow Table. Every upstream the model
        reads must be given; columns a fixture leaves out are typed NULLs. *vars* and
        *env* override ``var()``/``env_var()``, *macros* overrides macros by name
        (``"name"`` or ``"package.name"``) with a constant or a callable.
        ``is_incremental=True, this=rows`` runs the incremental branch against *this*;
        ``apply=True`` also applies the incremental strategy and returns the table after.
        With ``ordered=True`` the result compares in order (``rows.ordered``). Numbers
        compare exactly (a float within 1e-12 relative); *approx* asks for a tolerance with
        pytest.approx's meaning: ``{"rel": 1e-6}`` or ``{"abs": 0.01}`` for every column,
        ``{"fare": {"abs": 0.01}}`` per column, or ``True`` for pytest.approx's defaults.

        *queries* gives the result rows of queries the model runs while it renders
        (``run_query``, ``statement``, ``dbt_utils.get_column_values``), keyed by a
        substring of the query's SQL (whitespace and case aside) or a compiled regex::

            queries={"select distinct payment_method": [{"payment_method": "card"}]}

        Results take the forms *given* takes. A query with no given result that reads
        given inputs (or ``this``) runs on their rows; any other runs in the warehouse.
        A query that fails says how to give its result; a key that matches no query,
        or two keys matching one query, is an error.

        :raises dbtproof.errors.ModelTestError: (and subclasses) for bad input, with what to do.
        """
        caller = Path(sys._getframe(1).f_code.co_filename).parent
        return self._session.run_model(
            ModelRunRequest(
                model,
                given,
                vars=_vars(vars),
                env=dict(env) if env is not None else None,
                macros=dict(macros) if macros is not None else None,
                is_incremental=is_incremental,
                this=this,
                apply=apply,
                ordered=ordered,
                approx=approx,
                queries=dict(queries) if queries is not None else None,
                search_dirs=(caller,),
            )
        )


def _vars(vars: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(vars) if vars is not None else None
