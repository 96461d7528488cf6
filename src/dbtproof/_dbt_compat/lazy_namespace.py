"""Replacing macros in dbt-core 1.12's lazy macro namespace.

Up to dbt-core 1.11, a context's macro namespace holds one MacroGenerator per macro in
plain dicts (``global_namespace``, ``packages`` ...) and ``to_dict`` copies them into the
context dict: a macro is replaced by writing into those dicts. From 1.12 the namespace is
a ``ChainMap`` over the manifest's own dicts of macros (by package) that makes a
MacroGenerator on each lookup, and the context dict is a ``ChainMap`` in front of it.
Writing into what a lookup returns would write into the manifest, so replacements go
into a dict of this module's own put first in the namespace's chain (the *overlay*):
a plain name as it is, a ``package.name`` as a chain of the replacements before the
package's macros. Every lookup — the context dict, macros calling macros, and
``adapter.dispatch`` (``get_from_package``) — sees it.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class _Overlay(dict):  # type: ignore[type-arg]
    """The replacements put first in a lazy namespace's chain."""


def dbt_is_lazy() -> bool:
    """Whether the installed dbt's macro namespace is lazy (dbt-core 1.12 and later)."""
    from dbt.context.macros import MacroNamespace

    return issubclass(MacroNamespace, ChainMap)


def is_lazy(namespace: Any) -> bool:
    """Whether *namespace* is dbt-core 1.12's lazy macro namespace (a ChainMap)."""
    return isinstance(namespace, ChainMap)


def _overlay(namespace: Any) -> _Overlay:
    first = namespace.maps[0] if namespace.maps else None
    if isinstance(first, _Overlay):
        return first
    made = _Overlay()
    namespace.maps.insert(0, made)
    return made


def _packages(namespace: Any) -> Iterator[str]:
    """The names a package's macros are reached by (``dbt``, a package's name), each once,
    without making a MacroGenerator."""
    seen: set[str] = set()
    for space in namespace.maps:
        for key, value in space.items():
            if isinstance(value, Mapping) and key not in seen:
                seen.add(key)
                yield key


def override_macro(namespace: Any, macro: str, value: Any, matches: Callable[[Any], bool]) -> bool:
    """Make *macro* resolve to *value* wherever it now resolves to a macro *matches*
    accepts: as a plain name and in each package's namespace. Returns whether any did."""
    overlay = _overlay(namespace)
    found = False
    if matches(namespace.get(macro)):
        overlay[macro] = value
        found = True
    for name in list(_packages(namespace)):
        space = namespace.get(name)
        if isinstance(space, Mapping) and matches(space.get(macro)):
            _set_in_package(namespace, overlay, name, macro, value)
            found = True
    return found


def override_in_package(namespace: Any, package: str, name: str, value: Any) -> bool:
    """Make ``package.name`` resolve to *value* if the namespace has a package *package*
    with a member *name*. Returns whether it has."""
    space = namespace.get(package)
    if not isinstance(space, Mapping) or name not in space:
        return False
    _set_in_package(namespace, _overlay(namespace), package, name, value)
    return True


def _set_in_package(namespace: Any, overlay: _Overlay, package: str, name: str, value: Any) -> None:
    chain = overlay.get(package)
    if not isinstance(chain, ChainMap):
        # The package's macros as the namespace found them before the overlay had it.
        original = next(
            space[package]
            for space in namespace.maps[1:]
            if isinstance(space.get(package), Mapping)
        )
        chain = overlay[package] = ChainMap({}, original)
    chain.maps[0][name] = value


def macro_names(namespace: Any) -> list[str]:
    """Every macro name *namespace* resolves, plain and ``package.name`` (replaced ones
    left out, as they are no macros any more)."""
    from dbt.contracts.graph.nodes import Macro

    def macros(space: Mapping[str, Any]) -> set[str]:
        names: set[str] = set()
        for key in space:
            if isinstance(_raw(space, key), Macro):
                names.add(key)
        return names

    found = macros(namespace)
    for package in _packages(namespace):
        space = _raw(namespace, package)
        found.update(f"{package}.{name}" for name in macros(space))
    return sorted(found)


def _raw(space: Mapping[str, Any], key: str) -> Any:
    """*space*'s value for *key* as stored (a Macro, not the MacroGenerator a lazy
    namespace makes of it)."""
    if isinstance(space, ChainMap):
        for inner in space.maps:
            if key in inner:
                return _raw(inner, key) if isinstance(inner, ChainMap) else inner[key]
        raise KeyError(key)
    return space[key]


def close(values: Any, namespace: Any) -> None:
    """Break the reference cycles of a context dict built on a lazy namespace, leaving
    the manifest's dicts of macros untouched."""
    for space in values.maps:
        if space is not namespace:
            space.clear()
    namespace.maps[:] = [{}]
    namespace.ctx = None
