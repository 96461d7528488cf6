"""dbt's manifest: what ``ref()`` and ``source()`` resolve to, its disabled nodes, and its
user-defined functions (dbt 1.11's ``functions:``, kept apart from its other nodes).

The readers of a node that need no dbt at all (its resource type, selector, whether it
is ephemeral) are in :mod:`dbtproof.project.nodes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


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


def disabled_nodes(manifest: Any) -> list[Any]:
    """The project's disabled nodes (a seed turned off by a var still describes its table)."""
    found = []
    for nodes in (getattr(manifest, "disabled", None) or {}).values():
        found.extend(nodes if isinstance(nodes, list) else [nodes])
    return found


def functions(manifest: Any) -> Mapping[str, Any]:
    """The project's enabled user-defined functions (dbt 1.11's ``functions:``) by unique
    id: dbt keeps them in ``Manifest.functions``, apart from ``Manifest.nodes``. Empty on
    a dbt without functions (before 1.11)."""
    found = getattr(manifest, "functions", None)
    return found if found is not None else {}


# -- handing a parse to another process ------------------------------------------------


def save_parse(path: Any, manifest: Any, config: Any) -> None:
    """Write a parse (dbt's ``Manifest`` and the ``RuntimeConfig`` it was parsed with) to
    *path*, for :func:`load_parse` in another process of the same run.

    Both pickle themselves (dbt's own multiprocessing relies on it). The config is
    written without its credentials, nor those of the package configs it holds
    (``dependencies``; the reader binds its own: ``with_credentials``), nor the values
    of the env vars the profile read, so no password or token of the profile reaches the
    file; it is written readable by its owner only, next to its final name, and renamed,
    so a reader never sees half of it.
    """
    import os
    import pickle
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = _portable_config(config, {})
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        pickle.dump((manifest, config), stream, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)


def _portable_config(config: Any, done: dict[int, Any]) -> Any:
    """A copy of the ``RuntimeConfig`` *config* for :func:`save_parse`, without
    credentials nor the values of the env vars its profile read, and so for each config
    of its ``dependencies`` (which dbt builds from the same profile: the same
    credentials); *done* maps the id of each config already copied to its copy (one copy
    each, shared as the originals are)."""
    import copy

    if id(config) in done:
        return done[id(config)]
    portable = done[id(config)] = copy.copy(config)
    portable.credentials = None
    # the values of the env vars the profile read (dbt keeps them for its partial-parse
    # check, made at parse time): its password is one; the names are all that is read back
    if getattr(config, "profile_env_vars", None):
        portable.profile_env_vars = dict.fromkeys(config.profile_env_vars, "")
    dependencies = getattr(config, "dependencies", None)
    if dependencies:
        portable.dependencies = {
            name: _portable_config(dependency, done) for name, dependency in dependencies.items()
        }
    return portable


def load_parse(path: Any) -> tuple[Any, Any]:
    """The ``(manifest, runtime config without credentials)`` :func:`save_parse` wrote to
    *path* (a file this run's own process wrote: never a file from elsewhere)."""
    import pickle

    with open(path, "rb") as stream:
        manifest, config = pickle.load(stream)  # noqa: S301 - this run's controller wrote it
    # dbt's Manifest.__reduce_ex__ hands its lookup caches over by position, in an order
    # that is not its fields' (1.11: the disabled lookup comes back as the analysis
    # lookup, and ref() to a model then fails "RefableLookup.find() missing ... 'manifest'"
    # after a full parse, when the caches were built): drop them, dbt builds them anew.
    for name in [n for n in vars(manifest) if n.startswith("_") and n.endswith("_lookup")]:
        setattr(manifest, name, None)
    return manifest, config


def parse_inputs(manifest: Any, config: Any) -> tuple[list[str], list[str]]:
    """What dbt read to parse *manifest* with *config*, besides the profile and the vars:
    ``(folders, env var names)``.

    The folders are the project's resource paths (every ``*_paths`` setting of the
    runtime config: models, macros, seeds, tests, snapshots, analyses, docs, assets,
    functions where the version has them) and its packages' install path, relative to
    the project; the names are every env var a file, ``dbt_project.yml`` or the profile
    read while parsing (dbt keeps them for its own partial-parse check).
    """
    folders = {
        str(value)
        for name, values in vars(config).items()
        if name.endswith("_paths") and isinstance(values, (list, tuple))
        for value in values
    }
    folders.add(str(getattr(config, "packages_install_path", "dbt_packages")))
    names = set(getattr(manifest, "env_vars", None) or {})
    for attribute in ("project_env_vars", "profile_env_vars"):
        names.update(getattr(config, attribute, None) or {})
    for source_file in (getattr(manifest, "files", None) or {}).values():
        found = getattr(source_file, "env_vars", None) or {}
        if isinstance(found, dict):  # a schema file: {yaml key: {name: [env var, ...]}}
            for by_name in found.values():
                for env_names in (by_name or {}).values():
                    names.update(env_names or ())
        else:
            names.update(found)
    return sorted(folders), sorted(names)


def parse_projects(config: Any) -> tuple[str, list[tuple[str, list[str], list[str]]]]:
    """The projects dbt reads to parse with *config* (after a parse, which resolved them):
    the root project, then each package dbt resolved in its packages' install path (one
    folder each, as dbt names it: a symlink is not resolved here; dbt's own packages are
    left out, the versions name them). Returns the root project's packages' install path
    and the projects, each as ``(folder relative to the root project, its resource
    folders, its target, log and packages' install paths)``, the last two relative to
    that project's folder.
    """
    import os
    from pathlib import Path

    root = Path(config.project_root)
    installed = root / str(config.packages_install_path)
    found: list[tuple[str, list[str], list[str]]] = []
    for project in (config.load_dependencies() or {}).values():
        here = Path(project.project_root)
        if here != root and here.parent != installed:
            continue  # dbt's own (internal) packages
        found.append(
            (
                os.path.relpath(here, root),
                sorted(
                    {
                        str(value)
                        for name, values in vars(project).items()
                        if name.endswith("_paths") and isinstance(values, (list, tuple))
                        for value in values
                    }
                ),
                sorted(
                    {
                        str(getattr(project, name))
                        for name in ("target_path", "log_path", "packages_install_path")
                        if getattr(project, name, None)
                    }
                ),
            )
        )
    return str(config.packages_install_path), sorted(
        found, key=lambda item: (item[0] != ".", item[0])
    )


class ReadPartialParse:
    """dbt's partial-parse file (``partial_parse.msgpack``) read back ahead of time: its
    bytes and the ``Manifest`` dbt decodes from them, for one parse to take
    (:func:`partial_parse_read_ahead`) instead of decoding the same bytes again."""

    def __init__(self, data: bytes, manifest: Any) -> None:
        self.data = data
        self.manifest = manifest


def read_partial_parse(target_path: Any) -> ReadPartialParse | None:
    """The partial-parse file in *target_path*, decoded as dbt decodes it, or None (no
    file, or one dbt could not read either: the parse then reads it itself)."""
    from pathlib import Path

    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser import manifest as loader

    try:
        data = (Path(target_path) / loader.PARTIAL_PARSE_FILE_NAME).read_bytes()
        return ReadPartialParse(
            data, Manifest.from_msgpack(data, decoder=loader.extended_mashumuro_decoder)
        )
    except Exception:  # noqa: BLE001 - dbt reads it (and says why it cannot) in the parse
        return None


@contextmanager
def partial_parse_read_ahead(ahead: ReadPartialParse | None) -> Iterator[None]:
    """While one parse runs: when dbt decodes exactly the bytes *ahead* holds, it gets the
    manifest decoded from them before (once); any other bytes dbt decodes itself. dbt's
    own reading of the file, its checks (versions, vars, profile, project) and the rest
    of the partial parse run as they are."""
    if ahead is None:
        yield
        return
    from dbt.contracts.graph.manifest import Manifest

    original = Manifest.__dict__["from_msgpack"]
    decode = original.__get__(None, Manifest)
    taken: list[bool] = []

    def from_msgpack(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if not taken and data == ahead.data:
            taken.append(True)
            return ahead.manifest
        return decode(data, *args, **kwargs)

    Manifest.from_msgpack = from_msgpack  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Manifest.from_msgpack = original  # type: ignore[method-assign]
