"""The ``dbtproof`` command: maintenance around test runs.

``dbtproof watch [pytest args]`` runs the tests, then, on every save, the tests the saved
files touch (see :mod:`dbtproof.cli.watch`).

``dbtproof doctor`` says why CI cannot talk to the warehouse (see :mod:`dbtproof.cli.doctor`):
which profiles.yml won and why, the target, the variables it reads, what the credential
providers would mint, and a live connection test; exit code 0 only when tests could run.

``dbtproof clean --older-than 24h`` lists the namespaces that runs which died
(SIGKILL, a lost CI runner) left in the warehouse, and drops them with
``--execute``; a run still alive (see :mod:`dbtproof.safety.liveness`) keeps its namespace.
On DuckDB it removes the run folders left under pytest's basetemps and namespaces in
the target's database files that exist (it never creates one); on a local Spark
(dbt-spark's ``method: session``) the run folders and the databases dead runs left in
their Spark's warehouse directory under those basetemps. Like every ``dbtproof``
command it takes dbt's own ``--project-dir``, ``--profiles-dir``, ``--target`` and ``--vars``.

``dbtproof mcp`` serves dbtproof's agent tools over the Model Context Protocol on
standard input/output (see :mod:`dbtproof.agents.mcp_server` and docs/agents.md).

``dbtproof evidence verify PATH [--digest D]`` checks a ``--dbt-evidence`` file (exit code
0 only when intact); ``dbtproof evidence attest PATH`` writes its in-toto Statement;
``dbtproof evidence merge JOB1 JOB2 ... -o RUN`` makes one run of the evidence files of the
CI jobs a suite was split into (see :mod:`dbtproof.evidence`).

``dbtproof sample`` and ``dbtproof propose [SELECTOR] [--write]`` make test proposals
from a masked sample (see :mod:`dbtproof.agents.commands`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dbtproof._dbt_compat.env_file import load_env_file
from dbtproof._dbt_compat.support import unsupported_dbt
from dbtproof.agents import commands as agent_commands
from dbtproof.agents import mcp_command
from dbtproof.cli.doctor.report import one_line
from dbtproof.errors import DbtproofError
from dbtproof.project.discovery import find_project_dir
from dbtproof.project.targets import duckdb_files, rules_for, runs_in_process, spark_home
from dbtproof.safety.liveness import (
    file_marks,
    live_run_ids,
    pytest_temproot,
    run_id_of,
    run_workdirs,
    workdir_is_live,
)
from dbtproof.safety.namespace import (
    DEFAULT_PREFIX,
    Leftover,
    find_leftovers,
    parse_age,
    validate_prefix,
)
from dbtproof.safety.run_role import drop_role_statements, list_leftover_roles


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
    clean.add_argument(
        "--older-than",
        default="24h",
        help="list only runs at least this old, e.g. 0m, 30m, 24h, 7d (default: %(default)s; "
        "the younger dead runs are counted)",
    )
    clean.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace prefix of the runs")
    clean.add_argument("--execute", action="store_true", help="drop them (default: only list)")
    clean.add_argument(
        "--basetemp",
        action="append",
        help="DuckDB, local Spark: also look for run folders under this pytest --basetemp "
        "(repeatable; "
        "pytest's default basetemps are always searched)",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the profile, the variables, the credentials and the connection tests use",
    )
    _dbt_arguments(doctor)
    doctor.add_argument(
        "--credentials",
        action="append",
        metavar="NAME[:key=value,...]",
        help="a credential provider, as pytest's --dbt-credentials (repeatable)",
    )
    doctor.add_argument(
        "--allow-untrusted-credentials",
        action="store_true",
        help="mint even for untrusted code, as pytest's --dbt-allow-untrusted-credentials",
    )
    doctor.add_argument(
        "--allow-protected-target",
        action="store_true",
        help="connect even to a protected target, as pytest's --dbt-allow-protected-target",
    )
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    evidence = commands.add_parser("evidence", help="check or attest a --dbt-evidence file")
    actions = evidence.add_subparsers(dest="action", required=True)
    verify = actions.add_parser(
        "verify", help="recompute the chain and the artifacts' hashes (exit 0 only if intact)"
    )
    verify.add_argument("path", type=Path, help="the evidence file")
    verify.add_argument(
        "--digest", help="the final digest published when the run ended (sha256:...)"
    )
    attest = actions.add_parser(
        "attest", help="write the run's in-toto Statement (test-result predicate)"
    )
    attest.add_argument("path", type=Path, help="the evidence file")
    attest.add_argument(
        "-o", "--output", type=Path, help="write it to this file (default: standard output)"
    )
    merge = actions.add_parser(
        "merge",
        help="merge the evidence files of the CI jobs one suite was split into (exit 0 only "
        "if every file is intact and they are one run)",
    )
    merge.add_argument("paths", type=Path, nargs="+", help="the jobs' evidence files")
    merge.add_argument(
        "-o", "--output", type=Path, required=True, help="the merged evidence file to write"
    )
    merge.add_argument(
        "--digest",
        action="append",
        default=[],
        metavar="D",
        help="a job's final digest as it published it (repeatable, in the files' order)",
    )
    mcp_command.add_parser(commands, _dbt_arguments)
    watch = commands.add_parser(
        "watch",
        help="run the tests, then, on every save, the tests the saved files touch",
        description="Run pytest with the arguments given, then again on every save of a "
        "model, macro, YAML, seed or test file, collecting only what the change touches.",
    )
    watch.add_argument("pytest_args", nargs=argparse.REMAINDER, help="pytest's arguments")
    agent_commands.add_parsers(commands, _dbt_arguments)
    return parser


def _load_target(args: argparse.Namespace) -> tuple[Path, dict[str, Any], Any]:
    """The project folder, the ``--vars`` and the profile target, without parsing the project."""
    from dbtproof import _dbt_compat as compat
    from dbtproof.project.discovery import DbtProject, find_profiles_dir, load_profile_target
    from dbtproof.session.settings import parse_vars

    project_dir = find_project_dir(Path.cwd(), args.project_dir)
    if project_dir is None:
        raise DbtproofError(
            f"dbtproof clean: no dbt_project.yml at or above {Path.cwd()}. Run from the dbt "
            f"project, or pass --project-dir."
        )
    project = DbtProject.load(project_dir)
    cli_vars = parse_vars(args.vars)
    target = load_profile_target(
        find_profiles_dir(args.profiles_dir),
        project.profile_name,
        args.target,
        render=lambda value: compat.render_profile_value(value, cli_vars),
    )
    return project_dir, cli_vars, target


def _open_adapter(project_dir: Path, cli_vars: dict[str, Any], target: Any, workdir: Path) -> Any:
    """Parse the project with the user's own profile and return (adapter, database)."""
    from dbtproof import _dbt_compat as compat
    from dbtproof.session.runner import DbtRunner

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
    return compat.adapter_for(config, manifest), config.credentials.database


def _report(verb: str, leftovers: list[Leftover], kept: list[Leftover], where: str) -> None:
    for leftover in kept:
        print(f"  keeping {leftover.schema}: its run is still alive")
    for leftover in leftovers:
        age_hours = leftover.age().total_seconds() / 3600
        print(
            f"  {verb} {leftover.schema} (created {leftover.created:%Y-%m-%d %H:%M} UTC, "
            f"{age_hours:.1f} h ago){where}"
        )


def _not_listed(args: argparse.Namespace, younger: int, what: str) -> None:
    """The line that counts the dead runs' leftovers *younger* than ``--older-than``."""
    if younger:
        print(
            f"dbtproof clean: {younger} {what} younger than --older-than {args.older_than} not "
            f"listed; --older-than 0m lists them too."
        )


def _young_and_old(
    leftovers: list[Leftover], min_age: timedelta
) -> tuple[list[Leftover], list[Leftover]]:
    """The leftovers at least *min_age* old, and the younger ones."""
    old = [leftover for leftover in leftovers if leftover.age() >= min_age]
    return old, [leftover for leftover in leftovers if leftover not in old]


def _dead(leftovers: list[Leftover], live: set[str], prefix: str) -> int:
    """How many of *leftovers* belong to no live run (*live*: run ids)."""
    return len([lo for lo in leftovers if run_id_of(lo.schema, prefix) not in live])


def _clean_warehouse(
    args: argparse.Namespace, prefix: str, min_age: timedelta, loaded: tuple[Path, Any, Any]
) -> int:
    """``clean`` on a warehouse (PostgreSQL, Snowflake ...): schemas in the target's database."""
    from dbtproof import _dbt_compat as compat

    project_dir, cli_vars, target = loaded
    verb = "dropping" if args.execute else "would drop"
    # a killed worker's derived profile, logs; the runs whose folder lock is held are
    # alive whatever the warehouse says (a lock connection the server ended)
    _, folder_live, _ = _clean_run_folders(args, prefix, min_age, verb)
    with tempfile.TemporaryDirectory(prefix="dbtproof-clean-") as tmp:
        adapter, database = _open_adapter(project_dir, cli_vars, target, Path(tmp))
        where = f"target '{target.target_name}' ({target.adapter_type}, database {database})"
        try:
            with compat.connection(adapter, "dbtproof_clean"):
                try:
                    schemas = compat.list_schemas(adapter, database)
                except Exception as exc:  # dbt's connection errors, whatever the adapter
                    raise DbtproofError(
                        f"dbtproof clean: cannot connect to {where}: {one_line(exc)}. Check the "
                        f"profile (--profiles-dir, --target) and that the server is up, then rerun."
                    ) from None
                leftovers, young = _young_and_old(find_leftovers(schemas, prefix), min_age)
                live = set(folder_live)
                roles: list[Leftover] = []
                if target.adapter_type == "postgres":
                    roles = [
                        role
                        for role in list_leftover_roles(
                            lambda sql: compat.fetch(adapter, sql)[1], prefix
                        )
                        if role.age() >= min_age
                    ]
                    # a run holds its lock before it creates a schema or role, in the
                    # database it works in: looked for in every database of the server
                    live |= live_run_ids(
                        lambda sql: compat.fetch(adapter, sql)[1],
                        {run_id_of(lo.schema, prefix) or "" for lo in [*leftovers, *young, *roles]}
                        - {""},
                    )
                    roles = [lo for lo in roles if run_id_of(lo.schema, prefix) not in live]
                kept = [lo for lo in leftovers if run_id_of(lo.schema, prefix) in live]
                leftovers = [lo for lo in leftovers if lo not in kept]
                younger = _dead(young, live, prefix)  # a live run's are no leftovers
                if not leftovers and not kept and not roles:
                    print(f"dbtproof clean: no namespace older than {args.older_than} in {where}.")
                    _not_listed(args, younger, "namespace schema(s)")
                    return 0
                print(f"dbtproof clean: {len(leftovers)} leftover schema(s) in {where}:")
                _report(verb, leftovers, kept, "")
                _not_listed(args, younger, "namespace schema(s)")
                for role in roles:
                    print(f"  {verb} role {role.schema} (the run role of a dead run)")
                if args.execute:
                    if leftovers:
                        compat.drop_schemas(
                            adapter,
                            database,
                            [lo.schema for lo in leftovers],
                            rules_for(target.adapter_type).drop_cascades,
                        )
                        print(f"dbtproof clean: dropped {len(leftovers)} schema(s).")
                    if roles:  # after the schemas: what they hold may belong to the roles
                        _drop_roles(adapter, [role.schema for role in roles])
                elif leftovers or roles:
                    print("dbtproof clean: nothing dropped; rerun with --execute to drop them.")
        finally:
            compat.close_adapter_connections(adapter)
    return 0


def _drop_roles(adapter: Any, names: list[str]) -> None:
    """Drop left-over run roles; one line for each the identity may not drop."""
    from dbtproof import _dbt_compat as compat

    dropped = 0
    for name in names:
        try:
            for statement in drop_role_statements(name):
                compat.execute(adapter, statement)
            dropped += 1
        except Exception as exc:  # noqa: BLE001 - the others are still dropped
            compat.rollback_if_open(adapter)
            print(
                f"dbtproof clean: cannot drop role {name}: {one_line(exc)} "
                f"(rerun as the identity that ran the run, or one with CREATEROLE)."
            )
    print(f"dbtproof clean: dropped {dropped} role(s).")


def _duckdb_files(target: Any, cli_vars: dict[str, Any]) -> list[Path]:
    """The local DuckDB files of a DuckDB target: its ``path`` and the ``attach`` entries."""
    from dbtproof import _dbt_compat as compat

    def rendered(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            return compat.render_profile_value(value, cli_vars)
        return value

    return duckdb_files(target.raw_output, rendered)


def _clean_run_folders(
    args: argparse.Namespace, prefix: str, min_age: timedelta, verb: str
) -> tuple[list[Path], set[str], int]:
    """The run folders of dead runs under pytest's basetemps (removed with ``--execute``).

    Returns the folders searched (each a basetemp's ``dbtproof`` folder, where a local
    Spark keeps its files too), the run ids still alive, and how many folders were found.
    Without file marks (no ``fcntl``) nothing is searched: a folder's run might be alive.
    """
    roots = [pytest_temproot(), *(Path(b).expanduser().resolve() for b in args.basetemp or [])]
    if not file_marks():
        print(
            "dbtproof clean: run folders left alone: without fcntl (Windows) a run's folder "
            "cannot say whether its run is alive; remove dead runs' folders by hand."
        )
        return [], set(), 0
    live_runs: set[str] = set()
    dead: list[tuple[Leftover, Path]] = []
    kept: list[Leftover] = []
    folders: list[Path] = []
    younger = 0
    for workdir in run_workdirs(roots):
        if workdir.parent not in folders:
            folders.append(workdir.parent)
        for leftover in find_leftovers([workdir.name], prefix):
            if workdir_is_live(workdir):
                live_runs.add(run_id_of(leftover.schema, prefix) or "")
                kept.append(leftover)
            elif leftover.age() >= min_age:
                dead.append((leftover, workdir))
            else:
                younger += 1
    print(
        f"dbtproof clean: {len(dead)} leftover run folder(s) under "
        f"{', '.join(str(r) for r in roots)}:"
    )
    _not_listed(args, younger, "run folder(s) of dead runs")
    for leftover, workdir in dead:
        _report(verb, [leftover], [], f" at {workdir}")
        if args.execute:
            shutil.rmtree(workdir, ignore_errors=True)
    for leftover in kept:
        _report(verb, [], [leftover], "")
    return folders, live_runs, len(dead)


def _clean_duckdb(
    args: argparse.Namespace, prefix: str, min_age: timedelta, loaded: tuple[Path, Any, Any]
) -> int:
    """``clean`` on DuckDB: the run folders left under pytest's basetemps (each holds its
    run's database file) and namespaces in the target's database files that exist."""
    _, cli_vars, target = loaded
    verb = "dropping" if args.execute else "would drop"
    _, live_runs, dropped = _clean_run_folders(args, prefix, min_age, verb)
    for path in _duckdb_files(target, cli_vars):
        if not path.is_file():
            continue  # never create a database file
        dropped += _clean_duckdb_file(args, path, prefix, min_age, live_runs, verb)
    _summary(args, dropped)
    return 0


def _summary(args: argparse.Namespace, dropped: int) -> None:
    if args.execute:
        print(f"dbtproof clean: dropped {dropped} run folder(s) and schema(s).")
    elif dropped:
        print("dbtproof clean: nothing dropped; rerun with --execute to drop them.")


def _clean_local_spark(args: argparse.Namespace, prefix: str, min_age: timedelta) -> int:
    """``clean`` on a local Spark (dbt-spark's ``method: session``): the run folders of dead
    runs, and the databases they left in the warehouse directories of their processes'
    Spark (``<basetemp>/dbtproof/spark/warehouse/<namespace>.db``; the process's JVM, and
    with it the metastore that listed them, died with the run)."""
    verb = "dropping" if args.execute else "would drop"
    folders, live_runs, dropped = _clean_run_folders(args, prefix, min_age, verb)
    for folder in folders:
        warehouse = spark_home(folder) / "warehouse"
        if not warehouse.is_dir():
            continue
        found = {path.name[: -len(".db")]: path for path in warehouse.glob("*.db")}
        leftovers = [lo for lo in find_leftovers(found, prefix) if lo.age() >= min_age]
        kept = [lo for lo in leftovers if run_id_of(lo.schema, prefix) in live_runs]
        leftovers = [lo for lo in leftovers if lo not in kept]
        if not leftovers and not kept:
            continue
        print(f"dbtproof clean: {len(leftovers)} leftover database(s) in {warehouse}:")
        _report(verb, leftovers, kept, "")
        if args.execute:
            for leftover in leftovers:
                shutil.rmtree(found[leftover.schema], ignore_errors=True)
        dropped += len(leftovers)
    _summary(args, dropped)
    return 0


def _clean_duckdb_file(
    args: argparse.Namespace,
    path: Path,
    prefix: str,
    min_age: timedelta,
    live_runs: set[str],
    verb: str,
) -> int:
    """Namespaces left in one existing DuckDB file; returns how many (would be) dropped."""
    import duckdb

    sql = (
        "select schema_name from information_schema.schemata "
        "where catalog_name = current_database()"
    )
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            schemas = [row[0] for row in connection.execute(sql).fetchall()]
    except duckdb.Error as exc:
        print(f"dbtproof clean: skipping {path}: cannot open it ({one_line(exc)}).")
        return 0
    leftovers, young = _young_and_old(find_leftovers(schemas, prefix), min_age)
    younger = _dead(young, live_runs, prefix)
    kept = [lo for lo in leftovers if run_id_of(lo.schema, prefix) in live_runs]
    leftovers = [lo for lo in leftovers if lo not in kept]
    if leftovers or kept:
        print(f"dbtproof clean: {len(leftovers)} leftover schema(s) in {path}:")
        _report(verb, leftovers, kept, "")
    _not_listed(args, younger, f"namespace schema(s) in {path}")
    if not leftovers:
        return 0
    if args.execute and leftovers:
        with duckdb.connect(str(path)) as connection:
            for leftover in leftovers:
                name = leftover.schema.replace('"', '""')
                connection.execute(f'drop schema if exists "{name}" cascade')
    return len(leftovers)


def clean(args: argparse.Namespace) -> int:
    """List namespaces left behind by dbtproof runs that are no longer alive; drop them with
    ``--execute``. A run that is still alive keeps its namespace, whatever its age."""
    prefix = validate_prefix(args.prefix)
    min_age = parse_age(args.older_than)
    load_env_file()  # dbt-core 1.12's .env, read as dbt reads it before the profile
    loaded = _load_target(args)
    if loaded[2].adapter_type == "duckdb":
        return _clean_duckdb(args, prefix, min_age, loaded)
    if runs_in_process(loaded[2].adapter_type, loaded[2].raw_output):
        return _clean_local_spark(args, prefix, min_age)
    return _clean_warehouse(args, prefix, min_age, loaded)


#: pytest's option names in messages shared with the plugin, and the ``clean`` option for each.
_OWN_OPTIONS = MappingProxyType(
    {
        "--dbt-project-dir": "--project-dir",
        "--dbt-profiles-dir": "--profiles-dir",
        "--dbt-target": "--target",
        "--dbt-vars": "--vars",
        "--dbt-schema-prefix": "--prefix",
        "--dbt-allow-protected-target": "--allow-protected-target",
        "--dbt-credentials": "--credentials",
        "--dbt-allow-untrusted-credentials": "--allow-untrusted-credentials",
    }
)


def _own_options(message: str) -> str:
    """*message* with pytest's option names replaced by the ``dbtproof`` command's."""
    for theirs, ours in _OWN_OPTIONS.items():
        message = message.replace(theirs, ours)
    return message


def evidence(args: argparse.Namespace) -> int:
    """``dbtproof evidence verify | attest | merge``: 0 when the file is intact (and
    attested, or merged)."""
    from dbtproof.evidence.verify import verify

    if args.action == "merge":
        return _merge_evidence(args)

    verdict = verify(args.path.resolve(), getattr(args, "digest", None))
    if args.action == "verify":
        print(verdict.describe())
        return 0 if verdict.ok else 1
    if not verdict.ok:
        print(f"dbtproof evidence attest: not attested: {verdict.describe()}", file=sys.stderr)
        return 1
    import json

    from dbtproof.evidence.attest import statement

    text = json.dumps(statement(verdict), indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"dbtproof evidence attest: wrote {args.output}", file=sys.stderr)
    return 0


def _merge_evidence(args: argparse.Namespace) -> int:
    """``dbtproof evidence merge``: verify every job's file, then write them as one run
    (a new hash chain) and verify that."""
    from dbtproof.evidence.chain import write_chain
    from dbtproof.evidence.merge import merge_runs
    from dbtproof.evidence.verify import verify

    if args.digest and len(args.digest) != len(args.paths):
        raise DbtproofError(
            f"dbtproof evidence merge: {len(args.digest)} --digest for {len(args.paths)} files; "
            f"give one per file, in the files' order, or none."
        )
    parts = []
    for index, path in enumerate(args.paths):
        verdict = verify(path.resolve(), args.digest[index] if args.digest else None)
        if not verdict.ok:
            print(f"dbtproof evidence merge: not merged: {verdict.describe()}", file=sys.stderr)
            return 1
        parts.append((verdict.path, verdict.records))
    output = args.output.resolve()
    if output.exists():
        raise DbtproofError(
            f"dbtproof evidence merge: {output} exists; an evidence file is never overwritten. "
            f"Choose another --output."
        )
    write_chain(output, merge_runs(parts, output))
    verdict = verify(output)
    print(verdict.describe())
    return 0 if verdict.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dbtproof`` console script."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown and args.command != "watch":
        build_parser().parse_args(argv)  # says what is not understood, and exits
    unsupported = unsupported_dbt() if args.command != "evidence" else None
    if unsupported is not None:  # dbt v2 (the Rust engine) cannot run dbtproof
        print(unsupported, file=sys.stderr)
        return 2
    try:
        if args.command == "clean":
            return clean(args)
        if args.command == "evidence":
            return evidence(args)
        if args.command == "watch":
            from dbtproof.cli.watch import watch

            roots = [Path.cwd()]
            project = find_project_dir(Path.cwd())
            if project is not None and not project.is_relative_to(Path.cwd()):
                roots.append(project)
            return watch([*unknown, *args.pytest_args], roots)
        if args.command == "mcp":
            return mcp_command.run(args)
        if args.command in agent_commands.COMMANDS:
            return agent_commands.run(args)
        if args.command == "doctor":
            from dbtproof.cli.doctor import doctor

            text, code = doctor(args)
            print(_own_options(text))
            return code
    except DbtproofError as exc:
        print(_own_options(str(exc)), file=sys.stderr)
        return 2
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
