"""What differs between adapters where a run writes, drops and is protected, in one place.

Each adapter names its namespace in its own profile keys (BigQuery's ``dataset`` is
``schema``, PostgreSQL's ``dbname`` is ``database``), some require the database to be
the schema (Spark), and some cannot drop a schema with what is in it (Trino, Athena).
:func:`rules_for` answers those questions for one adapter type;
:func:`apply_namespace` writes the run's namespace into a target's settings with the
keys that adapter reads. The protected-target check (:func:`check_protected`) lives
here too: which names are protected, and which targets share a protected one's place.

Nothing here imports dbt: the module is read before dbt is loaded.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dbtproof.errors import ProtectedTargetError
from dbtproof.project.lookalikes import Lookalikes
from dbtproof.project.servers import ServerFacts, ServerResolver


@dataclass(frozen=True)
class AdapterRules:
    """How one adapter names and drops the place a run writes to."""

    #: The adapter type, as ``type:`` names it in ``profiles.yml``.
    adapter_type: str
    #: Profile keys that hold the schema: dbt's own name first, then the adapter's aliases.
    schema_keys: tuple[str, ...] = ("schema",)
    #: Profile keys that hold the database (catalog, project), dbt's own name first.
    database_keys: tuple[str, ...] = ("database",)
    #: Profile keys that hold the password, dbt's own name first (the run role's login
    #: replaces the one the user wrote: dbt refuses two keys of one setting).
    password_keys: tuple[str, ...] = ("password",)
    #: The adapter requires ``database`` to equal ``schema`` whenever ``database`` is set.
    database_is_schema: bool = False
    #: ``adapter.drop_schema`` drops the relations in the schema too.
    drop_cascades: bool = True
    #: Profile keys that name the server (two targets with different values never share data).
    server_keys: tuple[str, ...] = ("host",)
    #: The port a ``host`` is reached on when ``port`` is not set: the adapter resolves the
    #: host and compares host and port as one server (:mod:`dbtproof.project.servers`). None: the
    #: server keys are compared as written.
    default_port: int | None = None
    #: The data lives in a local file named by the ``path`` key (DuckDB).
    file_path_key: str | None = None
    #: dbt applies a node's ``grants:`` config here (DuckDB's ``apply_grants`` does nothing).
    grants: bool = True
    #: The profile key of the role every connection dbt opens works as (dbt-postgres runs
    #: ``set role <value>`` on connecting): what ``dbt.as_role`` sets. None: dbtproof
    #: cannot act as another role on this adapter.
    role_key: str | None = None
    #: Roles that exist without being in the catalog (PostgreSQL's ``public``).
    implicit_roles: frozenset[str] = frozenset()
    #: The adapter runs its engine in the test process when ``method`` is one of these
    #: (dbt-spark's ``session``: a local Spark), its data under pytest's basetemp.
    in_process_methods: tuple[str, ...] = ()


def runs_in_process(adapter_type: str, output: Mapping[str, Any]) -> bool:
    """True when *output* (a target's settings) runs its engine in the test process
    (dbt-spark's ``method: session``), so its data lives under pytest's basetemp."""
    methods = rules_for(adapter_type).in_process_methods
    return bool(methods) and str(output.get("method", "")).casefold() in methods


_RULES: Mapping[str, AdapterRules] = MappingProxyType(
    {
        rules.adapter_type: rules
        for rules in (
            AdapterRules(
                "postgres",
                database_keys=("database", "dbname"),
                password_keys=("password", "pass"),
                server_keys=("host", "port"),
                default_port=5432,
                role_key="role",
                implicit_roles=frozenset({"public"}),
            ),
            AdapterRules(
                "redshift",
                database_keys=("database", "dbname"),
                password_keys=("password", "pass"),
                server_keys=("host", "port"),
                default_port=5439,
            ),
            AdapterRules("duckdb", server_keys=(), file_path_key="path", grants=False),
            AdapterRules(
                "bigquery",
                schema_keys=("schema", "dataset"),
                database_keys=("database", "project"),
                server_keys=(),
            ),
            AdapterRules("snowflake", server_keys=("account",)),
            AdapterRules(
                "spark",
                database_is_schema=True,
                in_process_methods=("session",),
            ),
            AdapterRules("databricks", database_keys=("database", "catalog")),
            AdapterRules("trino", database_keys=("database", "catalog"), drop_cascades=False),
            AdapterRules(
                "athena",
                database_keys=("database", "catalog"),
                drop_cascades=False,
                server_keys=("region_name",),
            ),
        )
    }
)


def rules_for(adapter_type: str) -> AdapterRules:
    """The namespace rules of *adapter_type*; an adapter not listed gets dbt's defaults."""
    return _RULES.get(adapter_type, AdapterRules(adapter_type))


def known_adapter_types() -> tuple[str, ...]:
    """The adapter types with rules of their own."""
    return tuple(_RULES)


def _first_present(output: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    return next((key for key in keys if key in output), None)


def apply_namespace(
    adapter_type: str, output: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """*output* (a target's settings) with *overrides* written under the adapter's own keys.

    An override of ``schema`` (``database``, ``password``) replaces whichever alias the user
    wrote (``dataset:`` on BigQuery, ``dbname:``/``pass:`` on PostgreSQL) and removes the
    others, so dbt never sees two keys for one setting. Where the adapter requires the
    database to be the schema (Spark), a database the user set follows the schema.
    """
    rules = rules_for(adapter_type)
    result = dict(output)
    for key, value in overrides.items():
        groups = (rules.schema_keys, rules.database_keys, rules.password_keys)
        group = next((g for g in groups if key in g), None)
        if group is None:
            result[key] = value
            continue
        written = _first_present(result, group) or key
        for alias in group:
            result.pop(alias, None)
        result[written] = value
    if rules.database_is_schema:
        schema_key = _first_present(result, rules.schema_keys)
        database_key = _first_present(result, rules.database_keys)
        if schema_key is not None and database_key is not None:
            result[database_key] = result[schema_key]
    return result


# -- where a run writes: the profile settings that put it in its namespace -------------

#: The run folder's subfolder where dbt-duckdb's ``external`` models write their files.
EXTERNAL_FOLDER = "external"
#: The folder, beside the run folders, of the process's local Spark (``method: session``):
#: its warehouse directory and Derby metastore.
SPARK_FOLDER = "spark"
_DEFAULT_SEARCH_PATH = '"$user",public'


def duckdb_database_name(path: Any) -> str:
    """The name DuckDB gives the database of the file *path* (``memory`` in memory)."""
    if not path or path == ":memory:":
        return "memory"
    return Path(str(path)).name.split(".")[0]


def duckdb_files(output: Mapping[str, Any], render: Callable[[Any], Any]) -> list[Path]:
    """The local DuckDB files of a DuckDB target: its ``path`` and the ``attach`` entries
    (values rendered with *render*; in-memory, MotherDuck and ``s3://`` paths left out)."""
    candidates = [output.get("path", ":memory:")]
    for entry in output.get("attach") or []:
        if isinstance(entry, dict) and str(render(entry.get("type", "duckdb"))) == "duckdb":
            candidates.append(entry.get("path"))
    files = []
    for candidate in candidates:
        text = str(render(candidate) or "")
        if not text or text == ":memory:" or ":" in text.split("/")[0]:
            continue  # in memory, MotherDuck (md:), s3:// ...
        path = (Path.cwd() / Path(text).expanduser()).resolve()
        if path not in files:
            files.append(path)
    return files


def namespace_overrides(
    adapter_type: str,
    namespace: str,
    output: Mapping[str, Any],
    render: Callable[[Any], Any],
    run_folder: Path,
) -> dict[str, Any]:
    """The profile settings that make a run write into *namespace*, whatever *output* (the
    user's target) says; written under the adapter's own keys by :func:`apply_namespace`.

    - every adapter: ``schema`` is the namespace;
    - PostgreSQL: ``search_path`` starts with the namespace, before the user's own
      (kept as written, Jinja included, for dbt to render) or PostgreSQL's default
      ``"$user", public``, so ``create table t`` and unqualified names in hooks land in
      the namespace while functions of extensions installed in ``public`` still resolve;
      and ``application_name`` is ``dbtproof <namespace>`` (the run id is in it), so the
      server's own views and logs (``pg_stat_activity``) name the run;
    - DuckDB: the database file is a new one in *run_folder*, named as the user's file
      (so ``database`` stays the name the project knows), and ``external`` models write
      under ``<run_folder>/external``, not the user's lake;
    - a local Spark (dbt-spark's ``method: session``): its warehouse directory, Derby
      metastore and ``derby.log`` in :func:`spark_home` beside *run_folder* (one per
      process, as the process's one JVM is), the user's other ``server_side_parameters``
      (``spark.master`` ...) kept. Nothing lands in the working directory, and two
      xdist workers never share a metastore (Derby's embedded one admits one JVM).
    """
    overrides: dict[str, Any] = {"schema": namespace}
    if adapter_type == "postgres":
        user = str(output.get("search_path") or "").strip()
        overrides["search_path"] = f"{namespace},{user or _DEFAULT_SEARCH_PATH}"
        overrides["application_name"] = f"dbtproof {namespace}"
    if adapter_type == "duckdb":
        raw_path = output.get("path", ":memory:")
        user_path = render(raw_path) if isinstance(raw_path, str) else raw_path
        overrides["path"] = str(run_folder / f"{duckdb_database_name(user_path)}.duckdb")
        overrides["external_root"] = str(run_folder / EXTERNAL_FOLDER)
    if runs_in_process(adapter_type, output):
        overrides["server_side_parameters"] = spark_session_parameters(
            output.get("server_side_parameters") or {}, spark_home(run_folder.parent)
        )
    return overrides


def spark_home(runs_folder: Path) -> Path:
    """The folder of the process's local Spark in *runs_folder* (which holds the run
    folders: ``<basetemp>/dbtproof``), beside the run folders."""
    return runs_folder / SPARK_FOLDER


def spark_session_parameters(user: Mapping[str, Any], home: Path) -> dict[str, str]:
    """*user*'s ``server_side_parameters`` with the local Spark's files under *home*:
    the warehouse directory, the Derby metastore and Derby's log (a JVM option; the user's
    own ``spark.driver.extraJavaOptions`` are kept after it). These are static settings:
    the first session of a process fixes them for its JVM."""
    parameters = {str(key): str(value) for key, value in user.items()}
    java = parameters.get("spark.driver.extraJavaOptions", "")
    derby = f"-Dderby.system.home={home} -Dderby.stream.error.file={home / 'derby.log'}"
    parameters.update(
        {
            "spark.sql.warehouse.dir": str(home / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
            ),
            "spark.driver.extraJavaOptions": f"{derby} {java}".strip(),
        }
    )
    return parameters


# -- secrets ---------------------------------------------------------------------------

#: Top-level profile keys whose literal values are never secret and stay readable in the
#: derived profile. Every other literal value (and everything nested: DuckDB ``settings``,
#: ``secrets``, ``attach``, BigQuery ``keyfile_json`` ...) is passed through the process
#: environment instead.
PLAIN_KEYS = frozenset(
    {
        "type", "threads", "schema", "dataset", "database", "dbname", "catalog", "project",
        "execution_project", "path", "host", "port", "user", "username", "method", "role",
        "warehouse", "account", "location", "sslmode", "connect_timeout", "connect_retries",
        "retries", "keepalives_idle", "search_path", "application_name", "priority",
        "job_execution_timeout_seconds", "timeout_seconds", "region_name", "s3_staging_dir",
        "http_path", "cluster", "endpoint", "driver", "auth_type",
    }
)  # fmt: skip


def is_template(value: Any) -> bool:
    """True for a string dbt renders as Jinja (``{{ env_var('X') }}`` ...)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


# -- protected targets -----------------------------------------------------------------

#: Glob patterns of target names tests refuse to run against (ini ``dbt_protected_targets``).
DEFAULT_PROTECTED_PATTERNS = ("prod*", "*_prod", "*-prod", "live*", "prd*")


def protected_pattern(
    name: str, patterns: Iterable[str], lookalikes: Lookalikes | None = None
) -> str | None:
    """The first of *patterns* (globs) that *name* matches, or None. Both are compared as
    skeletons (:meth:`Lookalikes.skeleton`: NFKC, casefolded, trimmed, without accents or
    invisible characters, lookalikes read as the letter they look like, so ``" Prоd"`` with
    a Cyrillic ``о`` and ``"ᴘrod"`` with a small capital P both read ``"prod"``)."""
    lookalikes = lookalikes or Lookalikes()
    skeleton = lookalikes.skeleton(name)
    for pattern in patterns:
        if pattern.strip() and fnmatch.fnmatchcase(skeleton, lookalikes.skeleton(pattern, "*?[]!")):
            return pattern
    return None


def _place(
    adapter_type: str, output: Mapping[str, Any], render: Callable[[Any], Any]
) -> dict[str, str]:
    """The rendered values that say where a target's data lives (server, database, schema,
    file); a value that cannot be rendered (an unset variable) is left out."""
    rules = rules_for(adapter_type)
    found: dict[str, str] = {}
    wanted = {
        **{key: f"server:{key}" for key in rules.server_keys},
        **{key: "database" for key in rules.database_keys},
        **{key: "schema" for key in rules.schema_keys},
    }
    if rules.file_path_key:
        wanted[rules.file_path_key] = "file"
    for key, role in wanted.items():
        if key not in output or role in found:
            continue
        try:
            value = render(output[key]) if is_template(output[key]) else output[key]
        except Exception:  # noqa: BLE001 - an unrenderable value says nothing either way
            continue
        if value is None or value == "":
            continue
        text = str(value)
        if role == "file":
            if text == ":memory:" or text.startswith(("md:", "motherduck:")):
                found[role] = text.casefold()
                continue
            text = str((Path.cwd() / os.path.expanduser(text)).resolve())
        else:
            text = text.casefold()
        found[role] = text
    return found


def _port(value: str | None, default: int) -> int | None:
    """The port a place names (*default*, the adapter's, when it names none), or None
    when it is not a number."""
    try:
        return default if value is None else int(value)
    except ValueError:
        return None


def _same_server(
    rules: AdapterRules, mine: Mapping[str, str], theirs: Mapping[str, str], servers: ServerResolver
) -> bool:
    """False when both places name their server and it is not the same one: a host with
    its port compared resolved (``localhost`` is ``127.0.0.1``), other keys as written.
    On an adapter of hosts and ports, a host that is missing or cannot be rendered is
    unknown: never the same server (never taken for ``localhost``)."""
    host = "server:host"
    if rules.default_port is not None:
        if host not in mine or host not in theirs:
            return False
        port, other_port = (
            _port(place.get("server:port"), rules.default_port) for place in (mine, theirs)
        )
        if port is not None and other_port is not None:
            return servers.same(mine[host], port, theirs[host], other_port)
    return all(
        mine[key] == theirs[key]
        for key in (f"server:{name}" for name in rules.server_keys)
        if key in mine and key in theirs
    )


def shared_place(
    adapter_type: str,
    output: Mapping[str, Any],
    other_type: str,
    other: Mapping[str, Any],
    render: Callable[[Any], Any],
    servers: ServerResolver | None = None,
) -> str | None:
    """What *output* shares with *other* that makes it the same place, or None.

    Two targets of one adapter type share a place when they use the same DuckDB file, or
    (unless they name different servers: hosts compared by the addresses they resolve to,
    with their ports) the same database, or the same schema where neither names a
    database. An in-memory DuckDB is never shared.
    """
    if adapter_type != other_type:
        return None
    mine, theirs = _place(adapter_type, output, render), _place(other_type, other, render)
    if "file" in mine or "file" in theirs:
        if mine.get("file") == theirs.get("file") and mine.get("file") not in (None, ":memory:"):
            return f"DuckDB file {mine['file']}"
        return None
    if not _same_server(rules_for(adapter_type), mine, theirs, servers or ServerResolver()):
        return None
    if "database" in mine and "database" in theirs:
        if mine["database"] == theirs["database"]:
            return f"database {mine['database']}"
        return None
    if "schema" in mine and mine.get("schema") == theirs.get("schema"):
        return f"schema {mine['schema']}"
    return None


def protected_schemas(
    adapter_type: str,
    target_name: str,
    outputs: Mapping[str, Mapping[str, Any]],
    patterns: Iterable[str],
    render: Callable[[Any], Any],
) -> dict[str, str]:
    """The schemas of the protected targets of a profile (other than *target_name*) on
    the same kind of warehouse, each with the target that names it: where a test
    identity should have no rights. A value that cannot be rendered (an unset
    variable) is left out."""
    schemas: dict[str, str] = {}
    keys = rules_for(adapter_type).schema_keys
    lookalikes = Lookalikes()
    for name, output in sorted(outputs.items()):
        if name == target_name or protected_pattern(name, patterns, lookalikes) is None:
            continue
        if not isinstance(output, Mapping) or str(output.get("type")) != adapter_type:
            continue
        for key in keys:
            value = output.get(key)
            try:
                value = render(value) if is_template(value) else value
            except Exception:  # noqa: BLE001 - an unset variable: nothing to compare
                continue
            if value:
                schemas[str(value)] = name
                break
    return schemas


def _protected_advice(patterns: Sequence[str]) -> str:
    """What a refused protected target's message ends with: the ways out, and the patterns."""
    listed = ", ".join(p for p in patterns if p.strip()) or "none"
    return (
        f"Choose another target with --dbt-target, or pass --dbt-allow-protected-target if you "
        f"really mean it (protected targets: {listed}; ini dbt_protected_targets)."
    )


def _protected_others(
    target_name: str,
    outputs: Mapping[str, Mapping[str, Any]],
    patterns: Sequence[str],
    lookalikes: Lookalikes,
) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """The other targets of the profile whose names are protected, by name."""
    for other_name, other in sorted(outputs.items()):
        if other_name == target_name or not isinstance(other, Mapping):
            continue
        if protected_pattern(other_name, patterns, lookalikes) is not None:
            yield other_name, other


def check_protected(
    profile_name: str,
    target_name: str,
    profiles_path: Path,
    outputs: Mapping[str, Mapping[str, Any]],
    patterns: Sequence[str],
    render: Callable[[Any], Any],
) -> None:
    """Refuse *target_name* when its name matches a protected pattern, or when it uses the
    database, schema or DuckDB file of a target of the profile whose name does.

    :raises ProtectedTargetError: naming the target, the reason and what to do.
    """
    advice = _protected_advice(patterns)
    where = f"target '{target_name}' of profile '{profile_name}' ({profiles_path})"
    lookalikes, servers = Lookalikes(), ServerResolver()
    matched = protected_pattern(target_name, patterns, lookalikes)
    if matched is not None:
        raise ProtectedTargetError(
            f"dbtproof: {where} is protected (its name matches '{matched}'); tests do not run "
            f"against it. {advice}"
        )
    output = outputs.get(target_name, {})
    adapter_type = str(output.get("type", "?"))
    for other_name, other in _protected_others(target_name, outputs, patterns, lookalikes):
        other_type = str(other.get("type", "?"))
        shared = shared_place(adapter_type, output, other_type, other, render, servers)
        if shared is not None:
            raise ProtectedTargetError(
                f"dbtproof: {where} uses the {shared} of protected target '{other_name}'; "
                f"tests do not run against a protected target's data. Point '{target_name}' "
                f"at a database of its own. {advice}"
            )


def check_protected_server(
    profile_name: str,
    target_name: str,
    profiles_path: Path,
    outputs: Mapping[str, Mapping[str, Any]],
    patterns: Sequence[str],
    render: Callable[[Any], Any],
    facts: ServerFacts,
) -> None:
    """Once connected (PostgreSQL): refuse *target_name* when the server that answered
    (*facts*) is the one a protected target of the profile names, with the same database,
    however the two spell its host (a name, an address, a Unix socket).

    :raises ProtectedTargetError: naming the target, the protected one and the server.
    """
    output = outputs.get(target_name, {})
    adapter_type = str(output.get("type", "?"))
    rules = rules_for(adapter_type)
    if rules.default_port is None:
        return
    lookalikes, servers = Lookalikes(), ServerResolver()
    for other_name, other in _protected_others(target_name, outputs, patterns, lookalikes):
        if str(other.get("type")) != adapter_type:
            continue
        place = _place(adapter_type, other, render)
        port = _port(place.get("server:port"), rules.default_port)
        if place.get("database") != facts.database.casefold() or port is None:
            continue
        if "server:host" not in place:  # unrenderable: says nothing either way
            continue
        if servers.reaches(place["server:host"], port, facts):
            raise ProtectedTargetError(
                f"dbtproof: target '{target_name}' of profile '{profile_name}' "
                f"({profiles_path}) reached the server of protected target '{other_name}' "
                f"({facts.describe()}) and its database {facts.database}; tests do not run "
                f"against a protected target's data. Point '{target_name}' at a database of "
                f"its own. {_protected_advice(patterns)}"
            )
