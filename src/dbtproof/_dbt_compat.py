"""Every use of dbt's internal (non-public) APIs, and only here.

dbt's public programmatic API is ``dbt.cli.main.dbtRunner``; everything else
dbtproof needs (rendering a profile value, the adapter behind the last
invocation, running SQL on it) reaches into dbt's internals. Keeping those
calls in one module means one place to fix when dbt changes.

Tested on: dbt-core 1.8.10, 1.9.11, 1.10.23 and 1.11.16 (``tests/test_dbt_compat.py``; CI
runs it on 1.8 and 1.11).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

#: dbt-core versions this module was tested against.
TESTED_DBT_VERSIONS = ("1.8", "1.9", "1.10", "1.11")


def dbt_version() -> str:
    """The installed dbt-core version, e.g. ``"1.11.16"``."""
    from importlib.metadata import version

    return version("dbt-core")


def render_profile_value(value: str, cli_vars: dict[str, Any] | None = None) -> Any:
    """Render one ``profiles.yml`` value (``{{ env_var('X') }}`` ...) with dbt's profile context.

    A missing environment variable raises dbt's own error, which the caller turns
    into a :class:`dbtproof.DbtError`.
    """
    from dbt.config.renderer import ProfileRenderer

    _ensure_invocation_context()
    return ProfileRenderer(cli_vars or {}).render_value(value)


def _ensure_invocation_context() -> None:
    """dbt >= 1.8 reads env vars through an invocation context: set it from ``os.environ``."""
    import os

    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))


#: Variables dbt reads outside its click options that change what a run does: record and
#: replay of results, and partial-parsing test switches.
_NON_OPTION_FLAG_VARS = (
    "DBT_RECORDER_MODE",
    "DBT_RECORDER_TYPES",
    "DBT_RECORDER_FILE_PATH",
    "DBT_RECORDER_ROW_LIMIT",
    "DBT_RECORDED_FILE_PATH",
    "DBT_ENGINE_RECORDER_MODE",
    "DBT_ENGINE_RECORDER_TYPES",
    "DBT_ENGINE_RECORDER_FILE_PATH",
    "DBT_ENGINE_RECORDER_ROW_LIMIT",
    "DBT_ENGINE_RECORDED_FILE_PATH",
    "DBT_PP_TEST",
    "DBT_PP_FILE_DIFF_TEST",
    "DBT_ENGINE_PP_TEST",
    "DBT_ENGINE_PP_FILE_DIFF_TEST",
    "DBT_TEST_STATE_MODIFIED",
    "DBT_ENGINE_TEST_STATE_MODIFIED",
)
_FLAG_VARS: dict[str, list[tuple[frozenset[str], tuple[str, ...]]]] = {}


def flag_env_vars(command: str) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    """The environment variables ``dbt <command>`` reads as flags, by option.

    Each entry is ``(the option's spellings, its variables)``, walked from the envvars
    dbt's click command and its group declare (``DBT_EMPTY``, ``DBT_ENGINE_EMPTY``, ...).
    The group's options get no spellings: dbtproof gives every option after the command,
    so the group reads (and validates) its variables whatever the command line says. The
    last entry, with no spellings, holds the variables dbt reads outside its options
    (record/replay). Cached per command.
    """
    if command not in _FLAG_VARS:
        from dbt.cli.main import cli

        options: list[tuple[frozenset[str], tuple[str, ...]]] = []
        sub = cli.commands.get(command)
        params = [(param, False) for param in cli.params]
        params += [(param, True) for param in (sub.params if sub is not None else [])]
        for param, of_command in params:
            envvar = getattr(param, "envvar", None)
            if not envvar:
                continue
            names = (envvar,) if isinstance(envvar, str) else tuple(envvar)
            spellings = [*param.opts, *getattr(param, "secondary_opts", [])] if of_command else []
            options.append((frozenset(spellings), names))
        options.append((frozenset(), _NON_OPTION_FLAG_VARS))
        _FLAG_VARS[command] = options
    return _FLAG_VARS[command]


def registered_runtime_config(adapter_type: str) -> Any:
    """The ``RuntimeConfig`` of the adapter the last dbt invocation registered."""
    from dbt.adapters.factory import get_adapter_by_type

    return get_adapter_by_type(adapter_type).config


def adapter_for(config: Any, manifest: Any) -> Any:
    """The dbt adapter for *config*, registered if the last invocation left none, ready for macros.

    dbt resets its adapters at the start of every invocation, so this must be called
    again after each one; it is cheap when the adapter is already registered.
    """
    from dbt.adapters.factory import FACTORY, get_adapter, register_adapter
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.mp_context import get_mp_context

    if config.credentials.type not in FACTORY.adapters:
        register_adapter(config, get_mp_context())
    adapter = get_adapter(config)
    if getattr(adapter.config, "dependencies", None) is None and config.dependencies is not None:
        # The last invocation (`dbt ls`) registered it with a config that never loaded the
        # project's packages: adapter.dispatch would fail. Register it with ours.
        from dbt.adapters.factory import reset_adapters

        reset_adapters()
        register_adapter(config, get_mp_context())
        adapter = get_adapter(config)
    if getattr(adapter, "_dbtproof_manifest", None) is not manifest:
        adapter.set_macro_resolver(manifest)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        adapter._dbtproof_manifest = manifest
    return adapter


@contextmanager
def connection(adapter: Any, name: str = "dbtproof") -> Iterator[Any]:
    """Hold a named connection of *adapter* open for the duration of the block."""
    with adapter.connection_named(name):
        yield adapter


def fetch(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run *sql* on *adapter*'s open connection and return column names and raw rows.

    SQL adapters hand back the driver's own values (ints, Decimals, dates); other
    adapters go through dbt's agate table.
    """
    connections = adapter.connections
    if hasattr(connections, "add_query"):
        _, cursor = connections.add_query(sql, auto_begin=False)
        description = cursor.description or []
        columns = [str(col[0]) for col in description]
        data = [tuple(row) for row in cursor.fetchall()] if description else []
        return columns, data
    _, table = adapter.execute(sql, fetch=True)
    return list(table.column_names), [tuple(row.values()) for row in table.rows]


def _commit_if_open(adapter: Any) -> None:
    connection = adapter.connections.get_if_exists()
    if connection is not None and connection.transaction_open:
        adapter.connections.commit()


def execute(adapter: Any, sql: str) -> None:
    """Run a statement (DDL or DML) on *adapter*'s open connection and commit it."""
    adapter.execute(sql, auto_begin=True, fetch=False)
    _commit_if_open(adapter)


def list_schemas(adapter: Any, database: str) -> list[str]:
    """Schemas of *database*, through the adapter's own ``list_schemas`` macro."""
    return [str(s) for s in adapter.list_schemas(database)]


def drop_schemas(
    adapter: Any, database: str | None, schemas: Sequence[str], cascade: bool | None = None
) -> None:
    """Drop each schema with everything in it through the adapter's ``drop_schema``.

    Where the adapter's schema drop does not cascade (*cascade* False; by default
    :func:`dbtproof.targets.rules_for` says), the schema's relations are dropped first.
    """
    from dbtproof.targets import rules_for

    if cascade is None:
        cascade = rules_for(adapter_type(adapter)).drop_cascades
    for schema in schemas:
        relation = adapter.Relation.create(database=database, schema=schema)
        if not cascade:
            for inner in adapter.list_relations_without_caching(relation):
                adapter.drop_relation(inner)
                _commit_if_open(adapter)
        adapter.drop_schema(relation)
        _commit_if_open(adapter)


def parse_profile(profiles_dir: str, profile_name: str, target_name: str) -> Any:
    """The credentials dbt builds from *profile_name*/*target_name* in *profiles_dir*.

    The profile is read and rendered by dbt itself, so dbt's own checks run: unknown or
    duplicate keys (``dataset`` and ``schema`` on BigQuery), Spark's database == schema.
    """
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import get_flags, set_from_args

    _ensure_invocation_context()
    if not hasattr(get_flags(), "LOG_CACHE_EVENTS"):  # no dbt invocation yet in this process
        set_from_args(Namespace(), None)
    raw = read_profile(profiles_dir)
    profile = Profile.from_raw_profiles(raw, profile_name, ProfileRenderer({}), target_name)
    return profile.credentials


def open_dedicated_connection(adapter: Any, name: str) -> Any:
    """A connection of the adapter's own kind, opened with its credentials, that the
    adapter does not manage: dbt's releases and resets never close it. Close it with
    :func:`close_dedicated_connection`."""
    from dbt.adapters.contracts.connection import Connection

    credentials = adapter.config.credentials
    connection = Connection(type=credentials.type, name=name, credentials=credentials)
    return type(adapter.connections).open(connection)


def execute_on(connection: Any, sql: str) -> None:
    """Run *sql* on a dedicated connection (autocommitted where the driver allows)."""
    handle = connection.handle
    if hasattr(handle, "autocommit") and not handle.autocommit:
        handle.commit()  # what opening ran (dbt-postgres's `set role`) stays
        handle.autocommit = True
    cursor = handle.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def close_dedicated_connection(connection: Any) -> None:
    """Close a connection from :func:`open_dedicated_connection` (errors ignored)."""
    with suppress(Exception):  # closing a dead connection is not an error
        connection.handle.close()


def try_advisory_lock(adapter: Any, key: int) -> bool:
    """PostgreSQL: take the advisory lock *key* exclusively on the adapter's open
    connection if no other session holds it (shared or not); True when taken."""
    _, rows = fetch(adapter, f"select pg_try_advisory_lock({int(key)}) as taken")
    return bool(rows and rows[0][0])


def close_adapter_connections(adapter: Any) -> None:
    """Close every connection *adapter* holds (DuckDB releases its file lock)."""
    adapter.cleanup_connections()
    close_all = getattr(type(adapter.connections), "close_all_connections", None)
    if close_all is not None:
        close_all()


def hide_dbt_file_logger() -> None:
    """Keep dbt's debug file log out of pytest's log capture.

    dbt writes its log file through a non-propagating Python logger named
    ``file_log``; pytest (8+) attaches its capture handler to every such logger it
    finds, which would paste dbt's whole debug log into every failure report. The
    logger object dbt holds keeps writing to the file; it is only unlisted.
    """
    import logging

    logging.root.manager.loggerDict.pop("file_log", None)


def reset_compilation_state(manifest: Any) -> None:
    """Return every node of a reused manifest to its freshly parsed compilation state.

    dbt compiles nodes in place. A second invocation with the same manifest
    re-renders a model's SQL but skips injecting ephemeral CTEs, because the node
    still says ``extra_ctes_injected``, and the SQL then names a CTE that is not
    there. dbt's CLI never notices: it parses anew for every invocation.
    """
    for node in manifest.nodes.values():
        if getattr(node, "extra_ctes_injected", False) or getattr(node, "compiled", False):
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None
            node.compiled = False
            node.compiled_code = None


# ---------------------------------------------------------------------------
# Model unit tests (dbtproof.engine): rendering a model through dbt's Jinja runtime
# context with its refs, sources, `this`, vars, env vars and macros replaced, and the
# few adapter calls the engine needs. Tested on dbt-core 1.8.10 and 1.11.16
# (tests/test_engine*.py run on both).
# ---------------------------------------------------------------------------


def resource_type(node: Any) -> str:
    """The resource type of a manifest node as a string (``model``, ``seed``, ``source`` ...)."""
    kind = getattr(node, "resource_type", "")
    return str(getattr(kind, "value", kind))


def lookup_ref(
    manifest: Any, name: str, package: str | None, version: Any, current_project: str
) -> Any:
    """The enabled node ``ref(name, package, version)`` finds from the root project, or None."""
    from dbt.contracts.graph.manifest import Disabled

    node = manifest.resolve_ref(None, name, package, version, current_project, current_project)
    return None if node is None or isinstance(node, Disabled) else node


def resolve_ref(
    manifest: Any, node: Any, name: str, package: str | None, version: Any, current_project: str
) -> Any:
    """The node ``ref(...)`` resolves to from inside *node* (dbt's own lookup), or None."""
    from dbt.contracts.graph.manifest import Disabled

    target = manifest.resolve_ref(node, name, package, version, current_project, node.package_name)
    return None if target is None or isinstance(target, Disabled) else target


def resolve_source(
    manifest: Any, node: Any, source_name: str, table_name: str, current_project: str
) -> Any:
    """The source ``source(source_name, table_name)`` resolves to from inside *node*, or None."""
    from dbt.contracts.graph.manifest import Disabled

    target = manifest.resolve_source(source_name, table_name, current_project, node.package_name)
    return None if target is None or isinstance(target, Disabled) else target


class RenderContext:
    """dbt's runtime Jinja context of one node, with the means to replace parts of it.

    ``values`` is the dict dbt renders with (``ref``, ``source``, ``this``, ``var``,
    every macro ...). Every macro dbt builds for the context shares that one dict, so a
    name replaced in it is replaced for macros called indirectly too; ``adapter.dispatch``
    looks macros up in the context's macro namespace, which :meth:`override_macro`
    updates as well.

    With *lazy*, dbt's context is built when first needed; names given with
    :meth:`set_value`, then macros replaced with :meth:`override_macro_later`, are
    applied to it then. :meth:`render` does not build it for a model whose only Jinja
    is ``{{ expressions }}`` reading nothing but names given with :meth:`set_value` and
    ``config``: nothing else of the context can reach such a model's SQL.
    """

    def __init__(self, node: Any, config: Any, manifest: Any, lazy: bool = False) -> None:
        self.node = node
        self._config = config
        self._manifest = manifest
        self._values: dict[str, Any] | None = None
        self._namespace: Any = None
        self._pending: dict[str, Any] = {}
        self._pending_macros: list[tuple[str, Any]] = []
        self._pending_wraps: list[tuple[str, Any]] = []
        if not lazy:
            self._build()

    def _build(self) -> dict[str, Any]:
        from dbt.context.providers import RuntimeProvider

        context_class = _model_context_class()
        context = context_class(self.node, self._config, self._manifest, RuntimeProvider(), None)
        values: dict[str, Any] = context.to_dict()
        self._values, self._namespace = values, context.namespace
        values.update(self._pending)
        for name, value in self._pending_macros:
            self.override_macro(name, value)
        for name, wrap in self._pending_wraps:
            values[name] = wrap(values[name])
        self._pending, self._pending_macros, self._pending_wraps = {}, [], []
        return values

    @property
    def values(self) -> dict[str, Any]:
        """The dict dbt renders with (built now if it was not yet)."""
        return self._build() if self._values is None else self._values

    def set_value(self, name: str, value: Any) -> None:
        """Set ``values[name]``, now or when the context is built."""
        if self._values is None:
            self._pending[name] = value
        else:
            self._values[name] = value

    def override_macro_later(self, name: str, value: Any) -> None:
        """:meth:`override_macro`, now or when the context is built (found or not)."""
        if self._values is None:
            self._pending_macros.append((name, value))
        else:
            self.override_macro(name, value)

    def wrap_value(self, name: str, wrap: Any) -> None:
        """Replace dbt's ``values[name]`` by ``wrap(values[name])``, now or when the context
        is built."""
        if self._values is None:
            self._pending_wraps.append((name, wrap))
        else:
            self._values[name] = wrap(self._values[name])

    def render(self, text: str) -> str:
        """Render *text* (a model's raw SQL) in this context.

        Text whose only Jinja is ``{{ expression }}`` tags is rendered one expression at a
        time (each compiled once per session); anything else goes through dbt's
        ``get_rendered`` — the result is the same (see :func:`_expression_plan`).
        """
        from dbt.clients.jinja import get_rendered

        plan = _expression_plan(text)
        if plan is None:
            return str(get_rendered(text, self.values, self.node))
        values = self._values
        if values is None:
            values = self._without_dbt_context(plan[2])
            if values is None:
                values = self._build()
        return _render_plan(plan, values, self.node)

    def _without_dbt_context(self, names: frozenset[str]) -> dict[str, Any] | None:
        """What renders expressions reading only *names*, when dbt's context is not needed."""
        if not names <= {*self._pending, "config"}:
            return None
        if any(name.rpartition(".")[2] in names for name, _ in self._pending_macros):
            return None
        if any(name in names for name, _ in self._pending_wraps):
            return None
        values = dict(self._pending)
        if "config" in names and "config" not in values:
            # dbt's ``config`` (a RuntimeConfigObject), unless a macro takes the name.
            key = _namespace_key(self._config, self.node.package_name)
            template = _templates_for(self._manifest).get(key)
            if template is None or "config" in template.keys:
                return None
            from dbt.context.providers import RuntimeProvider

            values["config"] = RuntimeProvider().Config(self.node, None)
        return values

    def close(self) -> None:
        """Break the context's reference cycles (it cannot render or call macros after this).

        The context dict holds every macro, and every macro holds the dict: without this,
        each context waits for the cyclic garbage collector, whose full passes walk the
        whole (large) manifest.
        """
        self._pending, self._pending_macros, self._pending_wraps = {}, [], []
        if self._values is None:
            return
        self._values.clear()
        for space in self._spaces():
            space.clear()

    def _spaces(self) -> list[dict[str, Any]]:
        namespace = self._namespace
        return [
            *namespace.packages.values(),
            namespace.local_namespace,
            namespace.global_namespace,
            namespace.global_project_namespace,
        ]

    def macro_names(self) -> list[str]:
        """Every macro name the context can call, plain and ``package.name``."""
        from dbt.clients.jinja import MacroGenerator

        names: set[str] = set()
        for key, value in self.values.items():
            if isinstance(value, MacroGenerator):
                names.add(key)
            elif isinstance(value, dict) and value and not key.startswith("_"):
                members = [k for k, v in value.items() if isinstance(v, MacroGenerator)]
                names.update(f"{key}.{member}" for member in members)
        return sorted(names)

    def override_macro(self, name: str, value: Any) -> bool:
        """Make every call of the macro *name* (``name`` or ``package.name``) call *value*.

        *value* replaces the macro: it must be callable. It is replaced at the top
        level of the context, in each package's namespace (``dbt.name``,
        ``my_package.name``) and in the namespace ``adapter.dispatch`` searches.
        Returns False when no macro of that name exists.
        """
        from dbt.clients.jinja import MacroGenerator

        package, _, macro = name.rpartition(".")

        def matches(candidate: Any) -> bool:
            return isinstance(candidate, MacroGenerator) and (
                not package or candidate.macro.package_name == package
            )

        spaces: list[dict[str, Any]] = [self.values]
        spaces += [v for v in self.values.values() if isinstance(v, dict) and v is not self.values]
        spaces += list(self._namespace.packages.values())
        spaces += [
            self._namespace.local_namespace,
            self._namespace.global_namespace,
            self._namespace.global_project_namespace,
        ]
        found = False
        for space in spaces:
            if matches(space.get(macro)):
                space[macro] = value
                found = True
        return found

    def override_vars(self, overrides: dict[str, Any]) -> None:
        """Make ``var(name)`` return *overrides[name]* (strings rendered as dbt renders vars)."""
        self.values["var"] = _VarWithOverrides(self.values["var"], overrides, self.values)

    def override_env_vars(self, overrides: dict[str, str]) -> None:
        """Make ``env_var(name)`` return *overrides[name]* (as dbt's ``overrides: env_vars``)."""
        original = self.values["env_var"]

        def env_var(var: str, default: str | None = None) -> str:
            if var in overrides:
                return str(overrides[var])
            return original(var, default)

        self.values["env_var"] = env_var

    def call_macro(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the context's macro *name* with the arguments."""
        return self.values[name](*args, **kwargs)


# -- dbt's macro namespace, built once per package and cloned for each context -------
#
# dbt builds a context's macro namespace by creating one MacroGenerator per macro of the
# project, its packages and the adapter (~500), each bound to that context's dict, the
# node and the context's macro stack, then flattening the namespace into the dict
# through its slow Mapping interface: about 0.6 ms of every model's render. What the
# namespace holds depends only on the manifest's macros, the root project, the node's
# package and the adapter's internal packages; which context, node and stack each
# MacroGenerator is bound to is all that differs from one context to the next. So the
# first context of a package builds it the way dbt does, and every later one gets a
# clone: the same dicts with the same keys, holding new MacroGenerators of the same
# macros, bound to the new context, node and stack.


class _NamespaceTemplate:
    """The shape of a macro namespace dbt built, to make more of it for other contexts."""

    def __init__(
        self,
        macros: list[Any],
        spaces: dict[str, list[tuple[str, int]]],
        packages: dict[str, list[tuple[str, int]]],
        flat: list[tuple[str, str, Any]],
    ) -> None:
        #: The macro of each distinct MacroGenerator, by index.
        self.macros = macros
        #: ``global_namespace`` / ``local_namespace`` / ``global_project_namespace``:
        #: (name, generator index) in dbt's insertion order.
        self.spaces = spaces
        #: Each non-internal package's (name, generator index).
        self.packages = packages
        #: The flattened namespace (what ``dict.update(namespace)`` adds to the context):
        #: (key, "gen", index) or (key, "space"/"package", which dict).
        self.flat = flat
        #: The names the namespace puts in the context dict.
        self.keys = frozenset(key for key, _, _ in flat)

    @classmethod
    def capture(cls, namespace: Any, ctx: dict[str, Any], node: Any, stack: Any) -> Any:
        """The template of *namespace*, or None if it is not made the way this expects."""
        from dbt.clients.jinja import MacroGenerator

        index: dict[int, int] = {}
        macros: list[Any] = []

        def generator(value: Any) -> int | None:
            if type(value) is not MacroGenerator or set(vars(value)) != _GENERATOR_ATTRS:
                return None
            if value.context is not ctx or value.node is not node or value.stack is not stack:
                return None
            if id(value) not in index:
                index[id(value)] = len(macros)
                macros.append(value.macro)
            return index[id(value)]

        def items(space: Any) -> list[tuple[str, int]] | None:
            if type(space) is not dict:
                return None
            found = [(name, generator(value)) for name, value in space.items()]
            if any(i is None for _, i in found):
                return None
            return found  # type: ignore[return-value]

        spaces: dict[str, list[tuple[str, int]]] = {}
        for attr in _SPACES:
            found = items(getattr(namespace, attr, None))
            if found is None:
                return None
            spaces[attr] = found
        if type(namespace.packages) is not dict:
            return None
        packages: dict[str, list[tuple[str, int]]] = {}
        for package, space in namespace.packages.items():
            found = items(space)
            if found is None:
                return None
            packages[package] = found
        dicts = {id(getattr(namespace, attr)): ("space", attr) for attr in _SPACES}
        dicts.update({id(space): ("package", p) for p, space in namespace.packages.items()})
        flat: list[tuple[str, str, Any]] = []
        for key in namespace:
            value = namespace[key]
            if id(value) in dicts:
                flat.append((key, *dicts[id(value)]))
                continue
            position = generator(value)
            if position is None:
                return None
            flat.append((key, "gen", position))
        return cls(macros, spaces, packages, flat)

    def clone(self, ctx: dict[str, Any], node: Any, stack: Any) -> tuple[Any, dict[str, Any]]:
        """A namespace like the captured one, bound to *ctx*, *node* and *stack*, and its
        flattened form."""
        from dbt.clients.jinja import MacroGenerator
        from dbt.context.macros import MacroNamespace

        new = object.__new__
        generators = []
        for macro in self.macros:
            made = new(MacroGenerator)
            made.__dict__ = {"context": ctx, "macro": macro, "node": node, "stack": stack}
            generators.append(made)
        spaces = {
            attr: {name: generators[i] for name, i in items} for attr, items in self.spaces.items()
        }
        packages = {
            package: {name: generators[i] for name, i in items}
            for package, items in self.packages.items()
        }
        namespace = MacroNamespace(
            global_namespace=spaces["global_namespace"],
            local_namespace=spaces["local_namespace"],
            global_project_namespace=spaces["global_project_namespace"],
            packages=packages,
        )
        by_kind = {"gen": generators, "space": spaces, "package": packages}
        flat = {key: by_kind[kind][which] for key, kind, which in self.flat}
        return namespace, flat


_SPACES = ("global_namespace", "local_namespace", "global_project_namespace")
_GENERATOR_ATTRS = {"context", "macro", "node", "stack"}
#: (manifest, its macros by package) -> {(root project, package, internal packages):
#: template or None}. One manifest at a time: a new manifest (a new parse) starts anew.
_NAMESPACE_TEMPLATES: dict[str, Any] = {"manifest": None, "macros": None, "templates": {}}
_MODEL_CONTEXT: list[Any] = []


def _namespace_key(config: Any, package: str) -> tuple[str, str, tuple[str, ...]]:
    """What the macro namespace of a node of *package* depends on, besides the manifest's
    macros: the root project, the node's package, the adapter's internal packages."""
    from dbt.adapters.factory import get_adapter_package_names

    internal = tuple(get_adapter_package_names(config.credentials.type))
    return (config.project_name, package, internal)


def _templates_for(manifest: Any) -> dict[Any, Any]:
    macros = manifest.get_macros_by_package()
    cache = _NAMESPACE_TEMPLATES
    if cache["manifest"] is not manifest or cache["macros"] is not macros:
        cache.update(manifest=manifest, macros=macros, templates={})
    return cache["templates"]  # type: ignore[no-any-return]


def clear_namespace_cache() -> None:
    """Forget the macro namespaces built so far (the next context builds its own)."""
    _NAMESPACE_TEMPLATES.update(manifest=None, macros=None, templates={})


def _model_context_class() -> Any:
    """dbt's ModelContext, with its macro namespace cloned from a cached template.

    The first context of each (manifest, project, package, adapter) builds its namespace
    the way dbt does; later ones clone it. dbt versions whose namespace or context is
    not made the way the template expects get dbt's own ModelContext.
    """
    if _MODEL_CONTEXT:
        return _MODEL_CONTEXT[0]
    from dbt.context.manifest import ManifestContext
    from dbt.context.providers import ModelContext

    if ModelContext.to_dict is not ManifestContext.to_dict:
        _MODEL_CONTEXT.append(ModelContext)
        return ModelContext

    class CachedNamespaceModelContext(ModelContext):  # type: ignore[misc, valid-type]
        _dbtproof_flat: dict[str, Any] | None = None

        def _build_namespace(self) -> Any:
            templates = _templates_for(self.manifest)
            key = _namespace_key(self.config, self.search_package)
            template = templates.get(key)
            if template is not None:
                namespace, self._dbtproof_flat = template.clone(
                    self._ctx, self.model, self.macro_stack
                )
                return namespace
            namespace = super()._build_namespace()
            if key not in templates:
                templates[key] = _NamespaceTemplate.capture(
                    namespace, self._ctx, self.model, self.macro_stack
                )
            return namespace

        def to_dict(self) -> Any:
            if self._dbtproof_flat is None:
                return super().to_dict()
            # ManifestContext.to_dict, with the namespace flattened by the template.
            dct = super(ManifestContext, self).to_dict()
            dct.update(self._dbtproof_flat)
            return dct

    _MODEL_CONTEXT.append(CachedNamespaceModelContext)
    return CachedNamespaceModelContext


# -- rendering a model whose only Jinja is {{ expressions }} -----------------------
#
# dbt compiles the whole model's text into a Python function on every render (lexing,
# parsing, generating and compiling Python: about 1 ms for a 5-line model), and every
# model's text is different. Most models are SQL text with a few ``{{ ref('x') }}`` /
# ``{{ source('a', 'b') }}`` / ``{{ config(...) }}`` expressions, and those repeat from
# model to model. For such text, each expression is compiled alone, as the template
# ``{{ expression }}`` in dbt's own Jinja environment (cached by its text), and the
# pieces are rendered in order in one Jinja context — what the whole template does:
# Jinja outputs template data as is and each ``{{ }}`` as the value of its expression,
# left to right. Anything else — a ``{% %}`` or ``{# #}`` tag, whitespace control
# (``{{-``, ``-}}``), a brace inside an expression, a carriage return (Jinja turns it
# into a newline), an expression that does not compile alone — goes through dbt.

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
#: dbt's test for "this text has Jinja in it" (dbt.clients.jinja._HAS_RENDER_CHARS_PAT).
_JINJA_CHARS = re.compile(r"({[{%#]|[#}%]})")
_EXPRESSIONS: dict[str, Any] = {}
_EXPRESSIONS_MAX = 5000
_ENVIRONMENT: list[Any] = []


def _environment() -> Any:
    """dbt's Jinja environment for rendering SQL (as ``get_rendered`` makes it)."""
    if not _ENVIRONMENT:
        from dbt_common.clients.jinja import get_environment

        _ENVIRONMENT.append(get_environment(None, capture_macros=False, native=False))
    return _ENVIRONMENT[0]


def _expression_template(expression: str) -> tuple[Any, frozenset[str]] | None:
    """The compiled template ``{{ expression }}`` and the names it reads from the context,
    or None if it does not compile alone."""
    compiled = _EXPRESSIONS.get(expression)
    if compiled is None:
        import jinja2
        import jinja2.meta

        environment = _environment()
        try:
            tree = environment.parse("{{" + expression + "}}")
            names = frozenset(jinja2.meta.find_undeclared_variables(tree))
            compiled = (environment.from_string(tree), names)
        except jinja2.TemplateError:
            compiled = False
        if len(_EXPRESSIONS) >= _EXPRESSIONS_MAX:
            _EXPRESSIONS.clear()
        _EXPRESSIONS[expression] = compiled
    return compiled or None


def _expression_plan(text: str) -> tuple[list[str], list[Any], frozenset[str]] | None:
    """*text* as (template data, compiled expressions, the names they read), or None when
    it has more Jinja than ``{{ expressions }}`` (or none: dbt returns such text as is)."""
    if "{{" not in text or "\r" in text:
        return None
    source = text
    if not _environment().keep_trailing_newline and source.endswith("\n"):
        source = source[:-1]  # as Jinja's lexer does
    pieces = _EXPRESSION.split(source)
    data = pieces[0::2]
    if any(_JINJA_CHARS.search(piece) for piece in data):
        return None
    templates = []
    names: set[str] = set()
    for expression in pieces[1::2]:
        if "{" in expression or "}" in expression or expression[:1] in "-+":
            return None  # a brace (string, dict), whitespace control ({{- / {{+)
        if expression.endswith("-"):
            return None  # whitespace control (-}})
        compiled = _expression_template(expression)
        if compiled is None:
            return None
        templates.append(compiled[0])
        names |= compiled[1]
    return data, templates, frozenset(names)


def _render_plan(plan: tuple[list[str], list[Any], Any], ctx: dict[str, Any], node: Any) -> str:
    """The plan's data and expressions, rendered in order in one Jinja context of *ctx*."""
    from dbt_common.clients.jinja import catch_jinja

    data, templates, _ = plan
    environment = _environment()
    out = [data[0]]
    with catch_jinja(node):
        context = templates[0].new_context(ctx)
        for template, after in zip(templates, data[1:], strict=True):
            try:
                out.append(environment.concat(template.root_render_func(context)))
            except Exception:
                environment.handle_exception()
            out.append(after)
    return "".join(out)


def _render_expressions(text: str, ctx: dict[str, Any], node: Any) -> str | None:
    """*text* rendered in *ctx* one ``{{ expression }}`` at a time, or None when it has
    more Jinja than that (or none: dbt returns such text as is)."""
    plan = _expression_plan(text)
    return None if plan is None else _render_plan(plan, ctx, node)


class _VarWithOverrides:
    """dbt's ``var`` with some values replaced."""

    def __init__(self, inner: Any, overrides: dict[str, Any], context: dict[str, Any]) -> None:
        self._inner = inner
        self._overrides = overrides
        self._context = context

    def has_var(self, var_name: str) -> bool:
        return var_name in self._overrides or self._inner.has_var(var_name)

    def __call__(self, var_name: str, *default: Any) -> Any:
        if var_name in self._overrides:
            value = self._overrides[var_name]
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                from dbt.clients.jinja import get_rendered

                return get_rendered(value, dict(self._context))
            return value
        return self._inner(var_name, *default)


def cte_relation(adapter: Any, identifier: str, is_cte: bool = True) -> Any:
    """A relation that renders as the bare name of a CTE (as dbt's unit tests use for inputs).

    With ``is_cte=False`` its type is unset, as a table's, view's or source's relation
    is in a run, so macros that refuse ephemeral relations (``relation.is_cte``, as
    ``dbt_utils.get_column_values`` does) accept it. Relations are frozen dataclasses,
    so one is made per adapter relation class, name and kind.
    """
    key = (adapter.Relation, identifier, is_cte)
    relation = _CTE_RELATIONS.get(key)
    if relation is None:
        kind = "cte" if is_cte else None
        relation = adapter.Relation.create(type=kind, identifier=identifier).quote(identifier=False)
        if len(_CTE_RELATIONS) >= 5000:
            _CTE_RELATIONS.clear()
        _CTE_RELATIONS[key] = relation
    return relation


_CTE_RELATIONS: dict[tuple[Any, str, bool], Any] = {}


def is_ephemeral(node: Any) -> bool:
    """Whether *node* is an ephemeral model (a CTE, not a relation, in a run)."""
    config = getattr(node, "config", None)
    return getattr(config, "materialized", None) == "ephemeral"


class IntrospectiveAdapter:
    """dbt's ``adapter`` context value, with the queries a model runs while it renders
    answered by a *handler* first (see :mod:`dbtproof.engine.queries`).

    dbt's ``statement`` macro (behind ``run_query``) runs its SQL with
    ``adapter.execute(sql, auto_begin=..., fetch=...)``; ``load_relation`` asks
    ``adapter.get_relation(database, schema, identifier)``. *handler* has
    ``execute(sql, run, fetch, limit)`` — *run* runs the SQL (possibly rewritten)
    through dbt's adapter —, ``relation(database, schema, identifier)``, a relation or
    None to ask dbt's adapter, and ``columns(relation)``, which may refuse
    ``adapter.get_columns_in_relation``. Everything else is dbt's ``adapter``.
    """

    def __init__(self, wrapped: Any, handler: Any) -> None:
        self._dbtproof_wrapped = wrapped
        self._dbtproof_handler = handler

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_dbtproof_"):  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self._dbtproof_wrapped, name)

    def execute(
        self, sql: str, auto_begin: bool = False, fetch: bool = False, limit: int | None = None
    ) -> Any:
        wrapped = self._dbtproof_wrapped

        def run(text: str) -> Any:
            extra = {} if limit is None else {"limit": limit}
            return wrapped.execute(text, auto_begin=auto_begin, fetch=fetch, **extra)

        return self._dbtproof_handler.execute(str(sql), run, fetch, limit)

    def get_relation(self, database: Any, schema: Any, identifier: Any) -> Any:
        found = self._dbtproof_handler.relation(database, schema, identifier)
        if found is not None:
            return found
        return self._dbtproof_wrapped.get_relation(database, schema, identifier)

    def get_columns_in_relation(self, relation: Any) -> Any:
        self._dbtproof_handler.columns(relation)
        return self._dbtproof_wrapped.get_columns_in_relation(relation)


def query_result(
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    from_text: bool,
    fetch: bool,
    limit: int | None = None,
) -> tuple[Any, Any]:
    """What dbt's ``adapter.execute`` returns for a query whose result rows are given:
    an ``AdapterResponse`` and an agate table (empty unless *fetch*).

    Values are typed as dbt types a query's result (``table_from_data_flat``: strings
    stay strings, numbers become Decimals); CSV text (*from_text*) is typed as dbt
    types a seed's cells (numbers, dates, booleans recognised).
    """
    from dbt.adapters.contracts.connection import AdapterResponse
    from dbt_common.clients import agate_helper

    rows = list(rows)[:limit] if limit is not None else list(rows)
    names = [str(c) for c in columns]
    response = AdapterResponse(
        _message=f"SELECT {len(rows)}", code="SELECT", rows_affected=len(rows)
    )
    if not fetch:
        return response, agate_helper.empty_table()
    if from_text:
        table = agate_helper.table_from_rows([[row.get(c) for c in names] for row in rows], names)
    else:
        table = agate_helper.table_from_data_flat(
            [{c: row.get(c) for c in names} for row in rows], names
        )
    return response, table


def table_relation(adapter: Any, database: str | None, schema: str, identifier: str) -> Any:
    """A table relation ``database.schema.identifier`` with the project's quoting."""
    quote_policy = dict(getattr(adapter.config, "quoting", {}) or {})
    return adapter.Relation.create(
        database=database,
        schema=schema,
        identifier=identifier,
        type="table",
        quote_policy=quote_policy,
    )


def relation_exists(adapter: Any, database: str | None, schema: str, identifier: str) -> bool:
    """Whether ``database.schema.identifier`` exists (the adapter's own lookup, uncached)."""
    return adapter.get_relation(database, schema, identifier) is not None


def node_relation(adapter: Any, config: Any, node: Any) -> Any:
    """The relation a manifest node would have in the warehouse."""
    return adapter.Relation.create_from(config, node)


def columns_in_relation(adapter: Any, relation: Any) -> list[tuple[str, str]]:
    """Names and data types of the columns of an existing relation."""
    return [(str(c.name), str(c.data_type)) for c in adapter.get_columns_in_relation(relation)]


def describe_query(context: RenderContext, adapter: Any, sql: str) -> list[tuple[str, str]]:
    """Names and data types of the columns *sql* returns, as dbt's unit tests find them.

    Like dbt's ``unit`` materialization: an empty temporary table is created from
    the query, its columns are read back through the adapter, and it is dropped. The
    adapter's connection must be open.
    """
    if adapter_type(adapter) == "duckdb":
        # DuckDB describes a query without creating anything, and keeps an untyped NULL
        # column as "NULL" (a table would make it INTEGER).
        _, rows = cursor_fetch(adapter, f"describe select * from (\n{sql}\n) as dbtproof_d")
        return [(str(row[0]), str(row[1])) for row in rows]
    this = context.values["this"]
    base = this.incorporate(type="table") if hasattr(this, "incorporate") else this
    temp = context.call_macro("make_temp_relation", base, "__dbtproof_describe")
    empty = context.call_macro("get_empty_subquery_sql", sql)
    create = context.call_macro("get_create_table_as_sql", True, temp, empty)
    adapter.execute(str(create), auto_begin=True, fetch=False)
    try:
        return columns_in_relation(adapter, temp)
    finally:
        adapter.drop_relation(temp)
        _commit_if_open(adapter)


def seed_columns(config: Any, node: Any, adapter: Any) -> list[tuple[str, str]]:
    """The columns ``dbt seed`` would create for a seed: its CSV header, typed as dbt types them."""
    import os

    from dbt_common.clients import agate_helper

    column_types = dict(node.config.column_types or {})
    candidates = [
        os.path.join(getattr(node, "root_path", "") or "", node.original_file_path),
        os.path.join(config.project_root, node.original_file_path),
        os.path.join(
            config.project_root,
            config.packages_install_path,
            node.package_name,
            node.original_file_path,
        ),
    ]
    path = next((p for p in candidates if os.path.exists(p)), candidates[-1])
    delimiter = getattr(node.config, "delimiter", ",") or ","
    table = agate_helper.from_csv(path, text_columns=list(column_types), delimiter=delimiter)
    columns = []
    for index, name in enumerate(table.column_names):
        data_type = column_types.get(name) or adapter.convert_type(table, index)
        columns.append((str(name), str(data_type)))
    return columns


def disabled_nodes(manifest: Any) -> list[Any]:
    """The project's disabled nodes (a seed turned off by a var still describes its table)."""
    found = []
    for nodes in (getattr(manifest, "disabled", None) or {}).values():
        found.extend(nodes if isinstance(nodes, list) else [nodes])
    return found


def seed_columns_quoted(adapter: Any, node: Any) -> bool:
    """Whether ``dbt seed`` quotes the column names of *node* (``quote_columns``, else the
    adapter's default): then the names are stored exactly as the CSV header spells them."""
    quote_config = node.config.get("quote_columns") if hasattr(node.config, "get") else None
    return str(adapter.quote_seed_column("x", quote_config)) != "x"


def incremental_strategy_sql(
    context: RenderContext,
    adapter: Any,
    strategy: str | None,
    target: Any,
    temp: Any,
    unique_key: Any,
    incremental_predicates: Any = None,
) -> str:
    """The SQL the model's incremental strategy runs to apply new rows (*temp*) to *target*.

    The strategy macro comes from the adapter (``get_incremental_<strategy>_sql``), as in
    dbt's ``incremental`` materialization; the destination columns are *target*'s.
    """
    macro = adapter.get_incremental_strategy_macro(context.values, strategy or "default")
    dest_columns = adapter.get_columns_in_relation(target)
    args = {
        "target_relation": target,
        "temp_relation": temp,
        "unique_key": unique_key,
        "dest_columns": dest_columns,
        "incremental_predicates": incremental_predicates,
    }
    return str(macro(args))


def ensure_schema(adapter: Any, database: str | None, schema: str) -> None:
    """Create *schema* if it does not exist (through the adapter's ``create_schema``).

    Looked up first: PostgreSQL checks the right to create schemas even for one that
    exists, and a run role (see :mod:`dbtproof.run_role`) has none.
    """
    if adapter.check_schema_exists(database, schema):
        return
    relation = adapter.Relation.create(database=database, schema=schema)
    adapter.create_schema(relation)
    _commit_if_open(adapter)


def drop_relation(adapter: Any, relation: Any) -> None:
    """Drop a relation (if it exists) and commit."""
    adapter.drop_relation(relation)
    _commit_if_open(adapter)


def rollback_if_open(adapter: Any) -> None:
    """Roll back an open transaction of the adapter's current connection (after an error)."""
    connection = adapter.connections.get_if_exists()
    if connection is not None and connection.transaction_open:
        adapter.connections.rollback_if_open()


def adapter_type(adapter: Any) -> str:
    """The adapter's type name (``postgres``, ``duckdb``, ``snowflake`` ...)."""
    return str(adapter.type())


def quote(adapter: Any, identifier: str) -> str:
    """*identifier* quoted as the adapter quotes column names."""
    return str(adapter.quote(identifier))


def is_dbt_exception(exc: BaseException) -> bool:
    """True for dbt's own (user-facing) exceptions: compilation, runtime, database errors."""
    from dbt_common.exceptions import DbtBaseException

    return isinstance(exc, DbtBaseException)


def hold_connection(adapter: Any, name: str) -> None:
    """Open (or reuse) this thread's connection of *adapter* and leave it open.

    Unlike :func:`connection`, nothing closes it at the end of a block: model unit
    tests run one after the other on the same connection. It is closed by
    :func:`release_connection`, by the next :func:`connection` block, by a dbt
    invocation (which resets the adapters) or at session end.
    """
    adapter.acquire_connection(name)


def release_connection(adapter: Any) -> None:
    """Close this thread's connection of *adapter* (rolling back what is open); never raises."""
    import contextlib

    try:
        adapter.release_connection()
    except Exception:  # noqa: BLE001 - a broken connection is dropped either way
        with contextlib.suppress(Exception):
            adapter.connections.clear_thread_connection()


def cursor_fetch(adapter: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run *sql* on the raw DB-API cursor of the adapter's open connection.

    The fast path of model unit tests: it skips dbt's per-query events and query
    comment (about 1 ms per statement). Adapters whose connection has no DB-API
    cursor go through :func:`fetch`.
    """
    connection = adapter.connections.get_thread_connection()
    handle = connection.handle
    if not hasattr(handle, "cursor"):
        return fetch(adapter, sql)
    # Not closed afterwards: some adapters (dbt-duckdb) hand out the connection's own cursor.
    cursor = handle.cursor()
    cursor.execute(sql)
    description = cursor.description or []
    columns = [str(col[0]) for col in description]
    data = [tuple(row) for row in cursor.fetchall()] if description else []
    return columns, data


def held_handle(adapter: Any) -> Any:
    """The driver connection of this thread's open connection of *adapter*, or None.

    What runs on it sees the work of its open transaction (a model unit test's).
    """
    connection = adapter.connections.get_if_exists()
    if connection is None or str(getattr(connection.state, "value", connection.state)) != "open":
        return None
    return connection.handle


def open_own_connection(adapter: Any, name: str) -> Any:
    """A new driver connection, opened as dbt opens *adapter*'s (every profile option
    applied), in autocommit mode; the caller keeps it and closes it.

    dbt closes its connections when released, so a caller that queries often (the
    guard) would otherwise pay a new connection per query.
    """
    from dbt.adapters.contracts.connection import Connection

    connection = Connection(type=adapter.type(), name=name, credentials=adapter.config.credentials)
    type(adapter.connections).open(connection)
    handle = connection.handle
    # Keep what opening ran (dbt-postgres's `set role` opens a transaction) before autocommit.
    handle.commit()
    handle.autocommit = True
    return handle
