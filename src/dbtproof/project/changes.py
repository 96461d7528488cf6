"""``--dbt-changed[=REF]``: collect only what a change touches.

Three stages, each a function:

1. :func:`changed_files` — the files ``git diff REF`` names (and untracked ones).
   Without REF: the merge base with the default branch (``origin/HEAD``, else ``main``
   or ``master``), or, on that branch itself or when there is none, the uncommitted
   changes (``HEAD``).
2. :func:`affected_nodes` — dbt's ``state:modified+`` worked out from those paths and the
   manifest alone (no manifest of the base revision needed): the nodes whose file changed
   or whose YAML entry differs from the base revision's (:func:`changed_entries`), the
   nodes using a changed macro (directly or through other macros), every node when
   ``dbt_project.yml`` or a package changed, and everything downstream of those (their
   tests included).
3. :func:`models_called` — the models a pytest test runs by name
   (``dbt.run_model("customers", ...)``), read from its source with :mod:`ast`: such a test
   counts as touching them.

The plugin keeps a dbt item when its node is affected, and a pytest test when its file
changed or a model it runs is affected; the rest are deselected. A ``dbtproof watch``
round, which knows the affected nodes before it collects, does not make the other items
at all (:func:`untouched_function`); :class:`CalledModels` reads each test module once
per saved version across the rounds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import graph_nodes, resource_type
from dbtproof.project.vcs import git

#: Branches taken as the default branch when ``origin/HEAD`` is not set, in order.
DEFAULT_BRANCHES = ("main", "master")
#: The fixture calls whose first argument (or ``model=``) names a model a test runs.
_MODEL_CALLS = frozenset({"run_model"})


def default_base(root: Path) -> str:
    """The revision ``--dbt-changed`` compares with when given none (see the module)."""
    head = git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    branches = [head.strip()] if head else []
    branches += [f"refs/heads/{name}" for name in DEFAULT_BRANCHES]
    for branch in branches:
        if git(root, "rev-parse", "--verify", "--quiet", branch) is None:
            continue
        base = git(root, "merge-base", "HEAD", branch)
        if base:
            return base.strip()
    return "HEAD"


def changed_files(project_root: Path, ref: str | None) -> tuple[Path, str, set[Path]]:
    """The git work tree's top folder, the revision compared with and the files changed
    since it (absolute paths), untracked files included; *ref* None or empty means
    :func:`default_base`.

    Raises :class:`DbtproofError` when *project_root* is not in a git work tree or *ref* is
    not a revision.
    """
    top = git(project_root, "rev-parse", "--show-toplevel")
    if top is None:
        raise DbtproofError(
            f"dbtproof: --dbt-changed needs git: {project_root} is not in a git work tree "
            f"(or git is not installed). Run without --dbt-changed."
        )
    root = Path(top.strip())
    base = ref or default_base(root)
    if git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}") is None:
        raise DbtproofError(
            f"dbtproof: --dbt-changed={base}: git knows no such revision in {root}. "
            f"Give a branch, tag or commit (--dbt-changed=origin/main), or fetch it first."
        )
    diff = git(root, "diff", "--name-only", "--no-renames", base) or ""
    untracked = git(root, "ls-files", "--others", "--exclude-standard") or ""
    lines = {line for line in (diff + untracked).splitlines() if line.strip()}
    return root.resolve(), base, {(root / line).resolve() for line in lines}


def relative_to_project(project_root: Path, changed: Iterable[Path]) -> set[str]:
    """The paths of *changed* inside the project, relative to it (``/``-separated), as
    dbt's ``original_file_path`` writes them."""
    root = project_root.resolve()
    return {path.relative_to(root).as_posix() for path in changed if path.is_relative_to(root)}


def _file_of(path: Any) -> str:
    """A node's file, as git names it relative to the project (``project://`` dropped)."""
    text = str(path or "")
    return text.split("://", 1)[1] if "://" in text else text


def _macros_using(manifest: Any, changed: set[str]) -> set[str]:
    """Unique ids of the macros in *changed* files and of every macro calling one of them."""
    macros = {
        uid
        for uid, macro in manifest.macros.items()
        if _file_of(macro.original_file_path) in changed
    }
    grew = True
    while grew:
        grew = False
        for uid, macro in manifest.macros.items():
            uses = getattr(getattr(macro, "depends_on", None), "macros", None) or []
            if uid not in macros and any(used in macros for used in uses):
                macros.add(uid)
                grew = True
    return macros


def _all_nodes(manifest: Any) -> dict[str, Any]:
    return {
        **graph_nodes(manifest),  # functions too
        **manifest.sources,
        **getattr(manifest, "unit_tests", {}),
    }


#: The YAML sections whose entries are compared one by one, and the key of a node's entry.
_SECTIONS = MappingProxyType(
    {
        "model": "models",
        "seed": "seeds",
        "snapshot": "snapshots",
        "analysis": "analyses",
        "unit_test": "unit_tests",
        "function": "functions",
    }
)


def _without_descriptions(value: Any) -> Any:
    """*value* with every ``description`` key left out (dbt does not count a changed
    description as a modification unless docs are persisted)."""
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(v) for v in value]
    return value


def _entries(text: str | None) -> dict[tuple[str, str], Any] | None:
    """A properties YAML file's entries by ``(section, name)``; a source's tables as
    ``("sources", "<source>.<table>")`` (with the source's own keys); None if unreadable."""
    import yaml

    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    found: dict[tuple[str, str], Any] = {}
    for section, entries in data.items():
        if not isinstance(entries, list):
            found[(str(section), "")] = entries
            continue
        for entry in entries:
            if not isinstance(entry, dict) or "name" not in entry:
                continue
            if section == "sources":
                own = {k: v for k, v in entry.items() if k != "tables"}
                for table in entry.get("tables") or []:
                    if isinstance(table, dict) and "name" in table:
                        key = ("sources", f"{entry['name']}.{table['name']}")
                        found[key] = _without_descriptions([own, table])
                continue
            found[(str(section), str(entry["name"]))] = _without_descriptions(entry)
    return found


def changed_entries(top: Path, base: str, path: Path) -> set[tuple[str, str]] | None:
    """The entries of the properties file *path* (in the git work tree whose top folder is
    *top*) that differ from its version at *base* (added, removed or changed; descriptions
    ignored); None when that cannot be told."""
    if not path.is_relative_to(top):
        return None
    old = git(top, "show", f"{base}:{path.relative_to(top).as_posix()}")
    try:
        new_text = path.read_text(encoding="utf-8")
    except OSError:
        new_text = ""
    before, after = _entries(old or ""), _entries(new_text)
    if before is None or after is None:
        return None
    unnamed_before = {key: value for key, value in before.items() if key[1] == ""}
    unnamed_after = {key: value for key, value in after.items() if key[1] == ""}
    if unnamed_before != unnamed_after:
        return None  # a change outside the named entries (version:, ...): the whole file
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def _entry_key(node: Any) -> tuple[str, str] | None:
    kind = resource_type(node)
    if kind == "source":
        return ("sources", f"{node.source_name}.{node.name}")
    if kind == "test":
        owner = str(getattr(node, "file_key_name", "") or "")
        section, _, name = owner.partition(".")
        return (section, name) if name else None
    section = _SECTIONS.get(kind)
    return (section, str(node.name)) if section else None


def modified_nodes(
    manifest: Any,
    changed: Iterable[str],
    entries: Mapping[str, set[tuple[str, str]] | None] | None = None,
) -> set[str]:
    """The nodes, sources and unit tests a change to the files *changed* modifies itself.

    *entries* tells, for a changed properties (YAML) file, which of its entries changed
    (:func:`changed_entries`): a node defined or patched there is modified only when its
    own entry is; without it (or with None for the file) every node of the file is.
    """
    changed = set(changed)
    entries = entries or {}
    nodes = _all_nodes(manifest)
    project_files = {"dbt_project.yml", "packages.yml", "dependencies.yml"}
    if changed & project_files or any(path.startswith("dbt_packages/") for path in changed):
        return set(nodes)
    macros = _macros_using(manifest, changed)
    found = set()
    for uid, node in nodes.items():
        files = {_file_of(node.original_file_path), _file_of(getattr(node, "patch_path", None))}
        uses = getattr(getattr(node, "depends_on", None), "macros", None) or []
        if any(macro in macros for macro in uses):
            found.add(uid)
            continue
        for path in files & changed:
            known = entries.get(path)
            code_file = path == _file_of(node.original_file_path) and not path.endswith(
                (".yml", ".yaml")
            )
            if code_file or known is None or _entry_key(node) in known:
                found.add(uid)
                break
    return found


def _children(manifest: Any) -> dict[str, set[str]]:
    """Each node's children, unit tests included (read from ``depends_on``)."""
    children: dict[str, set[str]] = {}
    for uid, node in _all_nodes(manifest).items():
        for parent in getattr(getattr(node, "depends_on", None), "nodes", None) or []:
            children.setdefault(parent, set()).add(uid)
    return children


def affected_nodes(
    manifest: Any,
    changed: Iterable[str],
    entries: Mapping[str, set[tuple[str, str]] | None] | None = None,
) -> set[str]:
    """dbt's ``state:modified+`` of the files *changed*: what they modify (see
    :func:`modified_nodes`) and everything downstream of it."""
    children = _children(manifest)
    affected = modified_nodes(manifest, changed, entries)
    stack = list(affected)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in affected:
                affected.add(child)
                stack.append(child)
    return affected


def _called_in(scope: ast.AST) -> set[str]:
    """The model names passed to ``run_model`` as string literals within *scope*."""
    names = set()
    for node in ast.walk(scope):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", None)
        if name not in _MODEL_CALLS:
            continue
        arguments = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "model")]
        for argument in arguments:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names.add(argument.value)
    return names


def models_called(source: str) -> tuple[dict[str, set[str]], set[str]]:
    """The models a test module runs by name: ``({function: names}, names in the whole
    module)``, read once per module; empty when the source does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}, set()
    functions: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.setdefault(node.name, _called_in(node))
    return functions, _called_in(tree)


#: What :func:`models_called` returns: ``({function: names}, names in the whole module)``.
Called = tuple[dict[str, set[str]], set[str]]


@dataclass
class CalledModels:
    """The models each test module runs by name (:func:`models_called`), read once per
    saved version of the file (its modification time and size): ``dbtproof watch`` keeps
    one for all its rounds."""

    _read: dict[Path, tuple[tuple[int, int], Called]] = field(default_factory=dict)

    def of(self, path: Path) -> Called:
        """What the module at *path* runs; nothing when it cannot be read."""
        try:
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            kept = self._read.get(path)
            if kept is not None and kept[0] == version:
                return kept[1]
            called = models_called(path.read_text(encoding="utf-8"))
        except OSError:
            return {}, set()
        self._read[path] = (version, called)
        return called


def model_names(manifest: Any, unique_ids: Iterable[str]) -> set[str]:
    """The names a test may call the models among *unique_ids* by (``name`` and
    ``package.name``)."""
    names = set()
    for uid in unique_ids:
        node = manifest.nodes.get(uid)
        if node is not None and resource_type(node) == "model":
            names.update((node.name, f"{node.package_name}.{node.name}"))
    return names


def touches(called: Called, function: str, names: set[str]) -> bool:
    """Whether the test *function* of a module (*called*: :func:`models_called`) runs a
    model named in *names*; a test naming no model by a literal itself is judged by what
    its module names (its helpers, its parameters)."""
    functions, module = called
    return bool((functions.get(function) or module) & names)


def untouched_function(
    path: Path, function: str, changed: set[Path], names: set[str], called: CalledModels
) -> bool:
    """Whether :func:`keep_changed` would deselect every item of the test *function* in
    the module at *path* (resolved) whatever its fixtures: its file is not among the
    *changed* ones and it runs none of the models *names*. A watch round makes no item
    for it."""
    return path not in changed and not touches(called.of(path), function, names)


def summary(ref: str, changed: set[str], affected: set[str]) -> str:
    """One line for the run's header."""
    return (
        f"--dbt-changed: {len(changed)} changed file(s) since {ref}, "
        f"{len(affected)} dbt node(s) modified or downstream"
    )


def keep_changed(
    items: list[Any],
    manifest: Any | None,
    project_root: Path,
    ref: str | None,
    files: Sequence[str] = (),
    called: CalledModels | None = None,
    affected: set[str] | None = None,
) -> tuple[list[Any], list[Any], str]:
    """Split pytest *items* into ``(kept, deselected, header line)`` for ``--dbt-changed``
    (the files git says changed since *ref*), or for the changed *files* when given
    (``dbtproof watch``).

    A dbt item (one with a ``unique_id``) is kept when its node is affected; any other
    test when its file changed, or when it uses ``dbt`` and a model it runs is affected.
    *manifest* is None when the run started no dbt session (then only changed files
    count). *called* reads the test modules (a new one, read once each, when None).
    *affected*: the nodes the changed *files* affect, when the caller worked them out
    already (a watch round).
    """
    if files:
        top, base = None, "the last round"
        changed = {Path(path).resolve() for path in files}
    else:
        top, base, changed = changed_files(project_root, ref)
    if affected is None or not files:
        affected = set()
        if manifest is not None:
            relative = relative_to_project(project_root, changed)
            entries = {}
            if top is not None:  # against a revision: a YAML entry is compared with REF's
                root = project_root.resolve()
                for path in relative:
                    if path.endswith((".yml", ".yaml")):
                        entries[path] = changed_entries(top, base, root / path)
            affected = affected_nodes(manifest, relative, entries)
    names = model_names(manifest, affected) if manifest is not None else set()
    called = called if called is not None else CalledModels()
    kept, dropped = [], []
    for item in items:
        unique_id = getattr(item, "unique_id", None)
        if unique_id is not None:
            keep = unique_id in affected
        else:
            path = Path(item.path).resolve()
            keep = path in changed
            if not keep and names and "dbt" in getattr(item, "fixturenames", ()):
                function = getattr(item, "originalname", None) or item.name
                keep = touches(called.of(path), function, names)
        (kept if keep else dropped).append(item)
    return kept, dropped, summary(base, changed, affected)
