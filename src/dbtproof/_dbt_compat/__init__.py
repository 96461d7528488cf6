"""Every use of dbt's internal (non-public) APIs, and only here.

dbt's public programmatic API is ``dbt.cli.main.dbtRunner``; everything else
dbtproof needs (rendering a profile value, the adapter behind the last
invocation, running SQL on it) reaches into dbt's internals. Keeping those
calls in one package means one place to fix when dbt changes: no other module of
dbtproof imports ``dbt`` (or ``dbt_common``), and this package imports it only inside
functions, so importing it is cheap.

One module per concern:

* :mod:`.invocation` — dbt's runner, the variables each command reads as flags, a
  reused manifest's compilation state, dbt's file log;
* :mod:`.profile` — a ``profiles.yml`` value or a target's credentials, as dbt reads them,
  and the adapter's credentials rendered anew with freshly minted variables;
* :mod:`.connections` — running SQL on the adapter's connections, and connections dbt
  does not manage;
* :mod:`.bulk` — rows handed to the driver of the adapter's connection as data (DuckDB:
  a registered Arrow table; PostgreSQL: a temporary table filled by ``COPY``);
* :mod:`.adapter` — the adapter: registered and ready for macros, its relations,
  schemas and incremental strategy macros;
* :mod:`.data_tests` — data tests compiled, and their statement and verdict, as dbt's
  compiler, ``test`` materialization and test runner make them;
* :mod:`.test_kwargs` — dbt's compiler for data tests, a generic test's keyword arguments
  rendered as dbt renders them, each template compiled once;
* :mod:`.grants` — a relation's grants read back as dbt reads them, and dbt's diff of two;
* :mod:`.manifest` — what ``ref()`` / ``source()`` resolve to, disabled nodes, the
  user-defined functions (dbt 1.11);
* :mod:`.columns` — column names and types of a relation, a query, a seed;
* :mod:`.context` — :class:`RenderContext`, dbt's Jinja context of one node, replaceable;
* :mod:`.macro_namespace` — dbt's macro namespace built once per package and cloned;
* :mod:`.lazy_namespace` — macros replaced in dbt-core 1.12's lazy macro namespace;
* :mod:`.expressions` — ``{{ expression }}``-only models rendered without dbt's compiler;
* :mod:`.caches` — :class:`RenderCaches`, what the renders of one engine share;
* :mod:`.introspection` — the queries a model runs while it renders, answered;
* :mod:`.exceptions` — dbt's exceptions told apart;
* :mod:`.env_file` — the ``.env`` file dbt-core 1.12 reads into the environment, read the
  same way;
* :mod:`.support` — whether the installed dbt-core is one dbtproof runs on (dbt v2 is not);
* :mod:`.query_comment` — dbtproof's run id and dbt's invocation id on every query;
* :mod:`.selection` — dbt's ``fqn`` selector method answered from an index during an
  invocation (the same nodes);
* :mod:`.graph_summary` — dbt's ``graph_summary.json`` without a ``to_dict`` per node;
* :mod:`.graph_variable` — dbt's ``graph`` context variable built once dbtproof has moved
  the nodes.

Five things replace dbt's own code, each around one invocation only, and are put back
after it: the fqn search (:mod:`.selection`), the decoding of the partial-parse file when
the same bytes were decoded ahead (:mod:`.manifest`), the graph summary
(:mod:`.graph_summary`), the ``graph`` variable's build, skipped while dbtproof parses
(:mod:`.graph_variable`), and dbt-core 1.12's reading of the ``.env`` file, done once at
start instead (:mod:`.invocation`, :mod:`.env_file`).

No module here keeps state between calls: what is cached is held by its user
(:class:`RenderCaches` by the model engine, the flag variables by
:class:`dbtproof.session.runner.DbtRunner`).

Callers use the names below: ``from dbtproof import _dbt_compat as compat``, then
``compat.fetch(...)``.

Tested on: dbt-core 1.8.10, 1.9.11, 1.10.23, 1.11.16 and 1.12.6
(``tests/unit/_dbt_compat/test_dbt_compat.py``; CI runs it on 1.8 and 1.12).
"""

from __future__ import annotations

from dbtproof._dbt_compat.adapter import (
    CteRelations,
    adapter_for,
    adapter_installed,
    adapter_type,
    drop_relation,
    drop_schemas,
    ensure_schema,
    list_schemas,
    node_relation,
    quote,
    registered_runtime_config,
    relation_exists,
    runtime_threads,
    table_relation,
)
from dbtproof._dbt_compat.bulk import can_stage, stage_rows, unstage_rows
from dbtproof._dbt_compat.caches import RenderCaches
from dbtproof._dbt_compat.cli_warnings import warnings_as_the_dbt_cli
from dbtproof._dbt_compat.columns import (
    columns_in_relation,
    describe_query,
    query_columns,
    seed_columns,
    seed_columns_quoted,
    translate_type,
)
from dbtproof._dbt_compat.connections import (
    close_adapter_connections,
    close_dedicated_connection,
    connection,
    cursor_fetch,
    execute,
    execute_dedicated,
    execute_on,
    fetch,
    fetch_dedicated,
    fetch_dedicated_rows,
    fetch_one_select,
    held_handle,
    hold_connection,
    open_dedicated_connection,
    open_now,
    open_own_connection,
    release_connection,
    rollback_if_open,
    try_advisory_lock,
)
from dbtproof._dbt_compat.context import RenderContext
from dbtproof._dbt_compat.data_tests import compile_nodes, test_sql, test_verdict
from dbtproof._dbt_compat.env_file import (
    dbt_reads_env_file,
    env_file,
    env_file_values,
    load_env_file,
)
from dbtproof._dbt_compat.events import lean_events
from dbtproof._dbt_compat.exceptions import is_dbt_exception
from dbtproof._dbt_compat.grants import grants_difference, show_grants
from dbtproof._dbt_compat.graph_summary import graph_summary, quick_graph_summary
from dbtproof._dbt_compat.graph_variable import build_graph_variable, graph_variable_deferred
from dbtproof._dbt_compat.incremental import incremental_strategy_sql
from dbtproof._dbt_compat.introspection import IntrospectiveAdapter, query_result
from dbtproof._dbt_compat.invocation import (
    dbt_runner,
    flag_env_vars,
    hide_dbt_file_logger,
    import_dbt,
    invocation_id,
    node_progress_callback,
    quiet_dbt_console,
    reset_compilation_state,
)
from dbtproof._dbt_compat.lazy_namespace import dbt_is_lazy as lazy_macro_namespace
from dbtproof._dbt_compat.manifest import (
    disabled_nodes,
    functions,
    load_parse,
    lookup_ref,
    parse_inputs,
    parse_projects,
    partial_parse_read_ahead,
    read_partial_parse,
    resolve_ref,
    resolve_source,
    save_parse,
)
from dbtproof._dbt_compat.profile import (
    Login,
    credentials_role,
    credentials_with_login,
    login_of,
    parse_profile,
    refresh_credentials,
    render_profile_value,
    use_duckdb_plugin,
    use_login,
    use_role,
    with_credentials,
)
from dbtproof._dbt_compat.query_comment import (
    comment_macro,
    install_query_comment,
    query_comment_callback,
)
from dbtproof._dbt_compat.selection import indexed_fqn_selection
from dbtproof._dbt_compat.test_edges import build_without_test_edges, selects_no_test

#: dbt-core versions this package was tested against.
TESTED_DBT_VERSIONS = ("1.8", "1.9", "1.10", "1.11", "1.12")


def dbt_version() -> str:
    """The installed dbt-core version, e.g. ``"1.11.16"``."""
    from importlib.metadata import version

    return version("dbt-core")


__all__ = (
    "compile_nodes",
    "test_sql",
    "test_verdict",
    "TESTED_DBT_VERSIONS",
    "CteRelations",
    "IntrospectiveAdapter",
    "RenderCaches",
    "RenderContext",
    "adapter_for",
    "adapter_installed",
    "adapter_type",
    "can_stage",
    "close_adapter_connections",
    "close_dedicated_connection",
    "columns_in_relation",
    "comment_macro",
    "connection",
    "credentials_role",
    "credentials_with_login",
    "Login",
    "login_of",
    "cursor_fetch",
    "dbt_runner",
    "dbt_version",
    "dbt_reads_env_file",
    "env_file",
    "env_file_values",
    "load_env_file",
    "lazy_macro_namespace",
    "describe_query",
    "disabled_nodes",
    "load_parse",
    "parse_inputs",
    "parse_projects",
    "partial_parse_read_ahead",
    "read_partial_parse",
    "save_parse",
    "drop_relation",
    "drop_schemas",
    "ensure_schema",
    "execute",
    "execute_on",
    "fetch",
    "fetch_one_select",
    "flag_env_vars",
    "functions",
    "grants_difference",
    "held_handle",
    "hide_dbt_file_logger",
    "hold_connection",
    "import_dbt",
    "quiet_dbt_console",
    "warnings_as_the_dbt_cli",
    "incremental_strategy_sql",
    "install_query_comment",
    "invocation_id",
    "node_progress_callback",
    "is_dbt_exception",
    "list_schemas",
    "lookup_ref",
    "node_relation",
    "open_dedicated_connection",
    "open_now",
    "execute_dedicated",
    "fetch_dedicated",
    "fetch_dedicated_rows",
    "open_own_connection",
    "indexed_fqn_selection",
    "build_without_test_edges",
    "selects_no_test",
    "lean_events",
    "graph_summary",
    "build_graph_variable",
    "graph_variable_deferred",
    "quick_graph_summary",
    "parse_profile",
    "query_columns",
    "query_comment_callback",
    "query_result",
    "quote",
    "refresh_credentials",
    "registered_runtime_config",
    "relation_exists",
    "release_connection",
    "render_profile_value",
    "reset_compilation_state",
    "resolve_ref",
    "resolve_source",
    "rollback_if_open",
    "runtime_threads",
    "seed_columns",
    "show_grants",
    "seed_columns_quoted",
    "translate_type",
    "stage_rows",
    "table_relation",
    "try_advisory_lock",
    "unstage_rows",
    "use_duckdb_plugin",
    "use_login",
    "use_role",
    "with_credentials",
)
