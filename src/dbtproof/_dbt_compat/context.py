"""dbt's runtime Jinja context of one node, with the means to replace parts of it.

Model unit tests (:mod:`dbtproof.engine`) render a model through this context with its
refs, sources, ``this``, vars, env vars and macros replaced. Tested on dbt-core 1.8.10,
1.11 and 1.12 (``tests/test_engine*.py`` run on each); 1.12's lazy macro namespace is
handled by :mod:`.lazy_namespace`. Python's warnings while it renders are treated as the
dbt CLI treats them (:mod:`.cli_warnings`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import dbtproof._dbt_compat.lazy_namespace as lazy_namespace
from dbtproof._dbt_compat.cli_warnings import warnings_as_the_dbt_cli

if TYPE_CHECKING:
    from dbtproof._dbt_compat.caches import RenderCaches


class RenderContext:
    """dbt's runtime Jinja context of one node, with the means to replace parts of it.

    ``values`` is the dict dbt renders with (``ref``, ``source``, ``this``, ``var``,
    every macro ...). Every macro dbt builds for the context shares that one dict, so a
    name replaced in it is replaced for macros called indirectly too; ``adapter.dispatch``
    looks macros up in the context's macro namespace, which :meth:`override_macro`
    updates as well.

    *caches* are what the renders of one engine share (macro namespace templates,
    compiled expressions); the context is built and rendered through them.

    With *lazy*, dbt's context is built when first needed; names given with
    :meth:`set_value`, then macros replaced with :meth:`override_macro_later`, are
    applied to it then. :meth:`render` does not build it for a model whose only Jinja
    is ``{{ expressions }}`` reading nothing but names given with :meth:`set_value` and
    ``config``: nothing else of the context can reach such a model's SQL.
    """

    def __init__(
        self, node: Any, config: Any, manifest: Any, caches: RenderCaches, lazy: bool = False
    ) -> None:
        self.node = node
        self._config = config
        self._manifest = manifest
        self._caches = caches
        self._values: dict[str, Any] | None = None
        self._namespace: Any = None
        self._pending: dict[str, Any] = {}
        self._pending_macros: list[tuple[str, Any]] = []
        self._pending_wraps: list[tuple[str, Any]] = []
        if not lazy:
            self._build()

    def _build(self) -> dict[str, Any]:
        from dbt.context.providers import RuntimeProvider

        context_class = self._caches.namespaces.context_class()
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
        time (each compiled once, kept in the caches); anything else goes through dbt's
        ``get_rendered`` — the result is the same (see :mod:`.expressions`).
        """
        from dbt.clients.jinja import get_rendered

        with warnings_as_the_dbt_cli():
            expressions = self._caches.expressions
            plan = expressions.plan(text)
            if plan is None:
                return str(get_rendered(text, self.values, self.node))
            values = self._values
            if values is None:
                values = self._without_dbt_context(plan.names)
                if values is None:
                    values = self._build()
            return expressions.render(plan, values, self.node)

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
            namespaces = self._caches.namespaces
            template = namespaces.template(self._manifest, self._config, self.node.package_name)
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
        if lazy_namespace.is_lazy(self._namespace):
            lazy_namespace.close(self._values, self._namespace)
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

        if lazy_namespace.is_lazy(self._namespace):
            self.values  # noqa: B018 (built, if it was not yet)
            return lazy_namespace.macro_names(self._namespace)

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

        values = self.values
        if lazy_namespace.is_lazy(self._namespace):
            return lazy_namespace.override_macro(self._namespace, macro, value, matches)
        spaces: list[dict[str, Any]] = [values]
        spaces += [v for v in values.values() if isinstance(v, dict) and v is not values]
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

    def override_value(self, name: str, value: Any) -> bool:
        """Replace the context's value *name* — a variable such as ``invocation_id``, not a
        macro — by *value* as it is, as dbt's unit tests' ``overrides: macros`` do
        (``generate_runtime_unit_test_context``): ``name`` at the top level, or
        ``package.name`` in that package's namespace. Returns False when the context has
        no value of that name.
        """
        package, _, plain = name.rpartition(".")
        if package and lazy_namespace.is_lazy(self._namespace):
            self.values  # noqa: B018 (built, if it was not yet)
            return lazy_namespace.override_in_package(self._namespace, package, plain, value)
        space = self.values.get(package) if package else self.values
        if not isinstance(space, MutableMapping) or plain not in space:
            return False
        space[plain] = value
        return True

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
        with warnings_as_the_dbt_cli():
            return self.values[name](*args, **kwargs)


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
