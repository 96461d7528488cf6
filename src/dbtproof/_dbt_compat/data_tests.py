"""A data test's SQL and verdict as dbt's ``test`` materialization and test runner make them.

dbt runs a data test as ``get_test_sql(main_sql, fail_calc, warn_if, error_if)`` (the
adapter's own, dispatched macro) and turns the one row it returns (``failures``,
``should_warn``, ``should_error``) into a status and message with its test runner's
``build_test_run_result``. Both are used here as they are, so that a data test run in a
batch gets exactly the verdict ``dbt test`` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbtproof._dbt_compat.test_kwargs import test_compiler


def test_sql(adapter: Any, main_sql: str, config: Any) -> str:
    """The statement dbt's ``test`` materialization runs for a test of *config* whose
    compiled SQL is *main_sql* (no ``limit``, no ``sql_header``, failures not stored)."""
    kwargs = {
        "main_sql": main_sql,
        "fail_calc": config.get("fail_calc"),
        "warn_if": config.get("warn_if"),
        "error_if": config.get("error_if"),
        "limit": None,
    }
    return str(adapter.execute_macro("get_test_sql", kwargs=kwargs))


def test_verdict(
    node: Any, failures: Any, should_warn: Any, should_error: Any
) -> tuple[str, str | None, int]:
    """dbt's status (``pass``, ``warn``, ``fail``), message and failure count of the data
    test *node* whose ``get_test_sql`` returned this row, as dbt's test runner decides
    them (severity, ``warn_if``/``error_if``, ``--warn-error`` of the last invocation)."""
    from dbt.task.test import TestResultData, TestRunner

    data = {
        "failures": failures,
        "should_warn": should_warn,
        "should_error": should_error,
        "adapter_response": {},
    }
    TestResultData.validate(data)
    # build_test_run_result reads nothing of its runner but class attributes (dbt 1.8: the
    # event class that --warn-error options name): dbt's own rule, called on the class
    result = TestRunner.build_test_run_result(TestRunner, node, TestResultData.from_dict(data))  # type: ignore[arg-type]
    status = getattr(result.status, "value", result.status)
    return str(status), result.message, int(result.failures or 0)


def compile_nodes(config: Any, manifest: Any, unique_ids: Sequence[str]) -> dict[str, str]:
    """The compiled SQL of each node of *unique_ids* as ``dbt compile`` makes it (dbt's
    ``Compiler.compile_node``: its Jinja context, ``ref``/``source``, ``where``, ephemeral
    CTEs), without the task around it (a runner, a result and events per node, a file
    written; a generic test's keyword arguments rendered with each template compiled once:
    :mod:`.test_kwargs`); a node dbt cannot compile here (an error, an introspective query,
    which would need the connection ``dbt test`` opens) is left out."""
    compiler = test_compiler(config)
    found: dict[str, str] = {}
    for uid in unique_ids:
        try:
            node = compiler.compile_node(manifest.nodes[uid], manifest, {}, write=False)
        except Exception:  # noqa: BLE001 - dbt test compiles it again and says what failed
            continue
        if getattr(node, "compiled_code", None):
            found[uid] = str(node.compiled_code)
    return found
