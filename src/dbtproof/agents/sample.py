"""``dbtproof sample``: a bounded, masked sample of the project's seeds and sources.

Run by a person or CI, never by an agent. It starts a dbtproof session as a pytest run
does (a protected target is refused; relocation; the guard), loads the seeds into the
run's namespace, and copies at most ``rows`` rows of every seed and of every source the
project does not feed itself into the sample namespace (a PostgreSQL schema, or a DuckDB
file kept beside the record), each PII column (:class:`~dbtproof.agents.pii.PiiRule`)
replaced by a salted hash: equal values stay equal (joins still match), the salt is
random per sample and kept nowhere. The guard leaves the sample namespace to the run
and fails it for any other write. What was copied is recorded
(:mod:`~dbtproof.agents.place`) and written as an evidence chain.
"""

from __future__ import annotations

import os
import secrets as random
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbtproof.agents.minted import MintedCredentials, exported
from dbtproof.agents.opening import opened_session
from dbtproof.agents.pii import PiiRule
from dbtproof.agents.place import (
    DEFAULT_SCHEMA,
    DUCKDB_CATALOG,
    SampleRecord,
    SampleTable,
    save_record,
    table_name,
)
from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import resource_type
from dbtproof.project.targets import duckdb_database_name, duckdb_files
from dbtproof.safety.guard import watch
from dbtproof.safety.quoting import literal, quote

#: DuckDB: the catalog a copy of the target's own file is attached as, to read sources.
ORIGIN_CATALOG = "dbtproof_origin"
#: At most this many rows of each seed and source, unless told otherwise.
DEFAULT_ROWS = 1000
SUPPORTED = ("duckdb", "postgres")


@dataclass(frozen=True)
class SampleOptions:
    """What ``dbtproof sample`` is told."""

    rows: int = DEFAULT_ROWS
    pii: PiiRule = PiiRule()
    #: PostgreSQL: the sample's schema.
    schema: str = DEFAULT_SCHEMA


def _origins(manifest: Any, fed: set[str]) -> list[Any]:
    """The seeds, and the sources the project does not feed itself, in a fixed order."""
    seeds = [node for node in manifest.nodes.values() if resource_type(node) == "seed"]
    sources = [s for uid, s in manifest.sources.items() if uid not in fed]
    return sorted([*seeds, *sources], key=lambda node: str(node.unique_id))


def _select(columns: list[str], masked: set[str], salt: str) -> str:
    """The select list that copies *columns*, each masked one as a salted hash."""
    parts = []
    for column in columns:
        name = quote(column)
        if column.lower() in masked:
            digest = f"md5({literal(salt)} || cast({name} as varchar))"
            parts.append(
                f"case when {name} is null then null else 'pii_' || substr({digest}, 1, 12) "
                f"end as {name}"
            )
        else:
            parts.append(name)
    return ", ".join(parts)


def take_sample(
    project_dir: Path,
    folder: Path,
    *,
    target: str | None = None,
    profiles_dir: Path | None = None,
    vars: dict[str, Any] | None = None,
    options: SampleOptions = SampleOptions(),
    evidence: Path | None = None,
    allow_protected_target: bool = False,
    credentials: MintedCredentials | None = None,
) -> tuple[SampleRecord, list[str]]:
    """Make the sample of *project_dir*'s target and record it in *folder*; returns the
    record and the lines to print. *evidence* (default: ``<folder>/evidence/<run
    id>.jsonl``) is the new evidence file; *credentials*: ``--dbt-credentials``.
    Raises :class:`DbtproofError`."""
    if options.rows < 1:
        raise DbtproofError("dbtproof sample: --rows must be at least 1.")
    salt = random.token_hex(16)
    with exported(credentials):
        origin_file = _target_file(project_dir, target, profiles_dir, vars)
    places = (options.schema, DUCKDB_CATALOG, ORIGIN_CATALOG)
    with opened_session(
        project_dir,
        target=target,
        profiles_dir=profiles_dir,
        vars=vars,
        seed=True,
        run_role=False,  # the sample namespace is written as the identity: a person's or CI's
        own_places=places,
        allow_protected_target=allow_protected_target,
        credentials=credentials,
    ) as opened:
        session = opened.session
        if session.adapter_type not in SUPPORTED:
            raise DbtproofError(
                f"dbtproof sample: adapter {session.adapter_type!r} is not supported yet "
                f"(DuckDB and PostgreSQL are)."
            )
        assert session.relocation is not None
        fed = set(session.relocation.feeders)
        duckdb = session.adapter_type == "duckdb"
        schema = f"{quote(DUCKDB_CATALOG)}.main" if duckdb else quote(options.schema)
        sample_file = session.workdir / "sample.duckdb"
        pin = _attach(session, sample_file) if duckdb else None
        origin_catalog = None
        if pin is not None and origin_file is not None and origin_file.is_file():
            _attach_origin(session, pin, origin_file)
            origin_catalog = duckdb_database_name(origin_file)
        record = SampleRecord(
            run_id=session.settings.run_id,
            target=session.target,
            adapter=session.adapter_type,
            schema=DUCKDB_CATALOG if duckdb else options.schema,
            rows_limit=options.rows,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            file=f"sample-{session.target}.duckdb" if duckdb else None,
        )
        with watch(session.guard, "dbtproof sample"):
            if not duckdb:
                session.connections.execute(f"drop schema if exists {schema} cascade")
                session.connections.execute(f"create schema {schema}")
            for origin in _origins(session.manifest, fed):
                table = _copy(session, origin, schema, options, salt, origin_catalog)
                if table is not None:
                    record.tables.append(table)
        if pin is not None:
            _detach(session, pin)
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(sample_file, folder / str(record.file))
        save_record(folder, record)
        path = _write_evidence(record, folder, evidence, opened.secrets.scrub)
        lines = _summary(record, folder, path)
        return record, [opened.secrets.scrub(line) for line in lines]


def _attach(session: Any, sample_file: Path) -> Any:
    """DuckDB: a new sample file attached (writable) on a connection kept open for it."""
    from dbtproof import _dbt_compat as compat

    pin = compat.open_dedicated_connection(session.adapter(), "dbtproof_sample")
    compat.execute_dedicated(pin, f"attach {literal(str(sample_file))} as {quote(DUCKDB_CATALOG)}")
    return pin


def _target_file(
    project_dir: Path, target: str | None, profiles_dir: Path | None, vars: Any
) -> Path | None:
    """DuckDB: the target's own database file (None for another adapter, in memory)."""
    from dbtproof import _dbt_compat as compat
    from dbtproof.project.discovery import DbtProject, find_profiles_dir, load_profile_target

    profile = load_profile_target(
        find_profiles_dir(str(profiles_dir) if profiles_dir else None),
        DbtProject.load(project_dir).profile_name,
        target,
    )
    if profile.adapter_type != "duckdb":
        return None
    files = duckdb_files(
        {"path": profile.raw_output.get("path", ":memory:")},
        lambda value: compat.render_profile_value(value, dict(vars or {})),
    )
    return files[0] if files else None


def _attach_origin(session: Any, pin: Any, origin: Path) -> None:
    """DuckDB: a copy of the target's own file (where its sources are), in the run's
    folder, attached read-only as ``dbtproof_origin``: the run's SQL may not open the
    target's file itself (:mod:`dbtproof.session.file_access`), and the run's own database has
    taken its name."""
    from dbtproof import _dbt_compat as compat

    copy = session.workdir / "origin" / origin.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(origin, copy)
    compat.execute_dedicated(
        pin, f"attach {literal(str(copy))} as {quote(ORIGIN_CATALOG)} (read_only)"
    )


def _detach(session: Any, pin: Any) -> None:
    """DuckDB: the sample file detached (written out) and its connection closed."""
    from dbtproof import _dbt_compat as compat

    compat.execute_dedicated(pin, f"detach database if exists {quote(DUCKDB_CATALOG)}")
    compat.close_dedicated_connection(pin)


def _origin_relation(session: Any, origin: Any, origin_catalog: str | None) -> str | None:
    """The relation *origin* is read from, None when it does not exist: on DuckDB a
    source in the target's own database is read from its attached copy."""
    database = str(getattr(origin, "database", "") or "")
    if origin_catalog is None or database != origin_catalog or resource_type(origin) == "seed":
        return str(origin.relation_name) if session.commands.relation_exists(origin) else None
    found = session.connections.query(
        "select count(*) as n from information_schema.tables where table_catalog = "
        f"{literal(ORIGIN_CATALOG)} and table_schema = {literal(str(origin.schema))} and "
        f"table_name = {literal(str(origin.identifier))}"
    )[0]["n"]
    if not found:
        return None
    return f"{quote(ORIGIN_CATALOG)}.{quote(str(origin.schema))}.{quote(str(origin.identifier))}"


def _copy(
    session: Any,
    origin: Any,
    schema: str,
    options: SampleOptions,
    salt: str,
    origin_catalog: str | None,
) -> SampleTable | None:
    """Copy at most ``options.rows`` rows of *origin* (masked) into the sample; None when
    its relation does not exist (a source nobody loaded)."""
    relation = _origin_relation(session, origin, origin_catalog)
    if relation is None:
        return None
    columns = list(session.connections.query(f"select * from {relation} where 1 = 0").columns)
    declared = options.pii.columns(origin)
    masked = [column for column in columns if column.lower() in declared]
    name = table_name(origin)
    select = _select(columns, {m.lower() for m in masked}, salt)
    session.connections.execute(
        f"create table {schema}.{quote(name)} as select {select} from {relation} "
        f"limit {int(options.rows)}"
    )
    count = session.connections.query(f"select count(*) as n from {schema}.{quote(name)}")[0]["n"]
    return SampleTable(
        name=name,
        origin=str(origin.unique_id),
        rows=int(count),
        columns=columns,
        masked=masked,
    )


def _write_evidence(record: SampleRecord, folder: Path, path: Path | None, scrub: Any) -> Path:
    """The sample's evidence chain: what was copied from where, how much, what masked."""
    from dbtproof.evidence.chain import write_chain
    from dbtproof.evidence.records import file_sha256, scrubbed

    path = path or folder / "evidence" / f"{record.run_id}.jsonl"
    start = {
        "type": "sample_start",
        "run_id": record.run_id,
        "target": record.target,
        "adapter": record.adapter,
        "sample_namespace": record.schema,
        "rows_limit": record.rows_limit,
        "created": record.created,
    }
    tables = [{"type": "sample_table", **vars(table)} for table in record.tables]
    end: dict[str, Any] = {"type": "run_end", "run_id": record.run_id, "tables": len(tables)}
    if record.file is not None:
        end["sample_file_sha256"] = file_sha256(folder / record.file)
    write_chain(path, [scrubbed(record, scrub) for record in [start, *tables, end]])
    return path


def _summary(record: SampleRecord, folder: Path, evidence: Path) -> list[str]:
    lines = [
        f"dbtproof sample: {len(record.tables)} table(s) of target {record.target} into "
        f"{record.schema} (at most {record.rows_limit} rows each)"
    ]
    for table in record.tables:
        masked = f", masked: {', '.join(table.masked)}" if table.masked else ""
        lines.append(f"  {table.name}: {table.rows} rows from {table.origin}{masked}")
    lines.append(f"record: {folder}; evidence: {evidence}")
    return lines
