"""A dbtproof session whose seeds and sources are the sample's tables: where agents work.

:func:`open_workspace` starts a session as a pytest run does (protected targets refused,
relocation, the guard, on PostgreSQL the per-run role, allowed to read only the sample's
tables besides its namespace), then points every seed and every source at its table in
the sample namespace (:mod:`~dbtproof.agents.sample`): a DuckDB sample is attached read
only, from a copy in the run's folder. Models build into the run's namespace from the
sample; production is never read, and seeds are never loaded (``dbt run`` only).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.agents.minted import MintedCredentials, exported
from dbtproof.agents.opening import opened_session
from dbtproof.agents.pii import PiiRule
from dbtproof.agents.place import DEFAULT_FOLDER, DUCKDB_CATALOG, SampleRecord, load_record
from dbtproof.agents.readonly import ReadOnlyConnection
from dbtproof.compare.rows import Rows
from dbtproof.errors import DbtproofError, UnknownNodeError
from dbtproof.project.nodes import is_ephemeral, resource_type
from dbtproof.safety.quoting import literal, quote
from dbtproof.safety.redaction import SecretRegistry
from dbtproof.safety.relocation import Relocation
from dbtproof.session.session import DbtSession


@dataclass
class Workspace:
    """A started session on the sample, for proposals and profiles (see the module)."""

    session: DbtSession
    record: SampleRecord
    secrets: SecretRegistry
    project_dir: Path
    pii: PiiRule = field(default_factory=PiiRule)
    #: Whether the project's models are built in the namespace (:meth:`ensure_built`).
    built: bool = False
    #: The proposals made in this workspace, by id (see :mod:`~dbtproof.agents.proposals`).
    proposals: dict[str, Any] = field(default_factory=dict)
    #: The connection :meth:`query` reads on, read-only in the database (made at start).
    reader: ReadOnlyConnection | None = field(default=None, repr=False)

    def model_names(self) -> list[str]:
        """The names of the root project's enabled models, sorted."""
        return sorted(node.name for node in self._models())

    def _models(self) -> list[Any]:
        project = self.session.project.name
        return [
            node
            for node in self.session.manifest.nodes.values()
            if resource_type(node) == "model" and node.package_name == project
        ]

    def model(self, name: str) -> Any:
        """The manifest node of the root project's model *name*; a :class:`DbtproofError` for a
        name that is no such model (the names that are, in the message)."""
        if isinstance(name, str):
            for node in self._models():
                if node.name == name:
                    return node
        shown = ", ".join(self.model_names()[:20])
        raise UnknownNodeError(
            f"dbtproof: no model named {str(name)[:80]!r} in project "
            f"{self.session.project.name}. Models: {shown}."
        )

    def ensure_built(self) -> None:
        """Build every model of the project in the namespace from the sample (once)."""
        if not self.built:
            self.session.commands.run()
            self.built = True

    def query(self, sql: str) -> Rows:
        """Rows of *sql* (SQL dbtproof writes, never an agent's), read on the workspace's
        read-only connection (:class:`~dbtproof.agents.readonly.ReadOnlyConnection`): a
        write in it is refused by the database. Builds go through ``self.session``."""
        if self.reader is None:
            self.reader = ReadOnlyConnection(self.session)
        return self.reader.query(sql)

    def close(self) -> None:
        """Close the read-only connection (the session is the opener's to end)."""
        if self.reader is not None:
            self.reader.close()

    def relation(self, model: str) -> str:
        """The relation of *model* in the namespace (built first); a :class:`DbtproofError`
        for an ephemeral model, which has none."""
        node = self.model(model)
        if is_ephemeral(node) or not getattr(node, "relation_name", None):
            raise DbtproofError(
                f"dbtproof: model {node.name} is ephemeral: it has no relation to read."
            )
        self.ensure_built()
        return str(node.relation_name)

    def column_types(self, model: str) -> list[tuple[str, str]]:
        """Names and data types of *model*'s columns, as its relation has them."""
        from dbtproof import _dbt_compat as compat

        self.relation(model)
        node, session = self.model(model), self.session
        adapter = session.adapter()
        relation = compat.node_relation(adapter, session.runtime_config, node)
        with compat.connection(adapter, "dbtproof_columns"):
            session.connections.connect(adapter, "dbtproof_columns")
            return compat.columns_in_relation(adapter, relation)

    def pii_columns(self, model: str) -> set[str]:
        """The columns of *model* (lower case) treated as PII: marked so in its YAML, or
        named as a column the sample masked."""
        return self.pii.columns(self.model(model)) | self.record.masked_columns()


def _point_at_sample(session: DbtSession, record: SampleRecord, database: str | None) -> Any:
    """The ``prepare_manifest`` hook: each seed and source of the manifest pointed at its
    sample table (a source the project feeds at its feeder's)."""
    from dbtproof import _dbt_compat as compat

    def prepare(manifest: Any, relocation: Relocation) -> None:
        schema = "main" if record.adapter == "duckdb" else record.schema
        adapter, config = session.adapter(), session.runtime_config
        seeds = {}
        for node in manifest.nodes.values():
            if resource_type(node) != "seed":
                continue
            table = record.table_for(str(node.unique_id))
            if table is None:
                continue
            seeds[str(node.unique_id)] = table.name
            node.database, node.schema, node.alias = database, schema, table.name
            node.relation_name = str(compat.node_relation(adapter, config, node))
        for unique_id, source in manifest.sources.items():
            table = record.table_for(str(unique_id))
            name = table.name if table else seeds.get(relocation.feeders.get(unique_id, ""))
            if name is None:
                continue  # nothing sampled: the models reading it fail, never production
            source.database, source.schema, source.identifier = database, schema, name
            source.relation_name = str(compat.node_relation(adapter, config, source))

    return prepare


def open_workspace(
    project_dir: Path,
    *,
    target: str | None = None,
    profiles_dir: Path | None = None,
    sample_dir: Path | None = None,
    pii: PiiRule | None = None,
    credentials: MintedCredentials | None = None,
) -> AbstractContextManager[Workspace]:
    """A :class:`Workspace` on the sample of *project_dir*'s target (its record in
    *sample_dir*, default ``<project>/target/dbtproof-sample``; *credentials*:
    ``--dbt-credentials``); torn down at the end. Raises :class:`DbtproofError`: no sample,
    a protected target, ...."""
    return _workspace(
        Path(project_dir).resolve(), target, profiles_dir, sample_dir, pii, credentials
    )


@contextmanager
def _workspace(
    project_dir: Path,
    target: str | None,
    profiles_dir: Path | None,
    sample_dir: Path | None,
    pii: PiiRule | None,
    credentials: MintedCredentials | None,
) -> Iterator[Workspace]:
    from dbtproof import _dbt_compat as compat
    from dbtproof.project.discovery import DbtProject, find_profiles_dir, load_profile_target
    from dbtproof.session.session import SessionSettings, check_protected

    folder = sample_dir or project_dir / DEFAULT_FOLDER
    found = find_profiles_dir(str(profiles_dir) if profiles_dir else None)

    def render(value: str) -> Any:
        return compat.render_profile_value(value, {})

    name = DbtProject.load(project_dir).profile_name
    with exported(credentials):
        profile = load_profile_target(found, name, target, render=render)
        # refused before the sample is looked for (the session's start checks it again,
        # and on PostgreSQL the server that answers)
        check_protected(profile, SessionSettings(project_dir, found, folder, "check"), render)
    record = load_record(folder, profile.target_name)
    holder: list[DbtSession] = []
    reads = tuple(
        (quote(record.schema), f"{quote(record.schema)}.{quote(table.name)}")
        for table in record.tables
    )

    def prepare(manifest: Any, relocation: Relocation) -> None:
        session = holder[0]
        database = DUCKDB_CATALOG if record.adapter == "duckdb" else session.database
        _point_at_sample(session, record, database)(manifest, relocation)

    with opened_session(
        project_dir,
        target=target,
        profiles_dir=profiles_dir,
        extra_reads=reads if record.adapter == "postgres" else (),
        # the sample namespace is the guard's to leave, as for `dbtproof sample` (DuckDB:
        # attached read-only after the guard's first look; PostgreSQL: the run role may
        # only read it)
        own_places=(DUCKDB_CATALOG,) if record.adapter == "duckdb" else (record.schema,),
        prepare_manifest=prepare,
        on_session=holder.append,
        credentials=credentials,
    ) as opened:
        session = opened.session
        if session.adapter_type != record.adapter:
            raise DbtproofError(
                f"dbtproof: the sample in {folder} was taken on {record.adapter}, target "
                f"{session.target} is {session.adapter_type}. Make it again: `dbtproof "
                f"sample --target {session.target}`."
            )
        pin = _attach_sample(session, folder / str(record.file)) if record.file else None
        workspace = Workspace(session, record, opened.secrets, project_dir, pii or PiiRule())
        try:
            yield workspace
        finally:
            workspace.close()
            if pin is not None:
                from dbtproof import _dbt_compat as compat

                compat.close_dedicated_connection(pin)


def _attach_sample(session: DbtSession, sample_file: Path) -> Any:
    """DuckDB: a copy of the sample file, in the run's folder, attached read-only."""
    from dbtproof import _dbt_compat as compat

    if not sample_file.is_file():
        raise DbtproofError(
            f"dbtproof: the sample file {sample_file} is missing. Make the sample again: "
            f"`dbtproof sample --target {session.target}`."
        )
    copy = session.workdir / "sample.duckdb"
    shutil.copyfile(sample_file, copy)
    pin = compat.open_dedicated_connection(session.adapter(), "dbtproof_sample")
    compat.execute_dedicated(
        pin, f"attach {literal(str(copy))} as {quote(DUCKDB_CATALOG)} (read_only)"
    )
    return pin
