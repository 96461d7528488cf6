"""``profiles.yml`` as dbt reads it: one value rendered, a target's credentials, or the
adapter's credentials rendered anew (with freshly minted variables)."""

from __future__ import annotations

from typing import Any

#: How a connection logs in: ``(user, password, role)``.
Login = tuple[str | None, str | None, str | None]


def render_profile_value(value: str, cli_vars: dict[str, Any] | None = None) -> Any:
    """Render one ``profiles.yml`` value (``{{ env_var('X') }}`` ...) with dbt's profile context.

    A missing environment variable raises dbt's own error, which the caller turns
    into a :class:`dbtproof.DbtproofError`.
    """
    from dbt.config.renderer import ProfileRenderer

    _ensure_invocation_context()
    return ProfileRenderer(cli_vars or {}).render_value(value)


def _ensure_invocation_context() -> None:
    """dbt >= 1.8 reads env vars through an invocation context: set it from ``os.environ``."""
    import os

    from dbt_common.context import set_invocation_context

    set_invocation_context(dict(os.environ))


def parse_profile(
    profiles_dir: str,
    profile_name: str,
    target_name: str,
    cli_vars: dict[str, Any] | None = None,
) -> Any:
    """The credentials dbt builds from *profile_name*/*target_name* in *profiles_dir*.

    The profile is read and rendered by dbt itself (with *cli_vars* for ``var()``), so
    dbt's own checks run: unknown or duplicate keys (``dataset`` and ``schema`` on
    BigQuery), Spark's database == schema.
    """
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import get_flags, set_from_args

    _ensure_invocation_context()
    if not hasattr(get_flags(), "LOG_CACHE_EVENTS"):  # no dbt invocation yet in this process
        set_from_args(Namespace(), None)
    raw = read_profile(profiles_dir)
    renderer = ProfileRenderer(cli_vars or {})
    profile = Profile.from_raw_profiles(raw, profile_name, renderer, target_name)
    return profile.credentials


def use_role(config: Any, role: str | None) -> None:
    """Make the connections dbt opens from *config* from now on log in as *role*.

    The derived profile says so for every later invocation; this is for the runtime
    config already parsed (dbt's credentials object is read at each connection open).
    """
    config.credentials.role = role


def use_login(config: Any, user: str | None, password: str | None, role: str | None) -> Login:
    """Make the connections dbt opens from *config* from now on log in as *user* with
    *password*, then set *role* (None: none); returns the login they used before."""
    credentials = config.credentials
    before = login_of(config)
    credentials.user, credentials.password, credentials.role = user, password, role
    return before


def login_of(config: Any) -> Login:
    """``(user, password, role)`` *config*'s connections log in with."""
    credentials = config.credentials
    return (
        getattr(credentials, "user", None),
        getattr(credentials, "password", None),
        getattr(credentials, "role", None) or None,
    )


def credentials_with_login(credentials: Any, login: Login) -> Any:
    """A copy of dbt's *credentials* that logs in with *login* (``(user, password, role)``)."""
    import copy

    other = copy.copy(credentials)
    other.user, other.password, other.role = login
    return other


def use_duckdb_plugin(config: Any, module: str, alias: str, settings: dict[str, Any]) -> None:
    """Add (or replace, by *alias*) a dbt-duckdb plugin of *config*'s credentials: the
    databases dbt-duckdb opens from now on are configured by it."""
    from dbt.adapters.duckdb.credentials import PluginConfig

    credentials = config.credentials
    kept = [plugin for plugin in credentials.plugins or [] if plugin.alias != alias]
    credentials.plugins = [*kept, PluginConfig(module=module, alias=alias, config=settings)]


def credentials_role(config: Any) -> str | None:
    """The role *config*'s credentials set (``role:`` in the profile), or None."""
    return getattr(config.credentials, "role", None) or None


def with_credentials(config: Any, credentials: Any, target_path: str) -> Any:
    """A copy of dbt's ``RuntimeConfig`` *config* with other *credentials* and target path,
    registered as its adapter's config (the adapter of *config* is let go).

    For a manifest parsed with one profile and run with another that differs only in
    where it writes (the warm parse's placeholder schema, the run's namespace): every
    part of the config but the credentials comes from the project and the profile's
    shared settings. The configs of its packages (``dependencies``, as dbt builds them
    from the profile) get the same credentials: a parse loaded from a file has none
    there (``save_parse`` leaves them out), a fresh one the parse profile's.
    """
    import copy

    from dbt.adapters.factory import register_adapter, reset_adapters
    from dbt.mp_context import get_mp_context

    rebound = copy.copy(config)
    rebound.credentials = credentials
    rebound.target_path = target_path
    dependencies = getattr(config, "dependencies", None)
    if dependencies:
        rebound.dependencies = {}
        for name, dependency in dependencies.items():
            dependency = copy.copy(dependency)
            dependency.credentials = credentials
            rebound.dependencies[name] = dependency
    reset_adapters()
    register_adapter(rebound, get_mp_context())
    return rebound


def refresh_credentials(
    credentials: Any, settings: dict[str, Any], cli_vars: dict[str, Any]
) -> None:
    """Render *settings* (a target's keys, as written) anew, as dbt renders a profile, and
    set the result on *credentials*, the adapter's.

    dbt renders ``env_var()`` once, when it builds a RuntimeConfig, and its adapter opens
    every later connection with those values: a token minted for one invocation would be
    used after it expired. Called with the minted variables exported, this puts the fresh
    ones in. Keys are translated as dbt does (``pass`` is ``password``).
    """
    from dbt.config.renderer import ProfileRenderer

    _ensure_invocation_context()
    rendered = ProfileRenderer(cli_vars or {}).render_data(dict(settings))
    for key, value in type(credentials).translate_aliases(rendered).items():
        setattr(credentials, key, value)
