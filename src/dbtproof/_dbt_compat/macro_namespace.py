"""dbt's macro namespace, built once per package and cloned for each context.

dbt builds a context's macro namespace by creating one MacroGenerator per macro of the
project, its packages and the adapter (~500), each bound to that context's dict, the
node and the context's macro stack, then flattening the namespace into the dict
through its slow Mapping interface: about 0.6 ms of every model's render. What the
namespace holds depends only on the manifest's macros, the root project, the node's
package and the adapter's internal packages; which context, node and stack each
MacroGenerator is bound to is all that differs from one context to the next. So the
first context of a package builds it the way dbt does, and every later one gets a
clone: the same dicts with the same keys, holding new MacroGenerators of the same
macros, bound to the new context, node and stack.

:class:`NamespaceTemplates` keeps the templates (one manifest at a time) and makes
dbt's ``ModelContext`` use them; :class:`~dbtproof._dbt_compat.caches.RenderCaches`
holds one for every render of a model engine.

dbt-core 1.12 made the namespace lazy itself (a MacroGenerator made on lookup): there is
nothing to clone, dbt's own ModelContext is used, and a template only tells which names
the namespace puts in the context (:class:`_LazyNamespaceKeys`).
"""

from __future__ import annotations

from typing import Any

import dbtproof._dbt_compat.lazy_namespace as lazy_namespace

_SPACES = ("global_namespace", "local_namespace", "global_project_namespace")
_GENERATOR_ATTRS = frozenset({"context", "macro", "node", "stack"})

#: What the macro namespace of a node depends on besides the manifest's macros: the root
#: project, the node's package, the adapter's internal packages.
NamespaceKey = tuple[str, str, tuple[str, ...]]


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

    def clone(self, ctx: dict[str, Any], node: Any, stack: Any, make: Any) -> Any:
        """A namespace like the captured one, bound to *ctx*, *node* and *stack*: made by
        *make* (dbt's MacroNamespace's arguments and ``flat``, its flattened form)."""
        from dbt.clients.jinja import MacroGenerator

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
        by_kind = {"gen": generators, "space": spaces, "package": packages}
        return make(
            global_namespace=spaces["global_namespace"],
            local_namespace=spaces["local_namespace"],
            global_project_namespace=spaces["global_project_namespace"],
            packages=packages,
            flat={key: by_kind[kind][which] for key, kind, which in self.flat},
        )


class _LazyNamespaceKeys:
    """The names dbt-core 1.12's lazy macro namespace of a node puts in its context (what
    ``MacroNamespaceBuilder.build_namespace`` chains), without building it."""

    def __init__(self, macros: dict[str, dict[str, Any]], key: NamespaceKey) -> None:
        root, package, internal = key
        names = {*macros.get(package, {}), *macros.get(root, {})}
        names.update(name for name in macros if name not in internal)
        names.add("dbt")
        for name in internal:
            names.update(macros.get(name, {}))
        #: The names the namespace puts in the context dict.
        self.keys = frozenset(names)


class NamespaceTemplates:
    """The macro namespace templates of one manifest, and dbt's ModelContext using them.

    (manifest, its macros by package) -> {(root project, package, internal packages):
    template or None}. One manifest at a time: a new manifest (a new parse) starts anew.
    """

    def __init__(self) -> None:
        self._manifest: Any = None
        self._macros: Any = None
        self._templates: dict[NamespaceKey, _NamespaceTemplate | None] = {}
        self._context_class: Any = None

    @staticmethod
    def key(config: Any, package: str) -> NamespaceKey:
        """What the macro namespace of a node of *package* depends on, besides the manifest's
        macros: the root project, the node's package, the adapter's internal packages."""
        from dbt.adapters.factory import get_adapter_package_names

        internal = tuple(get_adapter_package_names(config.credentials.type))
        return (config.project_name, package, internal)

    def of_manifest(self, manifest: Any) -> dict[NamespaceKey, _NamespaceTemplate | None]:
        """The templates captured for *manifest* (none yet if it is not the last one's)."""
        macros = manifest.get_macros_by_package()
        if self._manifest is not manifest or self._macros is not macros:
            self._manifest, self._macros, self._templates = manifest, macros, {}
        return self._templates

    def template(
        self, manifest: Any, config: Any, package: str
    ) -> _NamespaceTemplate | _LazyNamespaceKeys | None:
        """The template for a node of *package*, if one was captured; on dbt-core 1.12 and
        later (whose namespace is lazy: nothing to clone), the names it puts in the
        context, read from the manifest."""
        known = self.of_manifest(manifest)
        key = self.key(config, package)
        if key not in known and lazy_namespace.dbt_is_lazy():
            known[key] = _LazyNamespaceKeys(manifest.get_macros_by_package(), key)
        return known.get(key)

    def context_class(self) -> Any:
        """dbt's ModelContext, with its macro namespace cloned from a template kept here.

        The first context of each (manifest, project, package, adapter) builds its
        namespace the way dbt does; later ones clone it. dbt versions whose namespace or
        context is not made the way the template expects get dbt's own ModelContext.
        """
        if self._context_class is None:
            self._context_class = _model_context_class(self)
        return self._context_class


def _model_context_class(templates: NamespaceTemplates) -> Any:
    """A ModelContext class whose namespaces come from *templates* (dbt's own class when
    its ``to_dict`` is not the one the templates' flattening replaces)."""
    from dbt.context.macros import MacroNamespace
    from dbt.context.manifest import ManifestContext
    from dbt.context.providers import ModelContext

    if ModelContext.to_dict is not ManifestContext.to_dict or lazy_namespace.dbt_is_lazy():
        return ModelContext

    class ClonedNamespace(MacroNamespace):  # type: ignore[misc, valid-type]
        """dbt's macro namespace cloned from a template, with its flattened form (what
        ``to_dict`` puts in the context) made with it: the context's state stays on the
        context's own namespace, nothing is added to the context."""

        def __init__(self, flat: dict[str, Any], **spaces: Any) -> None:
            super().__init__(**spaces)
            self.flat = flat

    class CachedNamespaceModelContext(ModelContext):  # type: ignore[misc, valid-type]
        def _build_namespace(self) -> Any:
            known = templates.of_manifest(self.manifest)
            key = templates.key(self.config, self.search_package)
            template = known.get(key)
            if template is not None:
                return template.clone(self._ctx, self.model, self.macro_stack, ClonedNamespace)
            namespace = super()._build_namespace()
            if key not in known:
                known[key] = _NamespaceTemplate.capture(
                    namespace, self._ctx, self.model, self.macro_stack
                )
            return namespace

        def to_dict(self) -> Any:
            if type(self.namespace) is not ClonedNamespace:
                return super().to_dict()
            # ManifestContext.to_dict, with the namespace flattened by the template.
            dct = super(ManifestContext, self).to_dict()
            dct.update(self.namespace.flat)
            return dct

    return CachedNamespaceModelContext
