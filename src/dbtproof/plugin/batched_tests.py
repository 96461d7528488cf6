"""dbt data tests run many to a statement, with dbt's own compile, SQL and verdicts.

``dbt test`` runs each data test on its own: a compile, its ``test`` materialization
rendered, one statement, its result object, tens of milliseconds each. Here the tests of a
batch are compiled by dbt's compiler (``ref``, ``where``, ephemeral CTEs as ``dbt test``
compiles them, without a task's runner, result and events per test), each test's SQL is
wrapped in the adapter's own ``get_test_sql`` (its ``fail_calc``, ``warn_if`` and
``error_if``), and up to :data:`BATCH_SIZE` of those run as one ``union all`` statement
returning each test's ``failures``, ``should_warn`` and ``should_error``; dbt's test runner
turns each row into the test's status and message (:func:`dbtproof._dbt_compat.test_verdict`).

A test is left to ``dbt test`` (:func:`batchable`) when its statement is not that one query:
failures stored (``store_failures``, ``store_failures_as``, ``--dbt-store-failures``), a
``limit``, a ``sql_header``, a ``fail_calc`` other than dbt's ``count(*)`` (a sum may be
null or a decimal, which dbt's runner coerces its own way), a materialization of its own;
so is every test of a project with ``on-run-start``/``on-run-end`` hooks (``dbt test`` runs
them, and a failing one errors its tests), on an adapter other than DuckDB and PostgreSQL,
one dbt could not compile (``dbt test`` then reports dbt's error), and every test of a
statement that failed (one test's SQL error fails its whole statement).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import resource_type
from dbtproof.session.runner import NodeResult

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession

#: The most data tests one statement runs.
BATCH_SIZE = 200
#: The adapters whose data tests run in batches (others: one ``dbt test`` per batch as before).
BATCHED_ADAPTERS = frozenset({"duckdb", "postgres"})
#: Stands for a test's compiled SQL in the statement ``get_test_sql`` renders.
_MAIN_SQL = "/* dbtproof: the test's compiled SQL */"


@dataclass
class BatchedRun:
    """The data tests a batch ran, and those left to ``dbt test``."""

    #: dbt's result of each data test that ran in a batched statement.
    results: dict[str, NodeResult] = field(default_factory=dict)
    #: The data tests to run with ``dbt test``, in the order given.
    left: list[str] = field(default_factory=list)
    #: How many batched statements ran (each of up to :data:`BATCH_SIZE` tests).
    statements: int = 0


def batchable(node: Any, store_failures: bool) -> bool:
    """Whether the data test *node* runs as ``select <get_test_sql> from (<its SQL>)`` in
    ``dbt test`` (nothing stored, no ``limit``, no header, dbt's own ``fail_calc``)."""
    config = getattr(node, "config", None)
    if config is None or resource_type(node) != "test":
        return False
    return (
        not store_failures
        and config.get("store_failures") is None
        and config.get("store_failures_as") is None
        and config.get("materialized") == "test"
        and config.get("limit") is None
        and not config.get("sql_header")
        and str(config.get("fail_calc") or "").replace(" ", "").lower() == "count(*)"
    )


def has_project_hooks(manifest: Any) -> bool:
    """Whether the project (or a package) has ``on-run-start``/``on-run-end`` hooks."""
    return any(resource_type(node) == "operation" for node in manifest.nodes.values())


def run_batched(
    session: DbtSession,
    unique_ids: Sequence[str],
    *,
    store_failures: bool = False,
    manifest: Any = None,
    batch_size: int = BATCH_SIZE,
) -> BatchedRun:
    """Run the data tests *unique_ids* in batched statements where they can be; returns
    their results and the tests left to ``dbt test``. *manifest* replaces the session's
    for the compile (the run-level build's)."""
    nodes = session.manifest.nodes
    run = BatchedRun()
    if session.adapter_type not in BATCHED_ADAPTERS or has_project_hooks(session.manifest):
        run.left = list(unique_ids)
        return run
    wanted = [uid for uid in unique_ids if uid in nodes and batchable(nodes[uid], store_failures)]
    if not wanted:
        run.left = list(unique_ids)
        return run
    adapter = session.adapter()  # registered, with its macros, before dbt's compiler runs
    compiled = _compile(session, wanted, manifest)
    statements = _statements(session, adapter, wanted, compiled)
    for start in range(0, len(statements), batch_size):
        chunk = statements[start : start + batch_size]
        run.results.update(_run_chunk(session, chunk))
        run.statements += 1
    run.left = [uid for uid in unique_ids if uid not in run.results]
    return run


def _compile(session: DbtSession, unique_ids: Sequence[str], manifest: Any) -> dict[str, str]:
    """The compiled SQL of each test dbt's compiler compiled without an error."""
    return compat.compile_nodes(session.runtime_config, manifest or session.manifest, unique_ids)


def _statements(
    session: DbtSession, adapter: Any, unique_ids: Sequence[str], compiled: dict[str, str]
) -> list[tuple[str, str, str]]:
    """``(unique id, its compiled SQL, the statement dbt's test materialization runs)`` of
    each compiled test:
    ``get_test_sql`` rendered once per ``fail_calc``/``warn_if``/``error_if``."""
    nodes = session.manifest.nodes
    templates: dict[tuple[str, str, str], list[str] | None] = {}
    found = []
    for uid in unique_ids:
        sql = compiled.get(uid)
        if sql is None:
            continue
        config = nodes[uid].config
        key = (
            str(config.get("fail_calc")),
            str(config.get("warn_if")),
            str(config.get("error_if")),
        )
        if key not in templates:
            parts = compat.test_sql(adapter, _MAIN_SQL, config).split(_MAIN_SQL)
            templates[key] = parts if len(parts) == 2 else None
        template = templates[key]
        if template is not None:
            found.append((uid, sql, template[0] + sql + template[1]))
    return found


def _run_chunk(session: DbtSession, chunk: Sequence[tuple[str, str, str]]) -> dict[str, NodeResult]:
    """Run the tests of *chunk* as one statement; their results (none if it failed)."""
    union = "\nunion all\n".join(
        f"select {index} as dbtproof_test, dbtproof_verdict.*\nfrom (\n{sql}\n) dbtproof_verdict"
        for index, (_, _, sql) in enumerate(chunk)
    )
    started = time.perf_counter()
    try:
        rows = session.connections.query(union)
    except DbtproofError:  # one test's SQL fails them all: dbt test says which, and how
        return {}
    elapsed = (time.perf_counter() - started) / len(chunk)
    by_index: dict[int, dict[str, Any]] = {}
    for row in rows:
        values = {str(name).lower(): value for name, value in row.items()}
        by_index[int(values["dbtproof_test"])] = values
    if sorted(by_index) != list(range(len(chunk))) or len(rows) != len(chunk):
        return {}  # not one row per test: dbt test's own check reports it
    nodes = session.manifest.nodes
    results = {}
    for index, (uid, compiled, _) in enumerate(chunk):
        values, node = by_index[index], nodes[uid]
        try:
            status, message, failures = compat.test_verdict(
                node, values.get("failures"), values.get("should_warn"), values.get("should_error")
            )
        except Exception:  # noqa: BLE001 - a row dbt would not take: dbt test reports it
            continue
        results[uid] = NodeResult(
            uid, str(node.name), "test", status, message, failures, compiled, elapsed
        )
    return results
