"""The start of a ``dbtproof mcp`` server: profile, protection, secrets, manifest.

:func:`open_tools` reads the project and the profile target, refuses a protected target
exactly as a pytest run does (the project's ``dbt_protected_targets``, before anything is
parsed or connected), registers the target's secrets, parses the project once for the
manifest facts, and returns the :class:`~dbtproof.agents.tools.AgentTools` whose
workspace (the dbtproof session on the sample) opens at the first tool that needs data.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.agents.minted import MintedCredentials, exported
from dbtproof.agents.protection import protected_patterns
from dbtproof.agents.tools import AgentTools
from dbtproof.credentials.profile import bind_to_target
from dbtproof.project.discovery import DbtProject, load_profile_target
from dbtproof.project.targets import check_protected
from dbtproof.safety.redaction import SecretRegistry

if TYPE_CHECKING:
    from dbtproof.agents.mcp_settings import McpSettings


@dataclass(frozen=True)
class Started:
    """What :func:`open_tools` made: the tools, the evidence file, the target's names."""

    tools: AgentTools
    evidence: Path
    target_facts: dict[str, Any]


def _dialect(adapter_type: str) -> str | None:
    """sqlglot's dialect of the adapter (None: sqlglot's generic SQL)."""
    from sqlglot.dialects.dialect import Dialect

    return adapter_type if adapter_type in Dialect.classes else None


def open_tools(settings: McpSettings, secrets: SecretRegistry) -> Started:
    """Start the server's tools (see the module's doc). Raises :class:`DbtproofError` for a
    protected target, a missing project or profile, or a project dbt cannot parse."""
    from dbtproof.session.runner import DbtRunner

    project = DbtProject.load(settings.project_dir)
    loaded = compat.load_env_file()  # dbt-core 1.12's .env: its secrets are secrets here too
    if loaded is not None:
        for name, value in loaded[1].items():
            if name.startswith("DBT_ENV_SECRET"):
                secrets.add(value, f"{name} in {loaded[0]}")

    def render(value: Any) -> Any:
        return compat.render_profile_value(value, settings.vars)

    credentials = None
    if settings.credential_specs:
        credentials = MintedCredentials(
            settings.credential_specs, settings.allow_untrusted_credentials
        )
        credentials.register_into(secrets)
    with exported(credentials):
        target = load_profile_target(
            settings.profiles_dir, project.profile_name, settings.target, render=render
        )
        where = f"target {target.target_name}"
        secrets.add_public({}, target.profile_name, target.target_name)
        secrets.add_target(target.raw_output, where)
        check_protected(
            target.profile_name,
            target.target_name,
            target.profiles_path,
            target.profile_outputs or {target.target_name: target.raw_output},
            protected_patterns(settings.project_dir),
            render,
        )
        if credentials is not None:  # a provider the target never reads: refused here
            bind_to_target(credentials.set, target, render)
    workdir = Path(tempfile.mkdtemp(prefix="dbtproof-mcp-"))
    try:
        runner = DbtRunner(
            project_dir=settings.project_dir,
            profiles_dir=target.profiles_path.parent,
            profile=target.profile_name,
            target=target.target_name,
            target_path=workdir / "target",
            log_path=workdir / "logs",
            vars=settings.vars,
            credentials=credentials.set if credentials is not None else None,
        )
        manifest = runner.parse()
        config = compat.registered_runtime_config(target.adapter_type)
        secrets.add_credentials(getattr(config, "credentials", None), where)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    evidence = settings.evidence or (
        settings.project_dir / str(config.target_path) / "dbtproof-mcp" / f"{workdir.name}.jsonl"
    )

    @contextlib.contextmanager
    def workspace() -> Iterator[Any]:
        from dbtproof.agents.workspace import open_workspace

        with open_workspace(
            settings.project_dir,
            target=target.target_name,
            profiles_dir=settings.profiles_dir,
            sample_dir=settings.sample_dir,
            pii=settings.pii,
            credentials=credentials,
        ) as ws:
            for secret in ws.session.access.made_secrets:
                secrets.add(secret, "made by the workspace's session")
            tools.scrubbers.append(ws.secrets.scrub)
            yield ws

    tools = AgentTools(
        project_dir=settings.project_dir,
        project_name=project.name,
        manifest=manifest,
        dialect=_dialect(target.adapter_type),
        test_paths=tuple(config.test_paths) or ("tests",),
        pii=settings.pii,
        open_workspace=workspace,
    )
    tools.defer(lambda: shutil.rmtree(workdir, ignore_errors=True))
    facts = {
        "profile": target.profile_name,
        "target": target.target_name,
        "adapter": target.adapter_type,
        "profiles_path": str(target.profiles_path),
    }
    return Started(tools=tools, evidence=evidence.resolve(), target_facts=facts)
