"""How a dbt session gets its manifest: :class:`SessionParsing`.

Warm through the project's parse cache (:mod:`dbtproof.session.parse_cache`) when it can be, the
kept parse of :mod:`dbtproof.session.parse_snapshot` when nothing it read changed, the xdist
controller's parse in a worker, else cold with the run's own profile; the runtime
config is the run's either way. Owned by the session (``session.parsing``).
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.credentials.profile import unset_secret_hint
from dbtproof.errors import DbtproofError
from dbtproof.project import targets
from dbtproof.project.discovery import write_derived_profiles
from dbtproof.safety.relocation import from_parse_schema
from dbtproof.session import parse_cache, parse_snapshot
from dbtproof.session.runner import DbtRunner

if TYPE_CHECKING:
    from dbtproof.project.discovery import DbtProject, ProfileTarget
    from dbtproof.session.settings import SessionSettings


class ParseHost(Protocol):
    """What :class:`SessionParsing` reads of its session."""

    settings: SessionSettings
    project: DbtProject
    profile_target: ProfileTarget
    timings: parse_cache.StartTimings

    @property
    def target(self) -> str:
        """The target's name."""

    @property
    def adapter_type(self) -> str:
        """The target's adapter type."""

    @property
    def schema(self) -> str:
        """The run's namespace, where the placeholder schema moves."""

    def render(self, value: str) -> Any:
        """A profile value rendered as dbt renders it."""

    def where(self) -> str:
        """Where the target comes from, for messages."""

    def adapter(self) -> Any:
        """dbt's adapter of the target (after :attr:`SessionParsing.config` is set)."""


class SessionParsing:
    """The session's parse: its runtime config, the warm-parse cache it used, and dbt's
    partial-parse file read ahead between watch rounds."""

    def __init__(self, host: ParseHost) -> None:
        self.host = host
        #: dbt's ``RuntimeConfig`` of the project and target (None before the parse).
        self.config: Any = None
        #: The warm-parse cache this session parsed in (None: a cold parse).
        self.cache: parse_cache.ParseCache | None = None
        #: dbt's partial-parse file read back between watch rounds, for the next parse.
        self._read_ahead: Any = None

    def parse(self, runner: DbtRunner, changed: bool = False) -> None:
        """Parse the session's manifest: warm (:mod:`dbtproof.session.parse_cache`) when it can be,
        else cold with the run's own profile; the runtime config is the run's either way.

        *changed*: files dbt reads were just saved (a watch round), so the kept parse of
        :mod:`dbtproof.session.parse_snapshot` is stale: neither looked at nor written again
        (the next run outside the loop finds it stale and keeps a new one)."""
        if self._warm_parse(runner, changed):
            return
        try:
            runner.parse(graph_variable=False)  # built once moved: build_graph_variable
        except DbtproofError as exc:
            raise self.parse_error(exc) from exc
        self.config = compat.registered_runtime_config(self.host.adapter_type)

    def _warm_parse(self, runner: DbtRunner, changed: bool = False) -> bool:
        """Parse against the placeholder profile in the project's parse cache and move the
        placeholder to the namespace; False (with a note) when the cache cannot serve."""
        timings = self.host.timings
        if not self.host.settings.warm_parse:
            timings.parse = "cold (warm parse switched off: dbt_warm_parse = false)"
            return False
        if self._adopt_shared_parse(runner):
            return True
        cache = parse_cache.cache_for(
            self.host.project.root,
            self.host.profile_target.profile_name,
            self.host.target,
            self.host.adapter_type,
            self.host.settings.vars,
            compat.dbt_version(),
        )
        with parse_cache.locked(cache) as held:
            if not held:
                timings.parse = (
                    f"cold: the parse cache {cache.folder} cannot be written or another run "
                    f"held it for {parse_cache.LOCK_TIMEOUT:.0f} s"
                )
                return False
            self.cache = cache
            before = cache.stamp()
            overrides = targets.namespace_overrides(
                self.host.adapter_type,
                parse_cache.PARSE_SCHEMA,
                self.host.profile_target.raw_output,
                self.host.render,
                cache.folder,
            )
            try:
                profiles_dir = write_derived_profiles(
                    self.host.profile_target, overrides, cache.profile_folder
                )
                kept = None if changed else self._kept_parse(cache, profiles_dir)
                if kept is not None:
                    manifest, parsed_config = kept
                else:
                    parser = DbtRunner(
                        project_dir=self.host.project.root,
                        profiles_dir=profiles_dir,
                        profile=self.host.profile_target.profile_name,
                        target=self.host.target,
                        target_path=cache.target_path,
                        log_path=runner.log_path,
                        vars=self.host.settings.vars,
                        credentials=self.host.settings.credentials,
                        observers=self.host.settings.observers,
                        progress=self.host.settings.progress,
                        file_log=self.host.settings.keep,
                    )
                    parse_started = time.time_ns()
                    ahead, self._read_ahead = self._read_ahead, None
                    with compat.partial_parse_read_ahead(ahead):
                        manifest = parser.parse(graph_variable=False)
                    parsed_config = compat.registered_runtime_config(self.host.adapter_type)
                    if not changed:
                        self._keep_parse(
                            cache, profiles_dir, manifest, parsed_config, parse_started
                        )
            except (DbtproofError, OSError) as exc:
                if before is None and isinstance(exc, DbtproofError):
                    # a full parse failed: a cold one would fail alike
                    raise self.parse_error(exc) from exc
                cache.discard()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                timings.parse = (
                    f"cold: the warm parse failed ({reason}); its cache {cache.folder} was "
                    f"discarded"
                )
                return False
            after = cache.stamp()
        if self.host.settings.share_parse_to is not None:
            # before the placeholder is moved: each worker moves it to its own namespace
            compat.save_parse(self.host.settings.share_parse_to, manifest, parsed_config)
        self._bind_warm_parse(runner, manifest, parsed_config)
        state = (
            "reused unchanged, loaded whole: no file, env var or setting it read changed"
            if kept is not None
            else "created (a full parse)"
            if before is None
            else "reused unchanged"
            if before == after
            else "updated by dbt (files, vars or settings changed)"
        )
        timings.parse = f"warm, partial-parse cache {state} ({cache.folder})"
        return True

    def read_parse_ahead(self) -> None:
        """Between watch rounds: read dbt's partial-parse file back now, while the loop
        waits for a save, so that the next round's parse takes it decoded (the same bytes,
        else dbt reads them itself)."""
        if self.cache is not None:
            self._read_ahead = compat.read_partial_parse(self.cache.target_path)

    def _kept_parse(self, cache: parse_cache.ParseCache, profiles_dir: Path) -> Any:
        """The last warm parse (manifest, runtime config) when nothing it read has changed
        since (:mod:`dbtproof.session.parse_snapshot`), else None and dbt parses."""
        kept = parse_snapshot.current(
            cache.folder,
            self.host.project.root,
            profiles_dir / "profiles.yml",
            parse_snapshot.versions(self.host.adapter_type),
        )
        if kept is None:
            return None
        try:
            return compat.load_parse(kept)
        except Exception:  # noqa: BLE001 - unreadable for any reason: dbt parses instead
            parse_snapshot.forget(cache.folder)
            return None

    def _keep_parse(
        self,
        cache: parse_cache.ParseCache,
        profiles_dir: Path,
        manifest: Any,
        parsed_config: Any,
        parse_started: int,
    ) -> None:
        """Keep dbt's fresh parse whole for the next run, with its fingerprint (before the
        placeholder is moved: the next run moves it to its own namespace)."""
        parse_snapshot.forget(cache.folder)
        compat.save_parse(parse_snapshot.snapshot_file(cache.folder), manifest, parsed_config)
        _, env_names = compat.parse_inputs(manifest, parsed_config)
        # the project's own target path holds this cache (and dbt's files): never read
        own_target = os.path.relpath(
            parse_cache.project_target_path(self.host.project.root), self.host.project.root
        )
        packages_path, found = compat.parse_projects(parsed_config)
        projects = tuple(
            parse_snapshot.ProjectInputs(
                path, tuple(folders), (*skipped, own_target) if path == "." else tuple(skipped)
            )
            for path, folders, skipped in found
        )
        parse_snapshot.record(
            cache.folder,
            self.host.project.root,
            profiles_dir / "profiles.yml",
            parse_snapshot.ParseInputs(projects, tuple(env_names), packages_path),
            parse_snapshot.versions(self.host.adapter_type),
            parse_started,
        )

    def _bind_warm_parse(self, runner: DbtRunner, manifest: Any, parsed_config: Any) -> None:
        """Make *manifest*, parsed with the placeholder profile (*parsed_config* its
        runtime config), the session's: the run's credentials in its config, the
        placeholder schema moved to the namespace."""
        runner.manifest = manifest
        with self._minted_exported():
            credentials = compat.parse_profile(
                str(runner.profiles_dir),
                self.host.profile_target.profile_name,
                self.host.target,
                self.host.settings.vars,
            )
        self.config = compat.with_credentials(parsed_config, credentials, str(runner.target_path))
        from_parse_schema(
            manifest, parse_cache.PARSE_SCHEMA, self.host.schema, self.host.adapter(), self.config
        )

    def _adopt_shared_parse(self, runner: DbtRunner) -> bool:
        """Under xdist, a worker takes the controller's warm parse (``parse_from``) instead
        of parsing again; False when there is none to take (the worker then parses)."""
        path = self.host.settings.parse_from
        if path is None or not path.is_file():
            return False
        manifest, parsed_config = compat.load_parse(path)
        self._bind_warm_parse(runner, manifest, parsed_config)
        self.host.timings.parse = (
            "the xdist controller's warm parse, loaded (no parse in the worker)"
        )
        return True

    def parse_error(self, exc: DbtproofError) -> DbtproofError:
        """dbt's parse error, with where the target comes from and, when a minted variable
        the profile reads is unset, how to mint it."""
        hint = unset_secret_hint(self.host.profile_target, self.host.settings.credentials)
        return DbtproofError(f"{exc}\n{self.host.where()}" + (f"\n  {hint}" if hint else ""))

    def _minted_exported(self) -> Any:
        """A context in which the minted variables are exported (none without providers)."""
        credentials = self.host.settings.credentials
        return credentials.exported() if credentials else nullcontext()
