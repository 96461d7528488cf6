"""A model's SQL rendered through dbt's Jinja runtime context, with its inputs replaced.

dbt renders the model exactly as in a run — macros, ``var()``, ``env_var()``,
``adapter.dispatch``, ``config()`` all behave as they do there — except that:

* ``ref()`` and ``source()`` of a given input render as the name of a CTE that holds
  the fixture; an upstream that was not given renders as a marker, and is reported as
  missing if the marker is still in the SQL outside of comments (so a
  ``-- depends_on: {{ ref('x') }}`` hint needs no fixture);
* ``this`` renders as the fixture given for it (a CTE, or a table for ``apply=True``);
* ``is_incremental()`` returns what the test says, without asking the warehouse;
* ``vars``, ``env`` and ``macros`` overrides apply to this render only;
* with ``RenderSpec.queries``, the queries the model runs while rendering (``run_query``,
  ``statement``) and ``adapter.get_relation`` are answered by it
  (:mod:`~dbtproof.engine.queries`). A given input's relation is not a CTE to macros
  (``relation.is_cte`` is false) unless its upstream is ephemeral: in a run it is a
  table, view or source.

The fixture CTEs are put in front of the model's SQL the way dbt injects ephemeral
models (joining a leading ``with`` or adding one), once per render, with a slot for
each fixture's SQL; :meth:`Rendered.assemble` fills the slots for each test.

The pieces: :class:`InputResolver` (what ``ref``/``source``/``this`` render as, and
which inputs the SQL reads), :func:`replace_in_context` (the test's replacements put
into dbt's context), :func:`render` (one render, start to end).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError, MissingInputError, ModelRenderError, UnknownMacroError
from dbtproof.project.nodes import is_ephemeral, resource_type

#: Name of the CTE (or marker) standing for ``this``.
THIS = "this"
_SLOT = "__dbtproof_fixture_slot_{}__"
_SLOT_RE = re.compile(r"__dbtproof_fixture_slot_(\d+)__")
_COMMENT_OR_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)


class QueryAnswers(Protocol):
    """What answers the queries a model runs while it renders, as :func:`render` drives it
    (:class:`dbtproof.engine.queries.Introspection` is the engine's; this module names only
    what it calls, so that the queries module, which reads this one, is not read back).

    :class:`dbtproof._dbt_compat.IntrospectiveAdapter` asks it ``execute``, ``relation``
    and ``columns`` during the render, and tells it ``to_dbt`` what reached dbt's adapter.
    """

    def start(
        self,
        ctes: Mapping[str, str],
        stand_ins: Mapping[str, Any],
        missing: Mapping[str, str],
        label: Callable[[str], str],
        this: Any = None,
    ) -> None:
        """Answer queries from now on (which relation stands for which input)."""

    def stop(self) -> None:
        """Leave queries to dbt's adapter from now on."""

    def check_unused(self) -> None:
        """Fail for a key of the given queries that matched no query of the render."""


def label_of(node: Any) -> str:
    """How a model refers to *node*: ``ref('name')`` or ``source('src', 'table')``."""
    if resource_type(node) == "source":
        return f"source('{node.source_name}', '{node.name}')"
    version = getattr(node, "version", None)
    return f"ref('{node.name}', v={version!r})" if version is not None else f"ref('{node.name}')"


def cte_name(node: Any) -> str:
    """The CTE name a fixture for *node* gets: its unique id, readable and unique.

    ``source.shop.shop.raw_orders`` becomes ``__dbtproof__source__shop__shop__raw_orders``
    and ``model.shop.stg_orders`` ``__dbtproof__model__shop__stg_orders``, so a source and
    a model (or two packages' models) of one name never meet. A unique id that is not
    plain lowercase letters, digits and ``_`` (or would make a name too long for the
    warehouse) keeps a readable part and gets a short hash of the whole.
    """
    uid = str(node.unique_id)
    readable = uid.replace(".", "__")
    plain = re.sub(r"[^a-z0-9_]", "_", readable.lower())
    if plain != readable or len(plain) > 48:
        digest = hashlib.sha256(uid.encode("utf-8")).hexdigest()[:10]
        plain = f"{plain[:36]}_{digest}"
    return "__dbtproof__" + plain


def code_only(sql: str) -> str:
    """*sql* without its comments (string literals kept)."""

    def keep_strings(match: re.Match[str]) -> str:
        text = match.group(0)
        return text if text[0] in "'\"" else " "

    return _COMMENT_OR_STRING.sub(keep_strings, sql)


def macro_value(name: str, value: Any) -> Callable[..., Any]:
    """What replaces macro *name*: a callable as is, a constant as a macro returning it.

    A string is returned as written (SQL, as in dbt's ``overrides: macros``); ``None``
    renders as ``null``; dates and times as typed literals; other values as themselves
    (``True`` keeps working in ``{% if %}``).
    """
    if callable(value):
        return value
    from datetime import date, datetime, time

    constant: Any = value
    if value is None:
        constant = "null"
    elif isinstance(value, datetime):
        constant = f"cast('{value.isoformat(sep=' ')}' as timestamp)"
    elif isinstance(value, date):
        constant = f"cast('{value.isoformat()}' as date)"
    elif isinstance(value, time):
        constant = f"cast('{value.isoformat()}' as time)"

    def constant_macro(*args: Any, **kwargs: Any) -> Any:
        return constant

    constant_macro.__name__ = f"dbtproof_override_{name}"
    return constant_macro


@dataclass
class Rendered:
    """A rendered model: its SQL with a slot for each fixture, ready to assemble per test."""

    sql: str
    parts: list[str] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)
    #: Input ids (unique ids, or ``"this"``) whose fixture the SQL reads.
    used: list[str] = field(default_factory=list)
    #: The dbt context it was rendered in, when asked for (never cached).
    context: Any = None
    #: What the SQL reads of its inputs (:class:`~dbtproof.engine.references.References`),
    #: worked out once per render when needed.
    references: Any = None

    def assemble(self, fixtures: Mapping[str, str]) -> str:
        """The statement to run: the rendered SQL with each slot filled by its fixture's SQL."""
        pieces = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            pieces.append(fixtures[slot])
            pieces.append(part)
        return "".join(pieces)


@dataclass
class RenderSpec:
    """What to render: the node, its given inputs and the overrides of one test."""

    node: Any
    #: Given inputs: upstream unique id (or ``"this"``) -> CTE name.
    inputs: dict[str, str]
    #: ``this``: None for the model's own relation, a CTE name, or a relation object.
    this: Any = None
    is_incremental: bool = False
    vars: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    macros: dict[str, Any] = field(default_factory=dict)
    #: A macro override naming neither a macro nor a context value is left out, as dbt's
    #: unit tests leave it (``run_model``'s ``macros=`` refuses it: a typo, most likely).
    ignore_unknown_macros: bool = False
    #: Report inputs the SQL reads but that were not given (else they render as markers).
    require_inputs: bool = True
    #: Answers the queries the model runs while rendering; None leaves them to dbt.
    queries: QueryAnswers | None = None


class InputResolver:
    """What ``ref()``, ``source()`` and ``this`` render as in one render of *spec*'s node.

    A given input renders as a relation named after its fixture CTE (a CTE to macros only
    when its upstream is ephemeral: in a run it is a table, view or source). An upstream
    that was not given renders as a marker, so that the render goes on; only one whose
    marker is still in the SQL outside of comments is reported (:meth:`check_given`).
    ``ref()`` and ``source()`` resolve as dbt does from inside the node, and fail for a
    name that is not an enabled node of the project.
    """

    def __init__(
        self,
        spec: RenderSpec,
        project: str,
        manifest: Any,
        adapter: Any,
        relations: compat.CteRelations,
    ) -> None:
        self.spec = spec
        self._project = project
        self._manifest = manifest
        self._adapter = adapter
        self._relations = relations
        #: Name -> the relation each given input, marker and ``this`` rendered as.
        self.stand_ins: dict[str, Any] = {}
        #: Input id -> the marker an upstream that was not given renders as.
        self.missing: dict[str, str] = {}

    def ref(self, *args: Any, **kwargs: Any) -> Any:
        """dbt's ``ref(name)`` / ``ref(package, name)`` (``version=`` / ``v=``)."""
        node = self.spec.node
        if len(args) == 1:
            package, name = None, args[0]
        elif len(args) == 2:
            package, name = args
        else:
            raise ModelRenderError(
                f"dbtproof: ref() takes a name, or a package and a name; {node.name} called "
                f"ref{args!r}."
            )
        version = kwargs.get("version") or kwargs.get("v")
        target = compat.resolve_ref(self._manifest, node, name, package, version, self._project)
        if target is None:
            raise ModelRenderError(
                f"dbtproof: {node.name} ({node.original_file_path}) refers to "
                f"ref({name!r}), which is not an enabled node of the project."
            )
        return self._relation_for(target)

    def source(self, source_name: str, table_name: str) -> Any:
        """dbt's ``source(source_name, table_name)``."""
        node = self.spec.node
        target = compat.resolve_source(self._manifest, node, source_name, table_name, self._project)
        if target is None:
            raise ModelRenderError(
                f"dbtproof: {node.name} ({node.original_file_path}) refers to "
                f"source({source_name!r}, {table_name!r}), which is not a source of the project."
            )
        return self._relation_for(target)

    def this(self) -> Any:
        """What ``this`` renders as: the given CTE or relation; a marker for an incremental
        run that was given none; None to leave dbt's (the model's own relation)."""
        spec = self.spec
        if isinstance(spec.this, str):
            return self._stand_in(spec.this)
        if spec.this is not None:
            return spec.this
        if spec.is_incremental:
            self.missing[THIS] = "__dbtproof_missing_this__"
            return self._stand_in(self.missing[THIS])
        return None

    def label(self, uid: str) -> str:
        """How a message names the input *uid*."""
        return "this" if uid == THIS else label_of(_node(self._manifest, uid))

    def used(self, code: str) -> list[str]:
        """The given inputs (ids) whose CTE *code* (SQL without comments) reads."""
        inputs = self.spec.inputs
        return [uid for uid, cte in inputs.items() if re.search(rf"\b{re.escape(cte)}\b", code)]

    def check_given(self, code: str) -> None:
        """:raises MissingInputError: if *code* (SQL without comments) reads an upstream, or
        ``this``, that was not given."""
        absent = [uid for uid, marker in self.missing.items() if re.search(rf"\b{marker}\b", code)]
        if not absent:
            return
        labels = []
        for uid in absent:
            if uid == THIS:
                labels.append("this (pass this=rows: the table as it stood before the run)")
            else:
                labels.append(self.label(uid))
        given = [self.label(uid) for uid in self.spec.inputs if uid != THIS]
        raise MissingInputError(
            f"dbtproof: {self.spec.node.name} reads {len(labels)} upstream relation(s) the test "
            f"did not give: {', '.join(labels)}. Every upstream the model reads needs a fixture "
            f"in given= (use [] for an empty one). Given: {', '.join(given) or 'nothing'}."
        )

    def _relation_for(self, target: Any) -> Any:
        uid = target.unique_id
        if uid in self.spec.inputs:
            return self._stand_in(self.spec.inputs[uid], is_ephemeral(target))
        marker = f"__dbtproof_missing_{len(self.missing)}__"
        self.missing.setdefault(uid, marker)
        return self._stand_in(self.missing[uid])

    def _stand_in(self, name: str, is_cte: bool = False) -> Any:
        self.stand_ins[name] = self._relations.get(self._adapter, name, is_cte=is_cte)
        return self.stand_ins[name]


def render(
    spec: RenderSpec,
    config: Any,
    manifest: Any,
    adapter: Any,
    caches: compat.RenderCaches,
    keep_context: bool = False,
) -> Rendered:
    """Render *spec*'s node with its inputs replaced; see the module documentation.

    The adapter's connection must be open (macros may query the warehouse). *caches*
    are the engine's (see :class:`~dbtproof._dbt_compat.RenderCaches`). With
    *keep_context*, the dbt context stays on the result (to call macros with it).

    :raises MissingInputError: if the SQL reads an upstream (or ``this``) not given.
    :raises UnknownMacroError: if a macro override names no macro.
    :raises ModelRenderError: if dbt cannot render the model.
    """
    node = spec.node
    inputs = InputResolver(spec, config.project_name, manifest, adapter, caches.cte_relations)
    # dbt's context is built only if the render needs it (see compat.RenderContext).
    lazy = not keep_context and not spec.macros
    context = _context(node, config, manifest, caches, lazy)
    replace_in_context(context, spec, inputs)
    sql = _render_answering_queries(context, spec, inputs)
    code = code_only(sql)
    if spec.require_inputs:
        inputs.check_given(code)
    if spec.queries is not None:
        spec.queries.check_unused()
    rendered = _with_slots(sql, inputs.used(code), spec.inputs)
    if keep_context:
        rendered.context = context
    else:
        # dbt's context is a web of reference cycles (its dict holds ~500 macros bound to
        # the dict): let reference counting free it now rather than the garbage collector.
        context.close()
    return rendered


def replace_in_context(
    context: compat.RenderContext, spec: RenderSpec, inputs: InputResolver
) -> None:
    """Put what the test replaces into *context*: ``ref``, ``source`` and ``this`` as
    *inputs* resolves them, *spec*'s vars, env vars and macros (or values of dbt's context
    such as ``invocation_id``), and ``is_incremental()``.

    :raises UnknownMacroError: if a macro override names neither a macro nor a value
        (unless ``spec.ignore_unknown_macros``).
    """
    context.set_value("ref", inputs.ref)
    context.set_value("source", inputs.source)
    this = inputs.this()
    if this is not None:
        context.set_value("this", this)
    if spec.vars:
        context.override_vars(spec.vars)
    if spec.env:
        context.override_env_vars(spec.env)
    context.override_macro_later(
        "is_incremental", macro_value("is_incremental", spec.is_incremental)
    )
    # A name that is no macro but a value of dbt's context (``invocation_id``) takes the
    # value as it is, as in dbt's unit tests.
    unknown = [
        n
        for n, v in spec.macros.items()
        if not context.override_macro(n, macro_value(n, v)) and not context.override_value(n, v)
    ]
    if unknown and not spec.ignore_unknown_macros:
        _unknown_macros(unknown, context, spec.node)


def _render_answering_queries(
    context: compat.RenderContext, spec: RenderSpec, inputs: InputResolver
) -> str:
    """The node rendered in *context*; with ``spec.queries``, the queries it runs while
    rendering are answered by it (told which relation stands for which input)."""
    introspection = spec.queries
    if introspection is None:
        return _render(context, spec.node)
    this = spec.this if spec.this is not None and not isinstance(spec.this, str) else None
    introspection.start(spec.inputs, inputs.stand_ins, inputs.missing, inputs.label, this)
    context.wrap_value("adapter", partial(compat.IntrospectiveAdapter, handler=introspection))
    try:
        return _render(context, spec.node)
    finally:
        introspection.stop()


def _context(
    node: Any, config: Any, manifest: Any, caches: compat.RenderCaches, lazy: bool
) -> compat.RenderContext:
    """dbt's context for *node* (dbt failing to set it up is a ModelRenderError)."""
    try:
        return compat.RenderContext(node, config, manifest, caches, lazy=lazy)
    except Exception as exc:
        if compat.is_dbt_exception(exc):
            raise ModelRenderError(
                f"dbtproof: dbt could not set up the rendering of {node.name}: {exc}"
            ) from exc
        raise


def _render(context: compat.RenderContext, node: Any) -> str:
    """*node*'s SQL rendered in *context*: dbt's and Jinja's errors become a
    ModelRenderError; dbtproof's own error, raised inside and wrapped by dbt, is raised."""
    try:
        return context.render(node.raw_code)
    except DbtproofError:
        raise
    except Exception as exc:
        import jinja2

        own = _own_error(exc)
        if own is not None:
            raise own from own.__cause__
        if compat.is_dbt_exception(exc) or isinstance(exc, jinja2.TemplateError):
            message = str(exc).strip()
            raise ModelRenderError(
                f"dbtproof: dbt could not render {resource_type(node)} '{node.name}' "
                f"({node.original_file_path}):\n{message}"
            ) from exc
        raise


def _own_error(exc: BaseException) -> DbtproofError | None:
    """dbtproof's error behind *exc*, if dbt's Jinja wrapped one raised inside the render
    (``catch_jinja`` turns other exceptions into a CompilationError)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DbtproofError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_WITH = re.compile(r"with\b(?:\s+recursive\b)?", re.I)


def inject_ctes(sql: str, ctes: list[str]) -> str:
    """Put CTEs (``"name as (select ...)"``) in front of *sql*, as dbt does for ephemerals.

    When *sql* starts (after comments) with ``with [recursive]``, the CTEs join that
    list; otherwise a ``with`` is added. This is what dbt's ``inject_ctes_into_sql``
    does, without parsing the whole statement.
    """
    if not ctes:
        return sql
    start = _LEADING.match(sql).end()  # type: ignore[union-attr]  # always matches
    head = _WITH.match(sql, start)
    joined = ",\n".join(ctes)
    if head is not None:
        return f"{sql[: head.end()]}\n{joined},\n{sql[head.end() :].lstrip()}"
    return f"{sql[:start]}with {joined}\n{sql[start:]}"


def _with_slots(sql: str, used: list[str], inputs: Mapping[str, str]) -> Rendered:
    if not used:
        return Rendered(sql=sql, parts=[sql], slots=[], used=[])
    ctes = [f"{inputs[uid]} as (\n{_SLOT.format(i)}\n)" for i, uid in enumerate(used)]
    injected = inject_ctes(sql, ctes)
    pieces = _SLOT_RE.split(injected)
    parts = pieces[0::2]
    slots = [used[int(index)] for index in pieces[1::2]]
    return Rendered(sql=sql, parts=parts, slots=slots, used=used)


def _node(manifest: Any, uid: str) -> Any:
    return manifest.nodes.get(uid) or manifest.sources.get(uid)


def _unknown_macros(unknown: list[str], context: compat.RenderContext, node: Any) -> None:
    import difflib

    names = context.macro_names()
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, names, n=3)
        hints.append(f"'{name}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise UnknownMacroError(
        f"dbtproof: macros= overrides {', '.join(hints)}, but the project and its packages "
        f"have no macro of that name, nor dbt's context a value (rendering {node.name}). "
        "Name a macro as `name` or `package.name`, or a value such as `invocation_id`."
    )
