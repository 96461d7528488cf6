#!/usr/bin/env python3
"""Move dbtproof's modules into layer folders, and its tests into groups (issue 26).

Run from anywhere inside a clean checkout (the moves are ``git mv``; commit what it leaves)::

    python scripts/layer_folders.py            # move, rewrite, rename, reformat
    python scripts/layer_folders.py --check    # say what would move; fail on an unmapped one

What it does, in order:

1. refuses to run on a module at the top of ``src/dbtproof/`` that :data:`MODULES` does
   not map (a new module: add a line to the table) — nothing is touched then;
   text already naming a module's new place (``dbtproof.session.session``) would be
   rewritten once more: write new text in today's names until the move;
2. rewrites, in every text file of ``src/``, ``tests/``, ``scripts/``, ``bench/``,
   ``docs/``, ``.ci/``, ``examples/``, ``pyproject.toml`` (the entry points) and
   ``README.md``: ``dbtproof.<old>`` (imports, ``:mod:`` references, monkeypatched
   names, entry points), ``from dbtproof import <old>``, ``dbtproof/<old>.py`` paths, and
   ``tests/<file>`` paths of the moved tests;
3. ``git mv``-es each module to its folder (making the folder's ``__init__.py``), and
   each test file to its group;
4. renames ``DbtError`` to ``DbtproofError`` everywhere; ``DbtError`` stays importable
   from ``dbtproof`` and ``dbtproof.errors`` as a deprecated alias (a DeprecationWarning);
5. puts ``tests/`` and each test group on pytest's ``pythonpath`` (test modules import
   helpers from one another by name);
6. sorts imports and formats with ruff.

It is re-runnable: a module already in its folder is not moved nor rewritten again; only
what is still at the top moves (the session's split adds modules: map them and run again).

After it: ``pip install -e .`` in each virtualenv (the pytest11 entry point moved to
``dbtproof.plugin.hooks``), then ``ruff check``, ``tests/test_house.py`` (its layer test
runs from then on) and the suite.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

#: Each module (or package) at the top of ``src/dbtproof/`` -> where it goes (dotted, below
#: ``dbtproof``). The folders, top to bottom (an import points only down, never to a peer:
#: ``tests/test_house.py`` checks): cli -> agents -> plugin -> session -> {engine, safety,
#: credentials, evidence} -> {compare, project} -> _dbt_compat -> errors.
MODULES: dict[str, str] = {
    # cli/: the command line, run by users
    "cli": "cli.main",
    "watch": "cli.watch",
    "doctor": "cli.doctor",
    # plugin/: pytest's hooks, the per-run state, fixtures, items, batches
    "plugin": "plugin.hooks",
    "_state": "plugin.state",
    "options": "plugin.options",
    "state_settings": "plugin.settings",
    "state_header": "plugin.header",
    "state_secrets": "plugin.secrets",
    "state_outputs": "plugin.outputs",
    "plugin_api": "plugin.api",
    "fixtures": "plugin.fixtures",
    "dbt_fixture": "plugin.dbt_fixture",
    "items": "plugin.items",
    "dbt_tests": "plugin.batches",
    "batched_tests": "plugin.batched_tests",
    "native_unit": "plugin.native_unit",
    "scheduling": "plugin.scheduling",
    "selection": "plugin.selection",
    "failures": "plugin.failures",
    "signals": "plugin.signals",
    # session/: one dbt session, its parse, its runner, what it shares
    "session": "session.session",
    "session_settings": "session.settings",
    "session_parsing": "session.parsing",
    "session_connections": "session.connections",
    "session_access": "session.access",
    "session_commands": "session.commands",
    "shared_build": "session.shared_build",
    "keeper": "session.keeper",
    "runner": "session.runner",
    "parse_cache": "session.parse_cache",
    "parse_snapshot": "session.parse_snapshot",
    "progress": "session.progress",
    "file_access": "session.file_access",
    # safety/: what keeps a run inside its namespace and its secrets out of sight
    "namespace": "safety.namespace",
    "relocation": "safety.relocation",
    "loaded_sources": "safety.loaded_sources",
    "guard": "safety.guard",
    "run_role": "safety.run_role",
    "access": "safety.access",
    "grants": "safety.grants",
    "liveness": "safety.liveness",
    "faults": "safety.faults",
    "quoting": "safety.quoting",
    "redaction": "safety.redaction",
    # compare/: rows and how they compare
    "rows": "compare.rows",
    "cells": "compare.cells",
    "pairing": "compare.pairing",
    "approx": "compare.approx",
    "diff": "compare.diff",
    # project/: the dbt project, its targets, nodes and changes
    "project": "project.discovery",
    "targets": "project.targets",
    "servers": "project.servers",
    "lookalikes": "project.lookalikes",
    "nodes": "project.nodes",
    "changes": "project.changes",
    "vcs": "project.vcs",
}

#: What stays at the top of ``src/dbtproof/``: the package's face, the errors (the bottom
#: layer) and the folders themselves.
TOP = {"__init__", "errors", "__pycache__"}

#: The layer folders, and the docstring of the ``__init__.py`` this script makes for one.
FOLDERS: dict[str, str] = {
    "cli": "The ``dbtproof`` command line: clean, watch, doctor, evidence.",
    "agents": "",
    "plugin": "The pytest plugin: hooks and options, the per-run state, fixtures, items.",
    "session": "One dbt session: its parse, connections, runner, and what workers share.",
    "engine": "",
    "safety": "What keeps a run in its namespace, its rights small and its secrets unseen.",
    "credentials": "",
    "evidence": "",
    "compare": "Rows, and how they compare: cells, pairing, tolerances, diffs.",
    "project": "The dbt project: where it is, its targets, nodes and what changed.",
    "_dbt_compat": "",
}

#: Each test module (or test data folder) at the top of ``tests/`` -> its group. Groups:
#: ``examples`` (the example project's tests, read as documentation), ``plugin`` (runs as
#: users run them: pytester, the CLI), ``unit/<folder>`` (mirroring the package),
#: ``backends`` (PostgreSQL and Spark legs). Helpers (conftest.py ...) and test_house.py
#: stay at the top.
TESTS: dict[str, str] = {
    "test_dbt_items.py": "examples",
    "test_engine_plugin.py": "examples",
    "test_terminal_output.py": "examples",
    "test_build_items.py": "plugin",
    "test_changed.py": "plugin",
    "test_clean_liveness.py": "plugin",
    "test_credentials_plugin.py": "plugin",
    "test_dbt_env.py": "plugin",
    "test_dbt_hooks.py": "plugin",
    "test_doctor.py": "plugin",
    "test_errors.py": "plugin",
    "test_evidence.py": "plugin",
    "test_external.py": "plugin",
    "test_functions.py": "plugin",
    "test_grants.py": "plugin",
    "test_guard.py": "plugin",
    "test_live_from_start.py": "plugin",
    "test_plugin.py": "plugin",
    "test_profile_secrets.py": "plugin",
    "test_protected_targets.py": "plugin",
    "test_relation_cache.py": "plugin",
    "test_relocation.py": "plugin",
    "test_secret_hygiene.py": "plugin",
    "test_split.py": "plugin",
    "test_sweep.py": "plugin",
    "test_unit_gate.py": "plugin",
    "test_warm_parse.py": "plugin",
    "test_watch.py": "plugin",
    "test_dbt_compat.py": "unit/_dbt_compat",
    "test_engine.py": "unit/engine",
    "engine_fixtures": "unit/engine",
    "test_engine_columns.py": "unit/engine",
    "test_engine_hostile.py": "unit/engine",
    "test_rows.py": "unit/compare",
    "test_naming_and_discovery.py": "unit/project",
    "test_adapter_profiles.py": "unit/project",
    "test_credentials.py": "unit/credentials",
    "test_shared_build.py": "unit/session",
    "test_progress.py": "unit/session",
    "test_auth_postgres.py": "backends",
    "test_connection_faults_postgres.py": "backends",
    "test_credentials_postgres.py": "backends",
    "test_dying_runs_postgres.py": "backends",
    "test_faults_postgres.py": "backends",
    "test_grants_postgres.py": "backends",
    "test_lifecycle_postgres.py": "backends",
    "test_run_role.py": "backends",
    "test_spark.py": "backends",
    "test_start_faults_postgres.py": "backends",
    "test_unit_numeric_postgres.py": "backends",
    "test_unit_parity.py": "backends",
    "test_loaded_sources.py": "backends",
    "test_agents.py": "plugin",
    "test_agents_mcp.py": "plugin",
    "test_agents_readonly.py": "plugin",
    "test_agents_credentials.py": "plugin",
    "test_batched_data_tests.py": "plugin",
    "test_docs_getting_started.py": "examples",
    "test_docs_site.py": "examples",
}

#: Files at the top of ``tests/`` that stay there.
TESTS_TOP = {
    "conftest.py",
    "credential_endpoints.py",
    "private_postgres.py",
    "pytest_zygote.py",
    "spark_support.py",
    "test_house.py",
    "__pycache__",
}

#: Where the rewrite looks: folders (every tracked text file in them) and files.
REWRITTEN = ("src", "tests", "scripts", "bench", "docs", ".ci", "examples")
REWRITTEN_FILES = ("pyproject.toml", "README.md")
TEXT_SUFFIXES = {"", ".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".txt", ".sh"}

OLD_ERROR, NEW_ERROR = "DbtError", "DbtproofError"
#: The old name, renamed everywhere but where the alias compares a name with it.
OLD_ERROR_WORD = re.compile(rf'(?<!\w)(?<!== "){OLD_ERROR}(?!\w)')

ERRORS_ALIAS = f'''

def __getattr__(name: str) -> type[{NEW_ERROR}]:
    """The base error's old name, deprecated for a release: it is :class:`{NEW_ERROR}`."""
    if name == "{OLD_ERROR}":
        import warnings

        warnings.warn(
            f"dbtproof: {{name}} is deprecated, use {NEW_ERROR} (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return {NEW_ERROR}
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''

PACKAGE_ALIAS = f'''

def __getattr__(name: str) -> object:
    """The base error's deprecated old name (:mod:`dbtproof.errors` warns when it is used)."""
    if name == "{OLD_ERROR}":
        from dbtproof import errors

        return getattr(errors, name)
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''


class Refused(Exception):
    """The tree is not one this script can move (said why, nothing touched)."""


def git(root: Path, *args: str) -> str:
    """Run git in *root*; its output."""
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def top_level(package: Path) -> set[str]:
    """The modules and packages at the top of *package*, by name."""
    return {
        path.stem if path.suffix == ".py" else path.name
        for path in package.iterdir()
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists())
    }


def unmapped(package: Path) -> list[str]:
    """Top-level modules that neither stay, nor are a folder, nor are mapped."""
    return sorted(
        name
        for name in top_level(package)
        if name not in TOP and name not in MODULES
        and not (name in FOLDERS and (package / name).is_dir())
    )  # fmt: skip


def pending(package: Path) -> dict[str, str]:
    """The mapped modules still at the top of *package*: old name -> new dotted name (a
    folder named as a module it replaced, ``session/``, is not that module)."""
    return {
        old: new
        for old, new in MODULES.items()
        if (package / f"{old}.py").is_file()
        or (old not in FOLDERS and (package / old / "__init__.py").is_file())
    }


def pending_tests(tests: Path) -> dict[str, str]:
    """The test files (and data folders) still at the top of *tests*: name -> group."""
    return {name: group for name, group in TESTS.items() if (tests / name).exists()}


def unmapped_tests(tests: Path) -> list[str]:
    """Test modules at the top of *tests* the table does not place."""
    return sorted(
        path.name
        for path in tests.glob("test_*.py")
        if path.name not in TESTS and path.name not in TESTS_TOP
    )


def text_files(root: Path) -> Iterable[Path]:
    """Every tracked text file the rewrite looks at (not this script: its tables name the
    modules both ways)."""
    listed = git(root, "ls-files", "-z", "--", *REWRITTEN, *REWRITTEN_FILES).split("\0")
    itself = Path(__file__).resolve()
    for name in listed:
        path = root / name
        if name and path.is_file() and path.suffix in TEXT_SUFFIXES and path.resolve() != itself:
            yield path


#: ``from dbtproof import a, b as c`` on one line.
FROM_PACKAGE = re.compile(
    r"^(?P<indent>[ \t]*)from dbtproof import (?P<names>[\w ,]+?)[ \t]*$", re.MULTILINE
)


def rewrite_from_package(text: str, moves: dict[str, str]) -> str:
    """``from dbtproof import a, b as c`` with *a* or *b* moved: one line per new parent."""

    def replace(match: re.Match[str]) -> str:
        indent = match["indent"]
        kept: list[str] = []
        lines: list[str] = []
        for part in (p.strip() for p in match["names"].split(",") if p.strip()):
            name, _, alias = (w.strip() for w in part.partition(" as "))
            if name not in moves:
                kept.append(part)
                continue
            parent, _, leaf = moves[name].rpartition(".")
            bound = alias or name
            suffix = "" if leaf == bound else f" as {bound}"
            lines.append(f"{indent}from dbtproof.{parent} import {leaf}{suffix}")
        if kept:
            lines.insert(0, f"{indent}from dbtproof import {', '.join(kept)}")
        return "\n".join(lines)

    return FROM_PACKAGE.sub(replace, text)


def rewrite(text: str, moves: dict[str, str], test_moves: dict[str, str]) -> str:
    """*text* with every reference to a moved module or test file pointing at its new place."""
    if moves:
        names = "|".join(sorted(map(re.escape, moves), key=len, reverse=True))
        dotted = re.compile(rf"(?<![\w.])dbtproof\.({names})(?!\w)")
        text = dotted.sub(lambda m: f"dbtproof.{moves[m[1]]}", text)
        text = rewrite_from_package(text, moves)
        paths = re.compile(rf"(?<![\w.])dbtproof/({names})(\.py\b|/)")

        def path(match: re.Match[str]) -> str:
            new = moves[match[1]].replace(".", "/")
            return f"dbtproof/{new}{match[2]}"

        text = paths.sub(path, text)
    if test_moves:
        names = "|".join(sorted(map(re.escape, test_moves), key=len, reverse=True))
        tests = re.compile(rf"(?<![\w/.])tests/({names})(?![\w.])")
        text = tests.sub(lambda m: f"tests/{test_moves[m[1]]}/{m[1]}", text)
    return text


#: A line ending with this comment keeps the old name (a test of the alias).
KEEP_OLD_NAME = "# the old name"


def rename_error(text: str) -> str:
    """*text* with the base error's old name replaced by the new one."""
    return "".join(
        line if line.rstrip().endswith(KEEP_OLD_NAME) else OLD_ERROR_WORD.sub(NEW_ERROR, line)
        for line in text.splitlines(keepends=True)
    )


def add_aliases(package: Path) -> None:
    """The old error name kept as a deprecated alias, in ``errors.py`` and the package."""
    errors = package / "errors.py"
    text = errors.read_text()
    if "def __getattr__" not in text:
        errors.write_text(text.rstrip("\n") + "\n" + ERRORS_ALIAS)
    init = package / "__init__.py"
    text = init.read_text()
    text = text.replace(f'    "{OLD_ERROR}",\n', "")
    if f'"{NEW_ERROR}"' not in text:
        text = text.replace("__all__ = [\n", f'__all__ = [\n    "{NEW_ERROR}",\n', 1)
    if "def __getattr__" not in text:
        text = text.rstrip("\n") + "\n" + PACKAGE_ALIAS
    init.write_text(text)


def move_modules(root: Path, package: Path, moves: dict[str, str]) -> None:
    """``git mv`` each module to its folder, making the folders' ``__init__.py``."""
    for old, new in moves.items():
        parts = new.split(".")
        folder = package.joinpath(*parts[:-1])
        if not (folder / "__init__.py").exists():
            folder.mkdir(parents=True, exist_ok=True)
            doc = FOLDERS.get(parts[0]) or f"dbtproof's {parts[0]} layer."
            (folder / "__init__.py").write_text(f'"""{doc}"""\n')
            git(root, "add", str(folder / "__init__.py"))
        source = package / f"{old}.py"
        if not source.exists():
            source = package / old
            target = folder / parts[-1]
        else:
            target = folder / f"{parts[-1]}.py"
        git(root, "mv", str(source), str(target))


def move_tests(root: Path, tests: Path, moves: dict[str, str]) -> None:
    """``git mv`` each test file (or data folder) into its group."""
    for name, group in moves.items():
        (tests / group).mkdir(parents=True, exist_ok=True)
        git(root, "mv", str(tests / name), str(tests / group / name))


def put_tests_on_pythonpath(root: Path) -> None:
    """pytest's ``pythonpath`` (pyproject.toml): ``tests/`` and each group, so that a test
    module imports a helper of another (``from test_errors import run_failing``) by name,
    as when they were side by side."""
    groups = sorted({group for group in TESTS.values() if (root / "tests" / group).is_dir()})
    paths = ["tests"] + [f"tests/{group}" for group in groups]
    line = "pythonpath = [\n" + "".join(f'    "{path}",\n' for path in paths) + "]"
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    present = re.compile(r"^pythonpath = \[[^\]]*\]", re.MULTILINE)
    if present.search(text):
        text = present.sub(line, text, count=1)
    else:
        text = text.replace('testpaths = ["tests"]\n', f'testpaths = ["tests"]\n{line}\n', 1)
    pyproject.write_text(text)


def ruff(root: Path) -> None:
    """Imports sorted and code formatted where the rewrite changed them."""
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(found).exists():
        print("layer_folders: ruff not found: run `ruff check --fix --select I` and `ruff format`")
        return
    where = [p for p in ("src", "tests", "scripts", "bench") if (root / p).is_dir()]
    subprocess.run([found, "check", "--fix", "--select", "I", "-q", *where], cwd=root)
    subprocess.run([found, "format", "-q", *where], cwd=root, check=True)
    left = subprocess.run(
        [found, "check", "--output-format", "concise", "-q", *where], cwd=root, text=True,
        capture_output=True,
    ).stdout  # fmt: skip
    if left.strip():
        print("layer_folders: lines the longer names made too long, to rewrap by hand:")
        print(left.rstrip())


def main(argv: list[str] | None = None) -> int:
    """Move, rewrite, rename; 1 with the reason when the tree is not one it can move."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="say what would move, move nothing")
    args = parser.parse_args(argv)
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    package, tests = root / "src" / "dbtproof", root / "tests"
    try:
        missing = unmapped(package)
        if missing:
            raise Refused(
                f"no folder for module(s) {', '.join(missing)} of src/dbtproof/: add each to "
                f"MODULES in {Path(__file__).name} (old name -> folder.new_name), then run again"
            )
        missing = unmapped_tests(tests)
        if missing:
            raise Refused(
                f"no group for test file(s) {', '.join(missing)}: add each to TESTS in "
                f"{Path(__file__).name}, then run again"
            )
        if not args.check and git(root, "status", "--porcelain", "--untracked-files=no"):
            raise Refused("the checkout has uncommitted changes: commit or set them aside first")
    except Refused as exc:
        print(f"layer_folders: {exc}", file=sys.stderr)
        return 1
    moves, test_moves = pending(package), pending_tests(tests)
    for old, new in moves.items():
        print(f"  dbtproof.{old} -> dbtproof.{new}")
    for name, group in test_moves.items():
        print(f"  tests/{name} -> tests/{group}/{name}")
    if args.check:
        return 0
    for path in text_files(root):
        text = path.read_text()
        new = rename_error(rewrite(text, moves, test_moves))
        if new != text:
            path.write_text(new)
    move_modules(root, package, moves)
    move_tests(root, tests, test_moves)
    put_tests_on_pythonpath(root)
    add_aliases(package)
    ruff(root)
    print(f"layer_folders: moved {len(moves)} module(s) and {len(test_moves)} test file(s)")
    print("layer_folders: now `pip install -e .` in each virtualenv (the entry points moved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
