"""The properties every JUnit testcase carries (``--junitxml``): per testcase, because
suite-level properties do not survive xdist."""

from __future__ import annotations

from typing import Any


def junit_properties(
    item: Any, run_id: str, session: Any, commit: str | None
) -> list[tuple[str, str]]:
    """``(name, value)`` for *item*: the run id, the dbt node's unique id (dbt items),
    the target and namespace (once the dbt session has started) and the git commit."""
    properties = [("dbtproof_run_id", run_id)]
    unique_id = getattr(item, "unique_id", None)
    if unique_id:
        properties.append(("dbt_unique_id", str(unique_id)))
    if session is not None:
        properties += [("dbt_target", session.target), ("dbtproof_namespace", session.schema)]
    if commit:
        properties.append(("git_commit", commit))
    return properties
