"""The ``dbtproof`` command: maintenance around test runs.

``dbtproof clean --older-than 24h`` lists the namespaces that runs which died
(SIGKILL, a lost CI runner) left in the warehouse, and drops them with
``--execute``. Like every ``dbtproof`` command it takes dbt's own
``--project-dir``, ``--profiles-dir``, ``--target`` and ``--vars``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dbtproof.errors import DbtError
from dbtproof.namespace import DEFAULT_PREFIX, find_leftovers, parse_age, validate_prefix


def _dbt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project-dir", default=None, help="dbt project folder (default: nearest)")
    parser.add_argument("--profiles-dir", default=None, help="folder of profiles.yml (dbt's order)")
    parser.add_argument("--target", default=None, help="dbt target (default: the profile's)")
    parser.add_argument("--vars", default=None, help="dbt vars, YAML/JSON mapping")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dbtproof`` command."""
    parser = argparse.ArgumentParser(prog="dbtproof", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser(
        "clean", help="list (and with --execute drop) namespaces left by runs that died"
    )
    _dbt_arguments(clean)
    clean.add_argument("--older-than", default="24h", help="minimum age, e.g. 30m, 24h, 7d")
    clean.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace prefix of the runs")
    clean.add_argument("--execute", action="store_true", help="drop them (default: only list)")
    return parser


def _open_target(args: argparse.Namespace, workdir: Path):  # type: ignore[no-untyped-def]
    """Parse the project with the user's own profile and return (session-like runner, adapter)."""
    from dbtproof import _dbt_compat as compat
    from dbtproof.project import (
        DbtProject,
        find_profiles_dir,
        find_project_dir,
        load_profile_target,
    )
    from dbtproof.runner import DbtRunner
    from dbtproof.session import parse_vars

    project_dir = find_project_dir(Path.cwd(), args.project_dir)
    if project_dir is None:
        raise DbtError(
            f"dbtproof: no dbt_project.yml at or above {Path.cwd()}. Run from the dbt project, or "
            f"pass --project-dir."
        )
    project = DbtProject.load(project_dir)
    cli_vars = parse_vars(args.vars)
    target = load_profile_target(
        find_profiles_dir(args.profiles_dir),
        project.profile_name,
        args.target,
        render=lambda value: compat.render_profile_value(value, cli_vars),
    )
    runner = DbtRunner(
        project_dir=project_dir,
        profiles_dir=target.profiles_path.parent,
        profile=target.profile_name,
        target=target.target_name,
        target_path=workdir / "target",
        log_path=workdir / "logs",
        vars=cli_vars,
    )
    manifest = runner.parse()
    config = compat.registered_runtime_config(target.adapter_type)
    return target, compat.adapter_for(config, manifest), config.credentials.database


def clean(args: argparse.Namespace) -> int:
    """List namespaces left behind by dbtproof runs; drop them with ``--execute``."""
    from dbtproof import _dbt_compat as compat

    prefix = validate_prefix(args.prefix)
    min_age = parse_age(args.older_than)
    with tempfile.TemporaryDirectory(prefix="dbtproof-clean-") as tmp:
        target, adapter, database = _open_target(args, Path(tmp))
        with compat.connection(adapter, "dbtproof_clean"):
            leftovers = [
                leftover
                for leftover in find_leftovers(compat.list_schemas(adapter, database), prefix)
                if leftover.age() >= min_age
            ]
            where = f"target '{target.target_name}' ({target.adapter_type}, database {database})"
            if not leftovers:
                print(f"dbtproof clean: no namespace older than {args.older_than} in {where}.")
                return 0
            verb = "dropping" if args.execute else "would drop"
            print(f"dbtproof clean: {len(leftovers)} leftover schema(s) in {where}:")
            for leftover in leftovers:
                age_hours = leftover.age().total_seconds() / 3600
                print(
                    f"  {verb} {leftover.schema} (created {leftover.created:%Y-%m-%d %H:%M} UTC, "
                    f"{age_hours:.1f} h ago)"
                )
            if args.execute:
                compat.drop_schemas(adapter, database, [leftover.schema for leftover in leftovers])
                print(f"dbtproof clean: dropped {len(leftovers)} schema(s).")
            else:
                print("dbtproof clean: nothing dropped; rerun with --execute to drop them.")
        compat.close_adapter_connections(adapter)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dbtproof`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "clean":
            return clean(args)
    except DbtError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
