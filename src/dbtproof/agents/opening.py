"""A dbtproof session started outside pytest, for ``dbtproof sample`` and the workspace.

The same start as a pytest run's (protected targets refused, relocation, the guard, the
run role on PostgreSQL), in a temporary folder of its own, with the run's secrets
registered (:class:`~dbtproof.safety.redaction.SecretRegistry`) so that what the commands print
and record can be scrubbed; the namespace is dropped and the folder scrubbed and removed
at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbtproof.agents.minted import MintedCredentials
from dbtproof.project.discovery import find_profiles_dir
from dbtproof.safety.namespace import new_run_id
from dbtproof.safety.redaction import SecretRegistry
from dbtproof.session.session import DbtSession, SessionSettings

SECRET_ENV_PREFIX = "DBT_ENV_SECRET"


@dataclass
class Opened:
    """A started session and the registry of its secrets."""

    session: DbtSession
    secrets: SecretRegistry


def _register(secrets: SecretRegistry, session: DbtSession) -> None:
    """Register the target's secret settings, as written and as dbt resolved them."""
    target = session.profile_target
    where = f"target {target.target_name} of {target.profiles_path}"
    secrets.add_target(target.raw_output, where)
    secrets.add_credentials(getattr(session.runtime_config, "credentials", None), where)
    for name, value in session.settings.vars.items():
        if str(name).startswith(SECRET_ENV_PREFIX) and isinstance(value, str):
            secrets.add(value, f"--vars {name}")
    for secret in session.access.made_secrets:
        secrets.add(secret.reveal(), secret.source)
    secrets.add_environment()


@contextmanager
def opened_session(
    project_dir: Path,
    *,
    target: str | None = None,
    profiles_dir: Path | None = None,
    vars: dict[str, Any] | None = None,
    on_session: Callable[[DbtSession], object] | None = None,
    credentials: MintedCredentials | None = None,
    **settings: Any,
) -> Iterator[Opened]:
    """A :class:`DbtSession` of *project_dir* started as a pytest run starts it (extra
    :class:`SessionSettings` fields in *settings*; *on_session* told of it before it
    starts; *credentials* minted for it, each value a secret of its registry); torn
    down at the end. Raises :class:`~dbtproof.errors.DbtproofError` (a protected target, a
    bad profile, ...)."""
    from dbtproof import _dbt_compat as compat

    secrets = SecretRegistry()
    loaded = compat.load_env_file()
    if loaded is not None:
        for name, value in loaded[1].items():
            if name.startswith(SECRET_ENV_PREFIX):
                secrets.add(value, f"{name} in {loaded[0]}")
    secrets.add_environment()
    if credentials is not None:
        credentials.register_into(secrets)
    workdir = Path(tempfile.mkdtemp(prefix="dbtproof-agents-"))
    session: DbtSession | None = None
    try:
        session = DbtSession(
            SessionSettings(
                project_dir=Path(project_dir).resolve(),
                profiles_dir=find_profiles_dir(str(profiles_dir) if profiles_dir else None),
                workdir=workdir,
                run_id=new_run_id(),
                target=target,
                vars=dict(vars or {}),
                credentials=credentials.set if credentials is not None else None,
                **settings,
            )
        )
        _register(secrets, session)
        if on_session is not None:
            on_session(session)
        try:
            session.start()
        finally:
            _register(secrets, session)
        yield Opened(session, secrets)
    finally:
        try:
            if session is not None:
                session.teardown.run()
        finally:
            secrets.scrub_tree(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
