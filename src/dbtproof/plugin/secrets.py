"""Where the run's secrets are applied: :class:`SecretOutputs`.

The run's :class:`~dbtproof.safety.redaction.SecretRegistry` (``state.secrets``) holds the
values; this part fills it (``.env``, ``DBT_ENV_SECRET*``, the target's secret fields,
secret ``--dbt-vars``, what the session made) and scrubs what leaves the run: reports,
the terminal, the JUnit XML and log files, the files the session leaves (its folder, the
warm-parse cache), GitHub's job log (``::add-mask::``). Owned by
the run's state (``state.secret_outputs``).
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbtproof.plugin.options import is_xdist_worker
from dbtproof.safety.redaction import SECRET_ENV_PREFIX, SecretRegistry, github_mask_commands

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession


class SecretOutputs:
    """Fills the run's secret registry and scrubs the run's outputs against it."""

    def __init__(self, registry: SecretRegistry) -> None:
        self.registry = registry

    def open(self, config: pytest.Config) -> None:
        """Read the ``.env`` file dbt-core 1.12 reads, as dbt does (before anything resolves
        the profile); register the ``DBT_ENV_SECRET*`` values set now, the file's among them;
        on GitHub Actions, have each value the registry gets masked in the job's log
        (``::add-mask::``)."""
        from dbtproof import _dbt_compat as compat

        if os.environ.get("GITHUB_ACTIONS") == "true":
            self.registry.on_new_value = lambda value: _mask_on_github(config, value)
        loaded = compat.load_env_file()
        if loaded is not None:
            path, values = loaded
            for name, value in values.items():
                if name.startswith(SECRET_ENV_PREFIX):
                    self.registry.add(value, f"{name} in {path}")
        self.registry.add_environment()

    def scrub_terminal(self, config: pytest.Config) -> None:
        """Have pytest's terminal writer scrub every line it writes (test ids, warnings,
        summaries, internal errors: whatever does not come from a report)."""
        if config.pluginmanager.get_plugin("terminalreporter") is not None:
            self.registry.scrub_writes(config.get_terminal_writer())

    def scrub_report(self, report: Any) -> None:
        """Scrub a test or collection report in place, with the ``DBT_ENV_SECRET*`` values
        set now registered first."""
        self.registry.add_environment()
        self.registry.scrub_report(report)

    def scrub_outputs(self, config: pytest.Config) -> None:
        """Scrub the files pytest wrote for the run: ``--junitxml`` and ``--log-file``."""
        paths = []
        xmlpath = getattr(config.option, "xmlpath", None)
        if xmlpath and not is_xdist_worker(config):
            xml = Path(os.path.expandvars(xmlpath)).expanduser()
            paths.append(xml if xml.is_absolute() else config.invocation_params.dir / xml)
        logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
        handler = getattr(logging_plugin, "log_file_handler", None)
        log_file = getattr(handler, "baseFilename", None)
        if log_file and log_file != os.devnull:
            paths.append(Path(log_file))
        for path in paths:
            if path.is_file():
                self.registry.scrub_file(path)

    def add_target(self, session: DbtSession) -> None:
        """Register the target's secret fields (as profiles.yml writes them and, once dbt
        has rendered the profile, as dbt resolved them) and dbt's secret ``--dbt-vars``
        (named ``DBT_ENV_SECRET*``)."""
        target = session.profile_target
        where = f"target {target.target_name} of {target.profiles_path}"
        self.registry.add_public({}, target.profile_name, target.target_name)  # in the header
        self.registry.add_target(target.raw_output, where)
        config = session.runtime_config
        self.registry.add_credentials(getattr(config, "credentials", None), where)
        for name, value in session.settings.vars.items():
            if str(name).startswith(SECRET_ENV_PREFIX) and isinstance(value, str):
                self.registry.add(value, f"--dbt-vars {name}")
        for secret in session.access.made_secrets:
            self.registry.add(secret.reveal(), secret.source)
        self.registry.add_environment()

    def scrub_files(self, session: DbtSession) -> None:
        """Scrub the files the session leaves in its folder (dbt's logs, target/, the
        derived profile), not the warehouse's: the DuckDB file and external data files."""
        skip = [session.external_root]
        if session.database_file is not None:
            database = session.database_file
            skip += database.parent.glob(database.name + "*")
        self.registry.scrub_tree(session.workdir, skip)
        self.scrub_parse_cache(session)

    def scrub_parse_cache(self, session: DbtSession) -> None:
        """Scrub the warm-parse cache the session parsed in; throw it away if it held a
        secret."""
        cache = session.parse_cache
        if cache is not None:
            # dbt's partial-parse file keeps the values of the env vars the project reads:
            # one that held a secret is scrubbed and thrown away (the next parse is full).
            from dbtproof.session import parse_cache

            with parse_cache.locked(cache) as held:
                if held and self.registry.scrub_tree(cache.folder):
                    cache.discard()


def _mask_on_github(config: pytest.Config, value: str) -> None:
    """Mask *value* in the GitHub Actions job's log. The runner reads ``::add-mask::``
    commands at the start of a line of the process's real stdout or stderr: pytest's
    capture is suspended for the write, a line the terminal has begun is ended first,
    and an xdist worker (whose stdout is /dev/null) writes to its stderr, the job's."""
    worker = is_xdist_worker(config)
    stream = sys.__stderr__ if worker else sys.__stdout__
    if stream is None:
        return
    begun = (
        not worker
        and config.pluginmanager.get_plugin("terminalreporter") is not None
        and config.get_terminal_writer().width_of_current_line > 0
    )
    commands = "".join(f"{command}\n" for command in github_mask_commands(value))
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        stream.write(("\n" if begun else "") + commands)
        stream.flush()
