"""Where a session's manifests write: :class:`SessionPlacement`.

Moves a parsed manifest into the run's namespace (relocated, DuckDB's ``external``
files too, checked), points the sources loaded outside the project at where they
exist, and moves a copy of the xdist controller's parse to the run-level build's place
(:mod:`dbtproof.session.shared_build`). Owned by the session (``session.placement``);
reads it through :class:`PlacementHost`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.project import targets
from dbtproof.safety import namespace as ns
from dbtproof.safety.loaded_sources import read_where_loaded
from dbtproof.safety.relocation import (
    Relocation,
    from_parse_schema,
    move_to_database,
    relocate,
    relocate_external_locations,
)
from dbtproof.session import parse_cache
from dbtproof.session.host import RunFacts

if TYPE_CHECKING:
    from dbtproof.project.discovery import ProfileTarget
    from dbtproof.session.access import SessionAccess
    from dbtproof.session.commands import SessionCommands
    from dbtproof.session.settings import SessionSettings
    from dbtproof.session.shared_build import SharedPlace


class PlacementHost(RunFacts, Protocol):
    """What :class:`SessionPlacement` reads of its session."""

    settings: SessionSettings
    profile_target: ProfileTarget
    access: SessionAccess
    commands: SessionCommands
    #: What was moved into the namespace after parsing.
    relocation: Relocation | None
    #: Where DuckDB's ``external`` models write their files in this run.
    external_root: Path
    #: The start reached the warehouse (the loaded sources can be looked up).
    in_warehouse: bool

    def adapter(self) -> Any:
        """dbt's adapter of the target."""

    def render(self, value: str) -> Any:
        """A profile value rendered as dbt renders it."""


class SessionPlacement:
    """Moves manifests into the run's namespace, or the run-level build's place."""

    def __init__(self, host: PlacementHost) -> None:
        self.host = host

    def move_into_namespace(self, manifest: Any) -> Relocation:
        """Relocate what *manifest* writes (DuckDB external files too), then check the result."""
        host = self.host
        relocation = relocate(
            manifest, host.adapter(), host.runtime_config, host.schema, host.database
        )
        if host.adapter_type == "duckdb":
            relocate_external_locations(manifest, host.external_root)
        ns.check_isolation(manifest, host.schema, host.database)
        if host.settings.prepare_manifest is not None:
            host.settings.prepare_manifest(manifest, relocation)
        if host.in_warehouse:
            self.read_loaded_sources(manifest, relocation)
        return relocation

    def reads_loaded_sources(self) -> bool:
        """Whether sources loaded outside the project may be read where they were loaded:
        not on DuckDB or a local Spark, whose run database is new (the user's tables are not
        in it), nor where the profile names no schema."""
        host = self.host
        output = host.profile_target.raw_output
        raw = output.get("schema") or output.get("dataset")
        return (
            isinstance(raw, str)
            and host.adapter_type != "duckdb"
            and not targets.runs_in_process(host.adapter_type, output)
        )

    def read_loaded_sources(
        self, manifest: Any = None, relocation: Any = None, namespace: str | None = None
    ) -> None:
        """Point the sources loaded outside the project (rendered from ``target.schema``,
        fed by no node) at where the profile's own target puts them, where they exist
        (:mod:`dbtproof.safety.loaded_sources`), when :meth:`reads_loaded_sources`.
        *namespace*: the one *manifest* was moved into (the session's by default)."""
        host = self.host
        manifest = host.manifest if manifest is None else manifest
        relocation = host.relocation if relocation is None else relocation
        if relocation is None or not self.reads_loaded_sources():
            return
        output = host.profile_target.raw_output
        raw = output.get("schema") or output.get("dataset")
        adapter, config = host.adapter(), host.runtime_config
        relocation.loaded += read_where_loaded(
            manifest.sources,
            namespace or host.schema,
            str(host.render(raw)),
            relocation.feeders,
            host.commands.exists,
            lambda source: str(compat.node_relation(adapter, config, source)),
        )

    def shared_manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the xdist controller's parse moved to the run-level build's
        *place* (:mod:`dbtproof.session.shared_build`): relocated as the session's own manifest is,
        into the place's schema (checked like the session's own), then, on DuckDB, into its
        catalog, ``external`` files in its folder; the sources loaded outside the project
        looked up as for the session's own; data tests, which write only their stored
        failures, into this session's namespace."""
        host = self.host
        assert host.settings.parse_from is not None
        manifest, _ = compat.load_parse(host.settings.parse_from)
        adapter, config = host.adapter(), host.runtime_config
        from_parse_schema(manifest, parse_cache.PARSE_SCHEMA, place.schema, adapter, config)
        relocation = relocate(manifest, adapter, config, place.schema, host.database)
        if host.adapter_type == "duckdb":
            relocate_external_locations(manifest, place.external_root, spell_out_defaults=True)
        ns.check_isolation(manifest, place.schema, host.database)
        move_to_database(
            manifest, relocation, place.catalog, adapter, config, tests_namespace=host.schema
        )
        if host.in_warehouse:
            self.read_loaded_sources(manifest, relocation, place.schema)
        if host.access.grants is not None:
            host.access.grants.rewrite(manifest)
        compat.build_graph_variable(manifest)
        return manifest
