"""The rules of the house (docs/architecture.md), checked on the source itself.

- no import cycle between dbtproof's modules, of any kind: imports inside functions and
  imports only for type checkers (under ``TYPE_CHECKING``) count;
- nothing of dbtproof's is attached to an object that is not dbtproof's (a dbt object, an
  adapter, a context): state about such an object is kept beside it, by an owner of ours;
- only the ``dbtproof._dbt_compat`` package imports dbt;
- no module holds mutable global state (caches belong to the objects that use them);
- the engine reads its host only through the :class:`~dbtproof.engine.host.EngineHost`
  protocol: it never imports the session nor touches a private attribute of its host;
- the ``dbt`` fixture's public surface is exactly what its reference page documents.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import dbtproof
from dbtproof import DbtFixture

PACKAGE = Path(dbtproof.__file__).parent
FIXTURE_PAGE = PACKAGE.parents[1] / "docs" / "reference" / "fixture.md"
COMPAT = "dbtproof._dbt_compat"
#: Calls whose result at module level is a mutable container.
MUTABLE_CALLS = {
    "dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "count",
    "WeakKeyDictionary", "WeakValueDictionary", "bytearray",
}  # fmt: skip
CACHING_DECORATORS = {"cache", "lru_cache", "cached"}


def modules() -> dict[str, ast.Module]:
    """Every module of the package, by dotted name, parsed."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def runtime_imports(module: str, tree: ast.Module, type_checking: bool = False) -> Iterator[str]:
    """The modules *module* imports when it runs (at top level or in a function); with
    *type_checking*, also those it imports only for type checkers."""
    is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()

    def walk(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child) and not type_checking:
                continue
            if isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    keep = len(parts) - child.level + (1 if is_package else 0)
                    base = ".".join(parts[:keep] + ([base] if base else []))
                yield base
                # `from dbtproof import _dbt_compat` imports a module, not a name
                yield from (f"{base}.{alias.name}" for alias in child.names)
            yield from walk(child)

    yield from walk(tree)


def internal_graph() -> dict[str, set[str]]:
    """Each dbtproof module and the dbtproof modules it imports, at run time or for type
    checkers."""
    trees = modules()
    graph: dict[str, set[str]] = {}
    for name, tree in trees.items():
        imported = runtime_imports(name, tree, type_checking=True)
        targets = {t for t in imported if t in trees and t != name}
        # importing a.b.c imports its packages a and a.b too; the root package is
        # everyone's parent, not an edge of the design
        graph[name] = {t for t in targets if t != "dbtproof"}
    return graph


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = internal_graph()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_only_the_compat_package_imports_dbt() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, tree in modules().items()
        if not (name == COMPAT or name.startswith(COMPAT + "."))
        for target in runtime_imports(name, tree)
        if target == "dbt" or target.startswith("dbt.")
    ]
    assert offenders == [], "\n".join(offenders)


def _mutable_value(value: ast.AST | None) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in MUTABLE_CALLS
    return False


def _decorator_name(decorator: ast.AST) -> str:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def test_no_module_holds_mutable_global_state() -> None:
    offenders = []
    for name, tree in modules().items():
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [node.target.id]
            else:
                targets = []
            if targets and targets != ["__all__"] and _mutable_value(node.value):  # type: ignore[attr-defined]
                offenders.append(f"{name}.{targets[0]} (line {node.lineno})")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                _decorator_name(d) in CACHING_DECORATORS for d in node.decorator_list
            ):
                offenders.append(f"{name}.{node.name}: a module-level cache (line {node.lineno})")
    assert offenders == [], "\n".join(offenders)


def test_the_engine_reads_its_host_only_through_the_protocol() -> None:
    offenders = []
    for name, tree in modules().items():
        if not name.startswith("dbtproof.engine"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
                if any(n == "dbtproof.session.session" or n == "session" for n in names):
                    offenders.append(f"{name} imports the session (line {node.lineno})")
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and (
                    (isinstance(node.value, ast.Name) and node.value.id in ("host", "session"))
                    or (isinstance(node.value, ast.Attribute) and node.value.attr == "host")
                )
            ):
                offenders.append(f"{name} reads host.{node.attr} (line {node.lineno})")
    assert offenders == [], "\n".join(offenders)


def documented_fixture_api() -> set[str]:
    """The ``dbt.<name>`` of the table of the ``dbt`` fixture's reference page."""
    section = FIXTURE_PAGE.read_text().split("# The `dbt` fixture", 1)[1].split("\n#", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `dbt.")]
    names = set()
    for line in table:
        cell = re.sub(r"\([^)]*\)", "", line.split("|")[1]).replace("`", "")
        # "dbt.build / run / seed", "dbt.schema, dbt.target"
        names.update(re.sub(r"^dbt\.", "", part.strip()) for part in re.split(r"[/,]", cell))
    return names


def test_the_dbt_fixture_is_exactly_what_its_reference_page_documents() -> None:
    public = {name for name in dir(DbtFixture) if not name.startswith("_")}
    documented = documented_fixture_api()
    assert documented, "the table of the `dbt` fixture's reference page was not found"
    assert public == documented


def test_every_public_member_of_the_dbt_fixture_is_documented_in_its_docstring() -> None:
    undocumented = [
        name
        for name in dir(DbtFixture)
        if not name.startswith("_") and not (getattr(DbtFixture, name).__doc__ or "").strip()
    ]
    assert undocumented == []


#: (module, attribute) attached on purpose: pytest's reports take extra attributes by design
#: (``TestReport(**extra)``) and serialize them to xdist's controller with the report.
ATTACHED_BY_DESIGN = {("dbtproof.plugin.hooks", "dbtproof_no_verdict")}


def _ours(name: object) -> bool:
    """A name that says "dbtproof's" (``_dbtproof_flat``, ``dbtproof_run``): the prefix only
    an attribute put on someone else's object needs, to keep clear of its own names."""
    return isinstance(name, str) and name.lstrip("_").startswith("dbtproof")


def _attached(node: ast.AST, in_class: bool) -> str | None:
    """What *node* attaches to an object under a dbtproof-prefixed name, if it does."""
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _ours(node.attr):
        return f"sets .{node.attr}"
    if isinstance(node, ast.Call):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("setattr", "__setattr__") and any(
            isinstance(arg, ast.Constant) and _ours(arg.value) for arg in node.args
        ):
            return f"calls {called}(..., {node.args[1].value!r}, ...)"  # type: ignore[attr-defined]
    if in_class and isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        named = [t.id for t in targets if isinstance(t, ast.Name) and _ours(t.id)]
        if named:
            return f"gives its class the attribute {named[0]}"
    return None


def test_nothing_is_attached_to_objects_that_are_not_dbtproofs() -> None:
    """State about a dbt object (an adapter, a context, a node) lives beside it — in a
    WeakKeyDictionary of an owner of ours, or in a wrapper of ours — never on it."""
    offenders = []
    for name, tree in modules().items():
        class_bodies = {
            id(statement)
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for statement in node.body
        }
        for node in ast.walk(tree):
            found = _attached(node, id(node) in class_bodies)
            if found and not any(name == m and a in found for m, a in ATTACHED_BY_DESIGN):
                offenders.append(f"{name} {found} (line {node.lineno})")  # type: ignore[attr-defined]
    assert offenders == [], "\n".join(offenders)


def _classes_of_the_package() -> dict[str, str]:
    """Each public class name defined in dbtproof -> the module defining it."""
    return {
        node.name: name
        for name, tree in modules().items()
        for node in tree.body
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }


def _annotated_names(cls: type) -> set[str]:
    """The names in the annotations of what *cls*'s public members return or hold."""
    texts = [
        str(annotation)
        for field, annotation in vars(cls).get("__annotations__", {}).items()
        if not field.startswith("_")
    ]
    for member_name, member in vars(cls).items():
        if member_name.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else member
        function = getattr(function, "__func__", function)
        texts.append(str(getattr(function, "__annotations__", {}).get("return", "")))
    return {word for text in texts for word in re.findall(r"[A-Za-z_]\w*", text)}


def test_every_type_a_user_receives_is_importable_from_dbtproof() -> None:
    """What the ``dbt`` fixture returns, and what that returns in turn, can be named in a
    user's type hints without a private import: ``from dbtproof import InvocationResult``."""
    import importlib

    defined = _classes_of_the_package()
    seen: set[str] = set()
    pending = [DbtFixture]
    while pending:
        for word in _annotated_names(pending.pop()):
            if word in defined and word not in seen:
                seen.add(word)
                pending.append(getattr(importlib.import_module(defined[word]), word))
    missing = sorted(word for word in seen if word not in dbtproof.__all__)
    assert seen, "no type found in the dbt fixture's annotations"
    assert missing == [], f"returned to users but not exported by dbtproof: {missing}"


def test_every_error_is_a_dbtproof_error_or_an_item_outcome() -> None:
    """A user's mistake is a DbtproofError; dbt's verdict on an item is a DbtItemOutcome, and one
    that leaves the item without a verdict a DbtItemSetupError, which the plugin reports as
    an error by that base alone (no list of classes to keep in step)."""
    from dbtproof import errors

    bases = (errors.DbtproofError, errors.DbtItemOutcome, Warning)
    loose = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
        and not issubclass(value, bases)
    ]
    assert loose == []
    plugin = modules()["dbtproof.plugin.hooks"]
    named = sorted(
        alias.name
        for node in ast.walk(plugin)
        if isinstance(node, ast.ImportFrom) and node.module == "dbtproof.errors"
        for alias in node.names
        if isinstance(getattr(errors, alias.name, None), type)
        and issubclass(getattr(errors, alias.name), errors.DbtItemOutcome)
        and alias.name != "DbtItemSetupError"
    )
    assert named == [], f"the plugin lists item outcomes by hand: {named}"


#: The layer folders of the package, top to bottom: a module imports only from its own folder
#: and from folders of a lower tier, never from a peer of its tier nor from above (imports for
#: type checkers too). ``errors`` is the module every layer may raise from.
LAYERS = (
    ("cli",),
    ("agents",),
    ("plugin",),
    ("session",),
    ("engine", "safety", "credentials", "evidence"),
    ("compare", "project"),
    ("_dbt_compat",),
    ("errors",),
)
#: The tree is in layer folders once scripts/layer_folders.py has moved it.
LAYERED = not (PACKAGE / "plugin.py").exists()


def layer_of(module: str) -> int | None:
    """The tier of *module*'s folder (0 is the top); None for the package itself."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for tier, folders in enumerate(LAYERS):
        if parts[1] in folders:
            return tier
    raise AssertionError(f"{module} is in no layer folder ({', '.join(sum(LAYERS, ()))})")


@pytest.mark.xfail(
    not LAYERED, reason="the modules are moved into layers by scripts/layer_folders.py", strict=True
)
def test_each_layer_imports_only_the_layers_below_it() -> None:
    offenders = []
    for module, targets in internal_graph().items():
        tier = layer_of(module)
        for target in sorted(targets):
            below = layer_of(target)
            same_folder = module.split(".")[1:2] == target.split(".")[1:2]
            if tier is None or below is None or same_folder or below > tier:
                continue
            offenders.append(f"{module} imports {target}")
    assert offenders == [], "\n".join(offenders)


@pytest.mark.xfail(
    not LAYERED, reason="scripts/layer_folders.py renames the base error", strict=True
)
def test_the_base_error_s_old_name_is_a_deprecated_alias() -> None:
    from dbtproof import errors

    with pytest.warns(DeprecationWarning, match="DbtproofError"):
        from dbtproof import DbtError  # the old name
    assert DbtError is errors.DbtproofError  # the old name
