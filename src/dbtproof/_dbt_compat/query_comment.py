"""The query comment on every statement a run sends: dbtproof's run id and dbt's invocation id.

dbt puts its ``query-comment`` (a project setting, a Jinja macro body) on every query
through the adapter's ``connections.query_header``; dbt builds a new adapter for each
invocation from ``dbt_project.yml``, which dbtproof never edits. So the comment is
installed on whatever adapter dbt has registered: by a callback of dbt's runner on the
events of an invocation (the first one after the adapter exists comes before its first
query: a connection is named, then opened, then used) and before dbtproof's own
connections (:func:`install_query_comment`). The project's own ``query-comment`` keeps
its ``append`` choice; its text is replaced while tests run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbtproof._dbt_compat.events import reading


def comment_macro(run_id: str) -> str:
    """The comment's Jinja: dbt's default fields (app, versions, profile, target, node or
    connection) plus ``dbtproof_run_id`` and ``dbt_invocation_id``, as JSON."""
    if not all(ch.isalnum() or ch in "_-" for ch in run_id):
        raise ValueError(f"run id {run_id!r} has characters a comment cannot hold")
    return (
        "{%- set c = {} -%}"
        "{%- do c.update(app='dbtproof', dbtproof_run_id='" + run_id + "', "
        "dbt_invocation_id=invocation_id, dbt_version=dbt_version, "
        "profile_name=target.get('profile_name'), target_name=target.get('target_name')) -%}"
        "{%- if node is not none -%}{%- do c.update(node_id=node.unique_id) -%}"
        "{%- else -%}{%- do c.update(connection_name=connection_name) -%}{%- endif -%}"
        "{{ return(tojson(c)) }}"
    )


@dataclass(frozen=True)
class _CommentConfig:
    """What dbt's ``MacroQueryStringSetter`` reads of a config: its ``query_comment``."""

    query_comment: Any


def _is_ours(header: Any, macro: str) -> bool:
    config = getattr(header, "config", None)
    return isinstance(config, _CommentConfig) and config.query_comment.comment == macro


def install_query_comment(adapter: Any, manifest: Any, macro: str) -> None:
    """Have *adapter* put *macro*'s comment on every query from now on (a no-op when it
    already does). The invocation id in it is dbt's current one."""
    from dbt.adapters.base.query_headers import MacroQueryStringSetter
    from dbt.adapters.contracts.connection import QueryComment
    from dbt.context.query_header import generate_query_header_context

    connections = getattr(adapter, "connections", None)
    if connections is None or manifest is None:
        return
    current = getattr(connections, "query_header", None)
    if _is_ours(current, macro):
        return
    theirs = getattr(getattr(adapter, "config", None), "query_comment", None)
    append = getattr(theirs, "append", None)
    config = _CommentConfig(QueryComment(comment=macro, append=append))
    context = generate_query_header_context(adapter.config, manifest)
    connections.query_header = MacroQueryStringSetter(config, context)  # type: ignore[arg-type]


def query_comment_callback(adapter_type: str, manifest: Any, macro: str) -> Callable[[Any], None]:
    """A callback for dbt's runner that installs *macro*'s comment on the adapter of type
    *adapter_type* as soon as the invocation has one."""
    from dbt.adapters.factory import FACTORY

    def callback(event: Any) -> None:
        adapter = FACTORY.adapters.get(adapter_type)
        if adapter is not None and not _is_ours(
            getattr(adapter.connections, "query_header", None), macro
        ):
            install_query_comment(adapter, manifest, macro)

    return reading((), callback)  # on every event, whatever it says
