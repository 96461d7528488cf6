"""The run's derived profile: :class:`DerivedProfile`.

dbt runs with a profile of dbtproof's, derived from the user's target: the namespace
(:func:`dbtproof.project.targets.namespace_overrides`), on PostgreSQL the run role's
login, on DuckDB the lockdown of the files the run's SQL may touch
(:mod:`dbtproof.session.file_access`). Also the header's lines on minted credentials.
Owned by the session (``session.profile``); reads and sets what it works out on the
session through :class:`ProfileHost`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.credentials.profile import header_lines
from dbtproof.project import targets
from dbtproof.project.discovery import load_profile_target, minted_settings, write_derived_profiles
from dbtproof.session.file_access import LOCKDOWN_ALIAS, LOCKDOWN_MODULE, project_file_access
from dbtproof.session.host import RunFacts

if TYPE_CHECKING:
    from dbtproof.project.discovery import DbtProject, ProfileTarget
    from dbtproof.session.access import SessionAccess
    from dbtproof.session.file_access import FileAccess
    from dbtproof.session.settings import SessionSettings
    from dbtproof.session.shared_build import SharedPlace


class ProfileHost(RunFacts, Protocol):
    """What :class:`DerivedProfile` reads (and sets) of its session."""

    settings: SessionSettings
    project: DbtProject
    profile_target: ProfileTarget
    access: SessionAccess
    workdir: Path
    external_root: Path
    shared_place: SharedPlace | None
    #: Set here: DuckDB's database file of the run.
    database_file: Path | None
    #: Set here: the files the run's SQL may touch (DuckDB).
    file_access: FileAccess | None
    #: Set here: the derived profile's settings that read minted variables.
    minted_settings: dict[str, Any]

    @property
    def target(self) -> str:
        """The target's name."""

    def render(self, value: str) -> Any:
        """A profile value rendered as dbt renders it."""


class DerivedProfile:
    """Writes the run's derived profile and limits DuckDB's file access."""

    def __init__(self, host: ProfileHost) -> None:
        self.host = host

    def overrides(self) -> dict[str, Any]:
        """The derived profile's settings: the namespace (:func:`targets.namespace_overrides`)
        and, on PostgreSQL, the run role."""
        host = self.host
        overrides = targets.namespace_overrides(
            host.adapter_type,
            host.schema,
            host.profile_target.raw_output,
            host.render,
            host.workdir,
        )
        run_role = host.access.run_role
        if run_role is not None and run_role.password is not None:
            # dbt logs in as the run role itself: no role to set, none to reset to
            overrides["user"] = run_role.name
            overrides["password"] = run_role.password.reveal()
            overrides["role"] = None
        elif run_role is not None:
            overrides["role"] = run_role.quoted
        if host.file_access is not None and not host.file_access.unlimited:
            overrides["plugins"] = host.file_access.plugins(host.profile_target.raw_output)
        if "path" in overrides:
            host.database_file = Path(overrides["path"])
        if "external_root" in overrides:
            host.external_root.mkdir(parents=True, exist_ok=True)
        return overrides

    def write(self) -> Path:
        """Write the derived profile (anew: the run role's login, DuckDB's lockdown); its folder."""
        host = self.host
        return write_derived_profiles(
            host.profile_target, self.overrides(), host.workdir / "profile"
        )

    def read_minted_settings(self, profiles_dir: Path) -> None:
        """With credential providers: note the derived profile's settings that read their
        minted variables, as written (rendered anew before a connection opens)."""
        host = self.host
        if host.settings.credentials:
            derived = load_profile_target(
                profiles_dir, host.profile_target.profile_name, host.target
            )
            host.minted_settings = minted_settings(derived, host.settings.credentials.variables)

    def limit_file_access(self) -> None:
        """DuckDB: open the run's database limited to the files the run may touch
        (:mod:`dbtproof.session.file_access`), unless dbtproof cannot tell what the project
        needs."""
        host = self.host
        folders = [host.workdir]
        if host.shared_place is not None:
            folders.append(host.shared_place.folder)
        host.file_access = project_file_access(
            host.manifest, host.profile_target.raw_output, host.project.root, folders, host.render
        )
        if host.file_access.unlimited:
            return
        self.write()
        compat.use_duckdb_plugin(
            host.runtime_config, LOCKDOWN_MODULE, LOCKDOWN_ALIAS, host.file_access.settings()
        )

    def credential_lines(self) -> list[str]:
        """The header's lines on minted credentials: provider, variable, settings reading it."""
        credentials = self.host.settings.credentials
        return header_lines(credentials, self.host.minted_settings) if credentials else []
