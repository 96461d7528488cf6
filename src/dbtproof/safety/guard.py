"""Detection: whatever a run writes outside its namespace is found, named and undone.

Relocation moves every relation dbt's nodes write into the run's namespace, but SQL
that dbtproof cannot read ahead of time can still write anywhere: ``on-run-start`` /
``on-run-end`` hooks, ``pre-hook`` / ``post-hook``, custom materializations,
``run_query`` in a model's Jinja (also under ``dbt.run_model``), a schema override
with ``--store-failures``, ``dbt.execute("create table t ...")``. So the warehouse is
asked instead. :class:`Guard` lists the schemas and relations (and, on PostgreSQL,
functions) in every place the connecting identity can write outside the namespace:
once when the session starts, and again after each dbt invocation and each
``dbt.execute`` / ``dbt.query`` / ``dbt.compile`` / ``dbt.run_model`` call and each
native unit test — but after a call that proves it wrote nothing
(:meth:`Watch.wrote_nothing`: a ``run_model`` on DuckDB that ran one ``SELECT`` and
nothing else of the project's; docs/architecture.md says when): whatever changed, the
next look sees. Anything that appeared, disappeared or was re-created is a
:class:`Breach` naming the object and the call after which it was seen; what appeared
and did not exist when the run started is dropped again.

How a breach surfaces:

* the ``dbt`` fixture call that caused it raises :class:`~dbtproof.errors.IsolationError`;
* a collected dbt item errors when its node ran in the invocation that caused it (or
  when the breach happened while the item set up);
* the run exits non-zero, and a terminal summary section lists every breach once.

What is watched, per adapter (other adapters are not watched, and pay nothing):

* **PostgreSQL**, one catalog query: every schema the identity owns (or is a member of
  the owner of), and in every schema where it has ``CREATE``, the tables, views,
  materialized views, foreign tables, sequences, indexes and functions it owns;
  identified by oid, so a relation dropped and re-created under its name is seen.
* **DuckDB**: the schemas, tables, views and sequences of every attached database
  that is writable, except the run's own database file (it is the namespace and is
  deleted at the end); identified by their ``CREATE`` statement.

Schemas named like any dbtproof namespace (``<prefix><12 digits>_<6 [a-z0-9]>...``) are
never watched: they belong to this run, to its other xdist workers, or to other runs
that may be writing at the same moment. Changes to the rows of a relation that
already existed are not seen: prevention (``search_path``, a least-privileged
identity) is what keeps those out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import IsolationError
from dbtproof.safety.faults import transient_fault
from dbtproof.safety.quoting import literal, quote

#: A schema of any dbtproof run (any prefix, any worker, any ``_<suffix>``).
NAMESPACE_LIKE = re.compile(r"^[a-z][a-z0-9_]*\d{12}_[a-z0-9]{6}(?:_.*)?$")
_PG_NAMESPACE_LIKE = r"^[a-z][a-z0-9_]*[0-9]{12}_[a-z0-9]{6}(_.*)?$"

#: PostgreSQL: one query for everything watched. Columns: kind, schema, name, identity,
#: owner. ``{who}`` is the role whose writable places are watched (a literal, or
#: ``current_user``): the guard may list as the run role what the identity could write.
_POSTGRES_CATALOG = f"""
select 'schema', n.nspname, '', n.oid::text, pg_get_userbyid(n.nspowner)
from pg_namespace n
where pg_has_role({{who}}, n.nspowner, 'MEMBER')
  and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
  and n.nspname !~ '{_PG_NAMESPACE_LIKE}'
union all
select case c.relkind when 'r' then 'table' when 'p' then 'table' when 'v' then 'view'
         when 'm' then 'materialized view' when 'f' then 'foreign table'
         when 'S' then 'sequence' else 'index' end,
       n.nspname, c.relname, c.oid::text, pg_get_userbyid(c.relowner)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'i', 'I')
  and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
  and n.nspname !~ '{_PG_NAMESPACE_LIKE}'
  and has_schema_privilege({{who}}, n.oid, 'CREATE') and pg_has_role({{who}}, c.relowner, 'MEMBER')
union all
select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end,
       n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       p.oid::text, pg_get_userbyid(p.proowner)
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
  and n.nspname !~ '{_PG_NAMESPACE_LIKE}'
  and has_schema_privilege({{who}}, n.oid, 'CREATE') and pg_has_role({{who}}, p.proowner, 'MEMBER')
"""

#: DuckDB: every attached database but the run's own (and DuckDB's ``system`` and
#: ``temp``). Columns: kind, database, schema, name, identity. ``{exclude}`` lists the
#: databases left out, as string literals.
_DUCKDB_CATALOG = """
select 'schema', database_name, schema_name, '', coalesce(sql, '')
from duckdb_schemas() where database_name not in ({exclude})
union all
select 'table', database_name, schema_name, table_name, coalesce(sql, '')
from duckdb_tables() where not temporary and database_name not in ({exclude})
union all
select 'view', database_name, schema_name, view_name, coalesce(sql, '')
from duckdb_views() where not internal and not temporary and database_name not in ({exclude})
union all
select 'sequence', database_name, schema_name, sequence_name, coalesce(sql, '')
from duckdb_sequences() where not temporary and database_name not in ({exclude})
"""

#: DuckDB: how many databases are attached besides the run's own, ``system`` and ``temp``.
_DUCKDB_OTHER_DATABASES = (
    "select count(*) from duckdb_databases() where database_name not in ({exclude})"
)

_DROP_KIND = MappingProxyType(
    {
        "table": "table",
        "foreign table": "foreign table",
        "view": "view",
        "materialized view": "materialized view",
        "sequence": "sequence",
        "index": "index",
        "function": "function",
        "procedure": "procedure",
        "aggregate": "aggregate",
    }
)


@dataclass(frozen=True, order=True)
class CatalogObject:
    """A schema, relation or function in a place the run could write."""

    kind: str
    database: str
    schema: str
    name: str

    def qualified(self) -> str:
        """``database.schema.name`` (``database.schema`` for a schema)."""
        return ".".join(part for part in (self.database, self.schema, self.name) if part)


@dataclass(frozen=True)
class Seen:
    """One incarnation of a :class:`CatalogObject`: what identifies it, and its owner."""

    identity: str
    #: The role that owns it (PostgreSQL; empty where the catalog names none).
    owner: str = ""
    #: Whether its owner proves this run created it (the run role owns it; on DuckDB,
    #: every writable attached file is this process's alone).
    ours: bool = True


#: A listing: each object, and its current incarnation.
Snapshot = dict[CatalogObject, Seen]


@dataclass(frozen=True)
class Breach:
    """An object created, dropped or re-created outside the namespace, and by which call."""

    change: str
    item: CatalogObject
    call: str
    #: True when dbtproof dropped the object again (it did not exist when the run started).
    undone: bool = False
    #: Unique ids of the nodes the invocation ran (its items error).
    unique_ids: frozenset[str] = frozenset()
    #: Its owner, when the owner does not prove this run created it (nothing is dropped then).
    owner: str = ""

    def describe(self) -> str:
        """One line: what changed, where, after which call, and whether it was undone."""
        after = ""
        if self.undone:
            after = " (dropped again by dbtproof)"
        elif self.owner and self.change != "dropped":
            after = f" (owner {self.owner}; not dropped: dbtproof cannot prove this run created it)"
        return f"{self.change} {self.item.kind} {self.item.qualified()}{after}, by {self.call}"

    def describe_not_ours(self) -> str:
        """One line for a change the run did not make (another process's): left alone."""
        return (
            f"{self.change} {self.item.kind} {self.item.qualified()} (owner {self.owner}): "
            f"not ours, left alone (seen after {self.call})"
        )


@dataclass
class Watch:
    """One watched call; the caller says which nodes it ran (see :meth:`ran`), and may
    prove that it wrote nothing (see :meth:`wrote_nothing`)."""

    what: str
    unique_ids: set[str] = field(default_factory=set)
    #: The caller proved that the call ran nothing that can write (see :meth:`wrote_nothing`).
    read_only: bool = False
    #: Another watched call ran inside this one (a dbt invocation a call made): its proof,
    #: if any, does not cover that.
    nested: bool = False

    def ran(self, result: Any) -> None:
        """Record the nodes a dbt invocation ran (an :class:`InvocationResult`)."""
        self.unique_ids.update(node.unique_id for node in getattr(result, "nodes", []) or [])

    def wrote_nothing(self) -> None:
        """The call ran no statement but those dbtproof wrote itself and one ``SELECT``
        (``run_model`` proves it, :mod:`dbtproof.engine.model`): the look after it is
        skipped when it ends without an error and no watched call ran inside it. Whatever
        it did write anyway is still seen by the next look (its listing is not renewed)."""
        self.read_only = True


@dataclass
class _Scope:
    breaches: list[Breach] = field(default_factory=list)


class Guard:
    """Lists what the run could write outside its namespace, before and after each call.

    Build it with :func:`start_guard`; use :meth:`watch` around every call that may run
    SQL, and :meth:`deferred` where breaches are collected instead of raised.
    """

    def __init__(
        self,
        namespace: str,
        database: str | None,
        lister: Callable[[], Snapshot],
        dropper: Callable[[Sequence[CatalogObject]], None],
        closer: Callable[[], None] = lambda: None,
        owner_proves: bool = False,
        fixed_schemas: frozenset[str] = frozenset(),
    ) -> None:
        self.namespace = namespace
        self.database = database
        self._list = lister
        self._drop = dropper
        self._close = closer
        #: Whether an owner other than the run's proves another creator (the run logs in
        #: as its run role, so it cannot create anything owned by another role).
        self.owner_proves = owner_proves
        #: Schemas a database always has, which cannot be dropped (DuckDB's ``main``): what
        #: was created in one is dropped object by object.
        self.fixed_schemas = fixed_schemas
        self.baseline: Snapshot = lister()
        self._last: Snapshot = dict(self.baseline)
        #: Every breach of this session, in the order seen.
        self.breaches: list[Breach] = []
        #: Changes another creator made at the same time (never dropped, never failing).
        self.not_ours: list[Breach] = []
        self._depth = 0
        self._scopes: list[_Scope] = []
        self._outermost: Watch | None = None
        #: How many times the warehouse was listed (the looks taken), and skipped.
        self.looks = 0
        self.skipped = 0

    def close(self) -> None:
        """Close the guard's own connection, if it holds one."""
        self._close()

    @contextmanager
    def watch(self, what: str) -> Iterator[Watch]:
        """Check the warehouse after the block (an outermost block only).

        Raises :class:`IsolationError` naming what the block wrote outside the namespace,
        unless inside :meth:`deferred`. An exception of the block itself propagates when
        nothing was written, else becomes the cause of the :class:`IsolationError`.
        """
        watch = Watch(what)
        if self._outermost is None:
            self._outermost = watch
        else:
            self._outermost.nested = True
        self._depth += 1
        try:
            yield watch
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._outermost = None
            if self._depth == 0 and not isinstance(exc, KeyboardInterrupt):
                try:
                    found = self.check(what, watch.unique_ids)
                except Exception:  # noqa: BLE001 - the block's own error says more (a
                    found = []  # warehouse gone for both); the next check sees what this missed
                if found and not self._scopes:
                    raise IsolationError(self.message(found)) from exc
            raise
        self._depth -= 1
        if self._depth == 0:
            self._outermost = None
            if watch.read_only and not watch.nested:
                self.skipped += 1
                return
            found = self.check(what, watch.unique_ids)
            if found and not self._scopes:
                raise IsolationError(self.message(found))

    @contextmanager
    def deferred(self) -> Iterator[list[Breach]]:
        """Within the block, breaches are recorded (and yielded as a list), not raised."""
        scope = _Scope()
        self._scopes.append(scope)
        try:
            yield scope.breaches
        finally:
            self._scopes.remove(scope)

    def check(self, what: str, unique_ids: set[str] | frozenset[str] = frozenset()) -> list[Breach]:
        """List the warehouse now; record every change, and undo what this run provably
        created (:class:`Seen`); another creator's changes are noted as not ours."""
        now = self._list()
        self.looks += 1
        before, self._last = self._last, now
        changes: list[tuple[str, CatalogObject, Seen]] = []
        for item, seen in now.items():
            if item not in before:
                changes.append(("created", item, seen))
            elif before[item].identity != seen.identity:
                changes.append(("re-created", item, seen))
        # what appeared after the start and is gone again (rolled back, dropped by its
        # creator) was told when it appeared: only a drop of what was there is one
        changes += [
            ("dropped", item, seen)
            for item, seen in before.items()
            if item not in now and item in self.baseline
        ]
        if not changes:
            return []
        ids = frozenset(unique_ids)
        foreign = [c for c in changes if self.owner_proves and not c[2].ours]
        if foreign:
            self.not_ours += [
                Breach(change, item, what, owner=seen.owner, unique_ids=ids)
                for change, item, seen in sorted(foreign, key=lambda c: (c[1], c[0]))
            ]
            changes = [c for c in changes if c not in foreign]
        created_schemas = {
            (item.database, item.schema)
            for change, item, seen in changes
            if change == "created"
            and item.kind == "schema"
            and seen.ours
            and item.schema not in self.fixed_schemas
        }
        undo = [
            item
            for change, item, seen in changes
            if change == "created"
            and seen.ours
            and item not in self.baseline
            and not (item.kind == "schema" and item.schema in self.fixed_schemas)
            and (item.kind == "schema" or (item.database, item.schema) not in created_schemas)
        ]
        undone: set[CatalogObject] = set()
        if undo:
            try:
                self._drop(undo)
                undone = set(undo)
            except Exception:  # noqa: BLE001 - the breach is reported either way
                undone = set()
            self._last = self._list()
        gone_schemas = {(u.database, u.schema) for u in undone if u.kind == "schema"}
        found = [
            Breach(
                change,
                item,
                what,
                undone=item in undone or (item.database, item.schema) in gone_schemas,
                unique_ids=ids,
                owner="" if seen.ours else seen.owner or "unknown",
            )
            for change, item, seen in sorted(changes, key=lambda c: (c[1], c[0]))
        ]
        self.breaches += found
        for scope in self._scopes:
            scope.breaches += found
        return found

    def breaches_of(self, unique_id: str) -> list[Breach]:
        """The breaches of invocations that ran the node *unique_id*."""
        return [breach for breach in self.breaches if unique_id in breach.unique_ids]

    def message(self, breaches: Sequence[Breach]) -> str:
        """The error for *breaches*: what was written, by which call, and what to do."""
        lines = "\n".join(f"  - {breach.describe()}" for breach in breaches)
        return (
            f"dbtproof: this run wrote outside its namespace '{self.namespace}':\n{lines}\n"
            f"Something in the project (an on-run-start/on-run-end hook, a pre-/post-hook, "
            f"a materialization, run_query in a model) or in the test ran SQL that names "
            f"another schema or database. Write to {{{{ target.schema }}}} / "
            f"{{{{ this }}}} (or unqualified names) instead, so dbtproof can keep the run "
            f"inside its namespace."
        )


# -- adapters ------------------------------------------------------------------------------


def _drop_statements(items: Sequence[CatalogObject], with_database: bool) -> list[str]:
    statements = []
    for item in sorted(items, key=lambda i: i.kind != "schema"):
        schema = (
            f"{quote(item.database)}.{quote(item.schema)}" if with_database else quote(item.schema)
        )
        if item.kind == "schema":
            statements.append(f"drop schema if exists {schema} cascade")
        elif item.kind in ("function", "procedure", "aggregate"):
            name, _, args = item.name.partition("(")
            statements.append(f"drop {item.kind} if exists {schema}.{quote(name)}({args} cascade")
        else:
            kind = _DROP_KIND.get(item.kind, "table")
            statements.append(f"drop {kind} if exists {schema}.{quote(item.name)} cascade")
    return statements


def start_guard(adapter_type: str, get_adapter: Callable[[], Any], namespace: str,
                database: str | None, identity: str | None = None,
                restore: str | None = None,
                run_databases: Sequence[str] = (),
                run_role: str | None = None,
                watched_role: str | None = None,
                own_schemas: Sequence[str] = ()) -> Guard | None:  # fmt: skip
    """A :class:`Guard` for the session's adapter, its baseline listed; ``None`` for an
    adapter dbtproof does not watch (anything but PostgreSQL and DuckDB).

    DuckDB: *run_databases* are databases of the run itself besides the session's own
    (the run-level build's file, :mod:`dbtproof.session.shared_build`), left out like it.
    PostgreSQL: *own_schemas* are schemas the run fills besides its namespace (``dbtproof
    sample``'s sample namespace), left out like the namespace.

    PostgreSQL: only what *run_role* owns is provably this run's, and dropped again;
    a change owned by another role is a breach left in place, or, with *watched_role*
    (the run logs in as its run role, so it cannot create what another role owns), not
    ours: noted, never failing. *watched_role* is the identity whose writable places
    are listed (default: the connection's ``current_user``). When dbt's connections
    ``SET ROLE`` to the run role instead, *identity* is the statement that makes one
    act as the identity again (the guard lists what the identity could write, and drops
    as it), *restore* the one that switches a connection the guard borrowed (a model
    unit test's) back to the run role.
    """
    if adapter_type not in ("postgres", "duckdb"):
        return None
    database_name = database or ""

    if adapter_type == "postgres":
        # A connection of its own, kept for the session: dbt opens one per query.
        handles: list[Any] = []

        @contextmanager
        def cursor() -> Iterator[Any]:
            # The connection a model unit test holds sees what its open transaction wrote.
            held = compat.held_handle(get_adapter())
            if held is not None:
                with held.cursor() as cur:
                    if identity is not None:
                        cur.execute(identity)
                    try:
                        yield cur
                    finally:
                        if restore is not None:
                            cur.execute(restore)
                return
            if not handles or handles[0].closed:
                handle = compat.open_own_connection(get_adapter(), "dbtproof_guard")
                if identity is not None:
                    with handle.cursor() as cur:
                        cur.execute(identity)
                handles[:] = [handle]
            with handles[0].cursor() as cur:
                yield cur

        catalog = _POSTGRES_CATALOG.replace(
            "{who}", literal(watched_role) if watched_role else "current_user"
        )

        def lister() -> Snapshot:
            try:
                with cursor() as cur:
                    cur.execute(catalog)
                    rows = cur.fetchall()
            except Exception as exc:
                own = handles and compat.held_handle(get_adapter()) is None
                if not own or transient_fault(exc) is None:
                    raise  # a model unit test's connection: its own retry reopens it
                closer()  # the guard's own connection died: once more on a fresh one
                handles.clear()
                with cursor() as cur:
                    cur.execute(catalog)
                    rows = cur.fetchall()
            return {
                CatalogObject(str(kind), database_name, str(schema), str(name)): Seen(
                    str(identity), str(owner), run_role is not None and owner == run_role
                )
                for kind, schema, name, identity, owner in rows
                if schema not in own_schemas
            }

        def dropper(items: Sequence[CatalogObject]) -> None:
            with cursor() as cur:
                for statement in _drop_statements(items, with_database=False):
                    cur.execute(statement)

        def closer() -> None:
            for handle in handles:
                with suppress(Exception):  # one that died is closed either way
                    handle.close()

    else:
        exclude = ", ".join(
            literal(name) for name in (database_name, *run_databases, "system", "temp")
        )
        query = _DUCKDB_CATALOG.format(exclude=exclude)
        others = _DUCKDB_OTHER_DATABASES.format(exclude=exclude)

        def listing(adapter: Any) -> list[Any]:
            # Nothing but the run's own database attached: nothing else to write in (a
            # third of the catalog's cost, paid after every run_model).
            if not compat.cursor_fetch(adapter, others)[1][0][0]:
                return []
            return list(compat.cursor_fetch(adapter, query)[1])

        def lister() -> Snapshot:
            adapter = get_adapter()
            if compat.held_handle(adapter) is not None:  # no connection to open and close
                rows = listing(adapter)
            else:
                with compat.connection(adapter, "dbtproof_guard"):
                    rows = listing(adapter)
            return {
                CatalogObject(str(kind), str(db), str(schema), str(name)): Seen(str(identity))
                for kind, db, schema, name, identity in rows
                if not NAMESPACE_LIKE.match(str(schema).lower())
            }

        def dropper(items: Sequence[CatalogObject]) -> None:
            adapter = get_adapter()
            with compat.connection(adapter, "dbtproof_guard"):
                for statement in _drop_statements(items, with_database=True):
                    compat.execute(adapter, statement)

        def closer() -> None:
            pass

    return Guard(
        namespace,
        database,
        lister,
        dropper,
        closer,
        owner_proves=adapter_type == "postgres" and watched_role is not None,
        fixed_schemas=frozenset({"main"}) if adapter_type == "duckdb" else frozenset(),
    )


@contextmanager
def watch(guard: Guard | None, what: str) -> Iterator[Watch]:
    """:meth:`Guard.watch` when there is a guard; a block that checks nothing otherwise."""
    if guard is None:
        yield Watch(what)
        return
    with guard.watch(what) as watched:
        yield watched


def describe_call(command: str, select: Any = None, exclude: Any = None,
                  extra_args: Sequence[str] = ()) -> str:  # fmt: skip
    """How a dbt invocation is named in a breach: ``dbt build --select a b``."""
    parts = ["dbt", command]
    for flag, value in (("--select", select), ("--exclude", exclude)):
        if value:
            parts += [flag, *([value] if isinstance(value, str) else [str(v) for v in value])]
    parts += [str(arg) for arg in extra_args]
    text = " ".join(parts)
    return f"`{text if len(text) <= 160 else text[:157] + '...'}`"


def describe_sql(call: str, sql: str) -> str:
    """How a ``dbt.query`` / ``dbt.execute`` call is named: its SQL, shortened."""
    text = " ".join(sql.split())
    return f"{call}({text if len(text) <= 80 else text[:77] + '...'!r})"


def item_setup(guard: Guard, item: Any) -> Any:
    """A pytest ``runtest_setup`` wrapper body for a dbt item (``yield from`` it).

    Breaches are collected while the item sets up (a native unit test is watched as one
    call); the item errors with :class:`IsolationError` when one happened then, or
    when its node ran in an invocation that wrote outside the namespace.
    """
    unit = getattr(item, "kind", None) == "unit"
    error: BaseException | None = None
    result = None
    with guard.deferred() as seen:
        try:
            if unit:
                with guard.watch(f"unit test {item.unique_id}"):
                    result = yield
            else:
                result = yield
        except Exception as exc:  # noqa: BLE001 - re-raised below unless a breach wins
            error = exc
    found = list(dict.fromkeys([*seen, *guard.breaches_of(item.unique_id)]))
    if found:
        raise IsolationError(guard.message(found)) from error
    if error is not None:
        raise error
    return result
