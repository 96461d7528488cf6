"""The settings of a run's dbt session (:class:`~dbtproof.session.settings.SessionSettings`),
read from pytest's options and ini keys."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from dbtproof.plugin.options import is_xdist_controller, is_xdist_worker, option
from dbtproof.project.discovery import find_profiles_dir
from dbtproof.session.settings import SessionSettings, parse_vars

if TYPE_CHECKING:
    from dbtproof.credentials import CredentialSet
    from dbtproof.evidence.recorder import EvidenceRecorder
    from dbtproof.plugin.xdist import XdistHandover
    from dbtproof.session.progress import Progress


class SettingsSource(Protocol):
    """What :func:`session_settings` reads of the run's state."""

    project_dir: Path
    run_id: str
    worker_id: str | None
    credentials: CredentialSet | None
    xdist: XdistHandover
    evidence: EvidenceRecorder | None
    progress: Progress | None


def session_settings(
    config: pytest.Config, state: SettingsSource, workdir: Path
) -> SessionSettings:
    """The settings of *state*'s dbt session, read from *config*'s options and ini keys;
    the run's files in *workdir*. Raises :class:`DbtproofError` or :class:`pytest.UsageError`
    for a malformed value."""
    profiles_dir = find_profiles_dir(option(config, "dbt_profiles_dir", "dbt_profiles_dir"))
    return SessionSettings(
        project_dir=state.project_dir,
        profiles_dir=profiles_dir,
        workdir=workdir,
        run_id=state.run_id,
        worker_id=state.worker_id,
        target=option(config, "dbt_target", "dbt_target"),
        vars=parse_vars(config.getoption("dbt_vars")),
        protected_targets=config.getini("dbt_protected_targets"),
        allow_protected_target=config.getoption("dbt_allow_protected_target"),
        keep=config.getoption("dbt_keep"),
        store_failures=config.getoption("dbt_store_failures"),
        seed=config.getoption("dbt_seed") and not is_xdist_controller(config),
        runs_tests=not is_xdist_controller(config),
        run_role=config.getini("dbt_run_role"),
        warm_parse=config.getini("dbt_warm_parse"),
        connect_retries=_connect_retries(config),
        grant_roles=_grant_roles(config),
        require_least_privilege=config.getini("dbt_require_least_privilege"),
        credentials=state.credentials,
        share_parse_to=state.xdist.shared_parse if is_xdist_controller(config) else None,
        parse_from=state.xdist.shared_parse if is_xdist_worker(config) else None,
        shared_build=state.xdist.shared_build if is_xdist_worker(config) else None,
        # invocations (and their artifacts) are kept in the evidence file only
        observers=[state.evidence.on_invocation]
        if state.evidence is not None and state.evidence.path is not None
        else [],
        progress=state.progress,
    )


def _grant_roles(config: pytest.Config) -> dict[str, str]:
    """``dbt_grant_roles`` (ini) with ``--dbt-grant-roles`` on top: production role -> CI role.
    Raises :class:`DbtproofError` for a malformed entry."""
    from dbtproof.safety.grants import parse_role_map

    where = f"dbt_grant_roles in {config.inipath or 'the ini file'}"
    mapping = parse_role_map(config.getini("dbt_grant_roles") or [], where)
    mapping.update(parse_role_map(config.getoption("dbt_grant_roles") or [], "--dbt-grant-roles"))
    return mapping


def _connect_retries(config: pytest.Config) -> int:
    """The ini key ``dbt_connect_retries``: a whole number from 0 to 10."""
    text = str(config.getini("dbt_connect_retries")).strip()
    if not text.isdigit() or int(text) > 10:
        raise pytest.UsageError(
            f"dbtproof: dbt_connect_retries = {text!r} in {config.inipath or 'the ini file'} "
            f"is not a whole number from 0 to 10 (how often a connection is tried again "
            f"after a transient failure; default 3)."
        )
    return int(text)
