"""What a dbt session is told: :class:`SessionSettings`, resolved from options and ini
keys, ``--dbt-vars`` read within limits (:func:`parse_vars`), and the protected-target
checks made before anything connects and once connected (:func:`check_protected`,
:func:`check_protected_server`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError
from dbtproof.project import targets

if TYPE_CHECKING:
    from dbtproof.credentials import CredentialSet
    from dbtproof.project.discovery import ProfileTarget
    from dbtproof.project.servers import ServerFacts
    from dbtproof.safety.relocation import Relocation
    from dbtproof.session.progress import Progress
    from dbtproof.session.runner import Invocation


@dataclass
class SessionSettings:
    """Everything a :class:`DbtSession` needs to know, resolved from options and ini keys."""

    project_dir: Path
    profiles_dir: Path
    workdir: Path
    run_id: str
    worker_id: str | None = None
    target: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    protected_targets: Sequence[str] = targets.DEFAULT_PROTECTED_PATTERNS
    allow_protected_target: bool = False
    keep: bool = False
    store_failures: bool = False
    seed: bool = False
    #: PostgreSQL: run as a per-run role when the identity may create roles.
    run_role: bool = True
    #: Parse through the project's warm-parse cache (:mod:`dbtproof.session.parse_cache`).
    warm_parse: bool = True
    #: Credential providers (``--dbt-credentials``): tokens minted before each dbt
    #: invocation and each connection dbtproof opens.
    credentials: CredentialSet | None = None
    #: The xdist controller: where to write its warm parse for the workers to load.
    share_parse_to: Path | None = None
    #: An xdist worker: the controller's warm parse to load instead of parsing.
    parse_from: Path | None = None
    #: An xdist worker (DuckDB, PostgreSQL): the run's folder for the project's nodes built once for
    #: every worker (:mod:`dbtproof.session.shared_build`); None: each worker builds its own.
    shared_build: Path | None = None
    #: Told of every dbt invocation (the run's evidence, ``--dbt-evidence``).
    observers: list[Callable[[Invocation], object]] = field(default_factory=list)
    #: Shows what each dbt invocation is doing on the terminal; None: nothing shown.
    progress: Progress | None = None
    #: How often a connection dbtproof opens is tried again after a transient failure
    #: (``dbt_connect_retries``), waiting 0.5 s, then twice as long each time.
    connect_retries: int = 3
    #: ``dbt_grant_roles``: production role (casefolded) -> the role standing for it here.
    grant_roles: dict[str, str] = field(default_factory=dict)
    #: ``dbt_require_least_privilege``: refuse to start when the identity has excess rights.
    require_least_privilege: bool = False
    #: False for the xdist controller, which runs no test: where the target's engine runs
    #: in the process (a local Spark: a JVM), it connects to nothing; its workers do.
    runs_tests: bool = True
    #: Places the run itself fills besides its namespace (``dbtproof sample``'s sample
    #: namespace): PostgreSQL schemas, DuckDB catalogs; the guard leaves them to the run.
    own_places: tuple[str, ...] = ()
    #: PostgreSQL: ``(schema, relation)``, both quoted, that the run role may read besides
    #: the sources (the sample's tables, which an agent's workspace reads).
    extra_reads: tuple[tuple[str, str], ...] = ()
    #: Called with the manifest and its relocation once it is moved into the namespace and
    #: checked, before anything connects (the agents' workspace points sources and seeds
    #: at the sample).
    prepare_manifest: Callable[[Any, Relocation], None] | None = None


#: ``--dbt-vars`` limits: its length, how deep its values nest, and how many values it holds
#: once YAML's aliases are expanded (an alias bomb is a few lines of text).
VARS_MAX_CHARS = 65_536
VARS_MAX_DEPTH = 32
VARS_MAX_VALUES = 10_000


def parse_vars(text: str | None) -> dict[str, Any]:
    """Read ``--dbt-vars`` (a YAML or JSON mapping, as dbt's ``--vars``) within limits:
    string keys, :data:`VARS_MAX_DEPTH` levels, :data:`VARS_MAX_VALUES` values.

    :raises DbtproofError: one short message saying what is wrong and where.
    """
    if not text:
        return {}
    import yaml

    if len(text) > VARS_MAX_CHARS:
        raise DbtproofError(
            f"dbtproof: --dbt-vars is {len(text):,} characters long; at most "
            f"{VARS_MAX_CHARS:,} are read. Put large data in a seed or a file the project reads."
        )
    try:
        value = yaml.safe_load(text)
    except RecursionError:
        raise DbtproofError(_too_deep()) from None
    except yaml.YAMLError as exc:
        raise DbtproofError(f"dbtproof: --dbt-vars is not valid YAML/JSON: {exc}") from None
    if not isinstance(value, dict):
        shown = text if len(text) <= 200 else f"{text[:200]}..."
        raise DbtproofError(
            f'dbtproof: --dbt-vars must be a mapping such as \'{{"key": "value"}}\', got {shown!r}.'
        )
    _check_vars(value)
    return value


def _too_deep() -> str:
    """The message for ``--dbt-vars`` nested deeper than :data:`VARS_MAX_DEPTH`."""
    return (
        f"dbtproof: --dbt-vars nests more than {VARS_MAX_DEPTH} levels deep; pass flatter values."
    )


def _check_vars(value: dict[str, Any]) -> None:
    """Walk *value* as dbt would expand it (aliases too), within the limits."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    seen = 0
    while pending:
        item, path, depth = pending.pop()
        seen += 1
        if seen > VARS_MAX_VALUES:
            raise DbtproofError(
                f"dbtproof: --dbt-vars holds more than {VARS_MAX_VALUES:,} values once its "
                f"YAML aliases (*name) are expanded; pass fewer (or no aliases)."
            )
        if depth > VARS_MAX_DEPTH:
            raise DbtproofError(_too_deep())
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    where = f" (under {path})" if path else ""
                    raise DbtproofError(
                        f"dbtproof: --dbt-vars key {key!r}{where} is a "
                        f'{type(key).__name__}, not a string; quote it ("{key}").'
                    )
                pending.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def check_protected(target: ProfileTarget, settings: SessionSettings, render: Any = None) -> None:
    """Refuse protected targets (names matching ``prod*`` ..., or sharing a protected
    target's database, schema or DuckDB file) unless explicitly allowed."""
    if settings.allow_protected_target:
        return
    targets.check_protected(
        target.profile_name,
        target.target_name,
        target.profiles_path,
        target.profile_outputs or {target.target_name: target.raw_output},
        list(settings.protected_targets),
        render or (lambda value: compat.render_profile_value(value, settings.vars)),
    )


def check_protected_server(
    target: ProfileTarget, settings: SessionSettings, facts: ServerFacts, render: Any
) -> None:
    """Once connected (PostgreSQL): refuse the target when the server that answered is a
    protected target's, with its database (:func:`targets.check_protected_server`)."""
    if settings.allow_protected_target:
        return
    targets.check_protected_server(
        target.profile_name,
        target.target_name,
        target.profiles_path,
        target.profile_outputs or {target.target_name: target.raw_output},
        list(settings.protected_targets),
        render,
        facts,
    )
