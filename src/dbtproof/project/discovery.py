"""Find the dbt project and the profile/target exactly as dbt would.

Nothing here imports dbt at module level: finding the project must stay cheap,
because it runs for every pytest session. Values written with Jinja
(``{{ env_var(...) }}``) are rendered by dbt itself, through
:mod:`dbtproof._dbt_compat`, and only when they are needed.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from dbtproof.errors import ProjectConfigError, ProjectNotFoundError
from dbtproof.project.targets import PLAIN_KEYS, apply_namespace, is_template

PROJECT_FILE = "dbt_project.yml"
PROFILES_FILE = "profiles.yml"

#: ``env_var('NAME'`` or ``env_var("NAME"`` inside a Jinja expression.
_ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")
#: The same, and what follows the name: ``,`` when a default is given.
_ENV_VAR_USE = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]\s*([,)]?)""")


def find_project_dir(start: Path, explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the folder holding ``dbt_project.yml``.

    With *explicit* (``--dbt-project-dir`` / ini ``dbt_project_dir``) that folder must
    hold a ``dbt_project.yml``, else :class:`ProjectNotFoundError` is raised. Without it,
    the nearest ``dbt_project.yml`` at or above *start* (pytest's rootdir) is used, and
    ``None`` means there is no dbt project in play.
    """
    if explicit is not None:
        path = Path(explicit).expanduser().resolve()
        if not (path / PROJECT_FILE).is_file():
            raise ProjectNotFoundError(
                f"dbtproof: no {PROJECT_FILE} in {path} (given by --dbt-project-dir or the "
                f"dbt_project_dir ini key). Point it at the folder that holds your dbt project."
            )
        return path
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def find_project_for_invocation(
    invocation_dir: Path,
    args: Sequence[str],
    explicit: str | os.PathLike[str] | None = None,
    fallback: Path | None = None,
) -> Path | None:
    """The dbt project of a pytest invocation: *explicit*, else the nearest
    ``dbt_project.yml`` at or above the first of the paths given (*args*, pytest's
    file/dir arguments, relative to *invocation_dir*) that has one, else at or above
    *invocation_dir*, else at or above *fallback* (pytest's rootdir).

    pytest's rootdir is not the start: an option value written after a space
    (``--dbt-profiles-dir /some/dir``) is taken for a path when pytest guesses the
    rootdir, which can move it out of the project.
    """
    if explicit is not None:
        return find_project_dir(invocation_dir, explicit)
    for arg in args:
        if not arg or arg.startswith("-"):
            continue
        path = Path(arg.split("::", 1)[0]).expanduser()
        path = path if path.is_absolute() else invocation_dir / path
        if not path.exists():
            continue
        found = find_project_dir(path if path.is_dir() else path.parent)
        if found is not None:
            return found
    found = find_project_dir(invocation_dir)
    if found is None and fallback is not None:
        found = find_project_dir(fallback)
    return found


@dataclass(frozen=True)
class ProfilesDirStep:
    """One step of dbt's search for ``profiles.yml``: where it looked and what it found."""

    #: What names the folder: ``--profiles-dir``, ``DBT_PROFILES_DIR``, ... .
    source: str
    #: The folder, None when the option or variable is not given.
    folder: Path | None
    #: Whether the folder holds a ``profiles.yml``.
    has_profiles: bool
    #: Whether this step won (every later step is not looked at).
    chosen: bool


def profiles_dir_search(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    explicit_source: str = "--profiles-dir",
) -> list[ProfilesDirStep]:
    """Every step of dbt's search for the folder of ``profiles.yml``, the winner marked.

    ``--profiles-dir`` (*explicit*, named *explicit_source* in the steps), then
    ``DBT_ENGINE_PROFILES_DIR`` (dbt 1.11+), then ``DBT_PROFILES_DIR`` — each wins when
    given, whether or not it holds the file —, then the current working directory when
    it holds a ``profiles.yml``, then ``~/.dbt``.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    candidates: list[tuple[str, Path | None, bool]] = [
        (source, Path(value).expanduser().resolve() if value else None, bool(value))
        for source, value in (
            (explicit_source, explicit),
            ("DBT_ENGINE_PROFILES_DIR (dbt 1.11+)", environ.get("DBT_ENGINE_PROFILES_DIR")),
            ("DBT_PROFILES_DIR", environ.get("DBT_PROFILES_DIR")),
        )
    ]
    candidates.append(("the current directory", cwd.resolve(), (cwd / PROFILES_FILE).is_file()))
    candidates.append(("~/.dbt", (Path.home() / ".dbt").resolve(), True))
    steps: list[ProfilesDirStep] = []
    chosen = False
    for source, folder, wins in candidates:
        has = folder is not None and (folder / PROFILES_FILE).is_file()
        steps.append(ProfilesDirStep(source, folder, has, wins and not chosen))
        chosen = chosen or wins
    return steps


def find_profiles_dir(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """Return the folder of the ``profiles.yml`` dbt would use, in dbt's own order
    (:func:`profiles_dir_search`).

    ``--dbt-profiles-dir``, then ``DBT_ENGINE_PROFILES_DIR`` (dbt 1.11+), then
    ``DBT_PROFILES_DIR``, then the current working directory when it holds a
    ``profiles.yml``, then ``~/.dbt``.
    """
    for step in profiles_dir_search(explicit, environ, cwd):
        if step.chosen and step.folder is not None:
            return step.folder
    raise AssertionError("~/.dbt is always chosen last")  # pragma: no cover


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectConfigError(f"dbtproof: cannot read {what} {path}: {exc.strerror}.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProjectConfigError(
            f"dbtproof: {what} is not valid YAML at {where}: {problem}. Fix the file and rerun."
        ) from exc


#: ``dbt_project.yml``'s keys of the folders dbt installs packages, writes artifacts and
#: writes logs into, with dbt's defaults.
_DBT_OWN_FOLDERS = (
    ("packages-install-path", "dbt_packages"),
    ("target-path", "target"),
    ("log-path", "logs"),
)


def dbt_own_folders(root: Path) -> tuple[Path, ...]:
    """The project's packages' install path, target path and log path, as its
    ``dbt_project.yml`` sets them (dbt's defaults where it does not): no test module of the
    project's lives there, and a local package installed as ``dbt_packages/<pkg> -> ../..``
    makes a loop of the first.

    A value dbt renders (``{{ env_var(...) }}``) is left out: which folder it names is not
    known before dbt runs. A ``dbt_project.yml`` that cannot be read gives none (the
    session's start reports it).
    """
    try:
        data = _read_yaml(root / PROJECT_FILE, PROJECT_FILE)
    except ProjectConfigError:
        return ()
    if not isinstance(data, dict):
        return ()
    folders = []
    for key, default in _DBT_OWN_FOLDERS:
        value = data.get(key, default)
        if isinstance(value, str) and value and not is_template(value):
            folders.append(root / value)
    return tuple(folders)


@dataclass(frozen=True)
class DbtProject:
    """The parts of ``dbt_project.yml`` dbtproof needs before dbt is loaded."""

    #: Folder that holds ``dbt_project.yml``.
    root: Path
    #: ``name:`` of the project.
    name: str
    #: ``profile:`` of the project (possibly still a Jinja expression).
    profile_name: str

    @classmethod
    def load(cls, root: Path) -> DbtProject:
        """Read ``dbt_project.yml`` in *root*, with clear errors for what dbtproof needs."""
        path = root / PROJECT_FILE
        data = _read_yaml(path, PROJECT_FILE)
        if not isinstance(data, dict):
            raise ProjectConfigError(
                f"dbtproof: {path} does not hold a YAML mapping. A dbt project file needs at "
                f"least `name:` and `profile:` keys."
            )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ProjectConfigError(f"dbtproof: {path} has no `name:`. Add the project's name.")
        profile = data.get("profile")
        if not isinstance(profile, str) or not profile:
            raise ProjectConfigError(
                f"dbtproof: {path} has no `profile:`. Add the name of the profiles.yml entry "
                f"this project connects with."
            )
        return cls(root=root, name=name, profile_name=profile)


@dataclass(repr=False)
class ProfileTarget:
    """One target of one profile, as written in ``profiles.yml`` (not yet rendered).

    Its repr names the profile, target, adapter and file, never a setting: the settings
    may hold credentials (``pytest --showlocals`` prints the repr of every local).
    """

    #: Path of the ``profiles.yml`` it comes from.
    profiles_path: Path
    #: Profile name.
    profile_name: str
    #: Target name.
    target_name: str
    #: The target's settings, raw (Jinja still unrendered).
    raw_output: dict[str, Any]
    #: The top-level ``config:`` block of profiles.yml, if any.
    raw_config: dict[str, Any] | None = None
    #: Names of all the targets of the profile.
    all_targets: tuple[str, ...] = field(default_factory=tuple)
    #: Every target of the profile, raw (to compare with protected targets).
    profile_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"ProfileTarget(profile={self.profile_name!r}, target={self.target_name!r}, "
            f"type={self.adapter_type!r}, profiles_path={str(self.profiles_path)!r})"
        )

    __str__ = __repr__

    @property
    def adapter_type(self) -> str:
        """The adapter type (``duckdb``, ``postgres``, ...) named by the target."""
        return str(self.raw_output.get("type", "?"))

    @property
    def profiles_sha256(self) -> str:
        """sha256 of the ``profiles.yml`` file, to identify it in reports."""
        return hashlib.sha256(self.profiles_path.read_bytes()).hexdigest()

    def env_var_names(self) -> list[str]:
        """Names of the environment variables this target reads through ``env_var()``."""
        return env_var_names_in(self.raw_output)

    def env_var_uses(self) -> list[tuple[str, list[str], bool]]:
        """``(name, the settings that read it, whether every read has a default)`` for each
        variable the target reads."""
        uses: dict[str, tuple[list[str], bool]] = {}
        for key, value in self.raw_output.items():
            for text in _strings(value):
                for match in _ENV_VAR_USE.finditer(text):
                    keys, defaulted = uses.get(match.group(1), ([], True))
                    if key not in keys:
                        keys.append(str(key))
                    uses[match.group(1)] = (keys, defaulted and match.group(2) == ",")
        return [(name, keys, defaulted) for name, (keys, defaulted) in uses.items()]

    def env_var_report(self, environ: Mapping[str, str] | None = None) -> str:
        """``NAME=set, OTHER=unset`` for the variables the target reads; never their values."""
        environ = os.environ if environ is None else environ
        names = self.env_var_names()
        if not names:
            return "(the target reads no environment variables)"
        return ", ".join(f"{n}={'set' if n in environ else 'unset'}" for n in names)


def env_var_names_in(value: Any) -> list[str]:
    """Names of the environment variables a setting (nested or not) reads through
    ``env_var()``, in order."""
    found: list[str] = []
    for text in _strings(value):
        for name in _ENV_VAR_CALL.findall(text):
            if name not in found:
                found.append(name)
    return found


def minted_settings(target: ProfileTarget, variables: Sequence[str]) -> dict[str, Any]:
    """The settings of *target*, as written, that read one of *variables* (the minted ones)."""
    return {
        key: value
        for key, value in target.raw_output.items()
        if set(env_var_names_in(value)) & set(variables)
    }


def _strings(value: Any) -> list[str]:
    """Every string inside a YAML value, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def load_profile_target(
    profiles_dir: Path,
    profile_name: str,
    target_name: str | None,
    render: Any = None,
) -> ProfileTarget:
    """Read *profile_name* from ``profiles_dir/profiles.yml`` and pick the target.

    *target_name* is ``--dbt-target``/``dbt_target``; without it the profile's ``target:``
    is used, rendered through *render* (a callable that renders a Jinja string with dbt's
    profile context) when it is a template.
    """
    path = profiles_dir / PROFILES_FILE
    if not path.is_file():
        raise ProjectConfigError(
            f"dbtproof: no {PROFILES_FILE} in {profiles_dir}. dbt looks in --profiles-dir, "
            f"DBT_PROFILES_DIR, the current directory and ~/.dbt; pass --dbt-profiles-dir or set "
            f"DBT_PROFILES_DIR to the folder that holds it."
        )
    data = _read_yaml(path, PROFILES_FILE) or {}
    if not isinstance(data, dict):
        raise ProjectConfigError(f"dbtproof: {path} does not hold a YAML mapping of profiles.")
    profile = data.get(profile_name)
    if not isinstance(profile, dict):
        known = ", ".join(sorted(k for k in data if k != "config")) or "none"
        raise ProjectConfigError(
            f"dbtproof: profile '{profile_name}' (named by dbt_project.yml) is not in {path}. "
            f"Profiles there: {known}."
        )
    outputs = profile.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        raise ProjectConfigError(
            f"dbtproof: profile '{profile_name}' in {path} has no `outputs:`. "
            f"Add at least one target."
        )
    chosen = target_name or profile.get("target")
    if isinstance(chosen, str) and "{{" in chosen and render is not None:
        chosen = render(chosen)
    if not chosen:
        raise ProjectConfigError(
            f"dbtproof: profile '{profile_name}' in {path} has no default `target:`. Add one, or "
            f"pass --dbt-target."
        )
    chosen = str(chosen)
    if chosen not in outputs or not isinstance(outputs[chosen], dict):
        raise ProjectConfigError(
            f"dbtproof: target '{chosen}' is not in profile '{profile_name}' ({path}). Targets "
            f"there: {', '.join(sorted(outputs))}."
        )
    config = data.get("config") if isinstance(data.get("config"), dict) else None
    return ProfileTarget(
        profiles_path=path,
        profile_name=profile_name,
        target_name=chosen,
        raw_output=dict(outputs[chosen]),
        raw_config=config,
        all_targets=tuple(sorted(outputs)),
        profile_outputs={k: dict(v) for k, v in outputs.items() if isinstance(v, dict)},
    )


#: Prefix of the variables that carry secrets to dbt; they live in this process's
#: environment only.
SECRET_VARIABLE_PREFIX = "DBTPROOF_SECRET_"


def _through_environment(
    value: Any, environ: MutableMapping[str, str], names: Iterator[str]
) -> Any:
    """*value* with every literal scalar replaced by an ``env_var()`` reference to a new
    process-only variable (the next of *names*) holding it (templates are kept: dbt
    renders them itself)."""
    if isinstance(value, dict):
        return {key: _through_environment(item, environ, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_through_environment(item, environ, names) for item in value]
    if value is None or is_template(value):
        return value
    name = next(names)
    if isinstance(value, bool):
        environ[name] = str(value)
        return f"{{{{ env_var('{name}') | as_bool }}}}"
    if isinstance(value, (int, float)):
        environ[name] = repr(value)
        return f"{{{{ env_var('{name}') | as_number }}}}"
    environ[name] = value.isoformat() if isinstance(value, (date, datetime)) else str(value)
    return f"{{{{ env_var('{name}') }}}}"


def hide_secrets(
    output: Mapping[str, Any],
    environ: MutableMapping[str, str] | None = None,
    scope: str = "",
) -> dict[str, Any]:
    """A target's settings with no literal value that is or may be secret.

    Values written as Jinja (``{{ env_var('PG_PASSWORD') }}``) stay as written: dbt renders
    them in-process. Literal values of keys known not to be secret (``type``, ``host``,
    ``schema`` ... see :data:`dbtproof.project.targets.PLAIN_KEYS`) stay readable; every other
    literal (passwords, tokens, keys, DuckDB ``settings``/``secrets``/``attach`` ...) moves
    into a ``DBTPROOF_SECRET_<scope>_<n>`` variable set in *environ* (this process's
    environment), and the settings refer to it as ``{{ env_var('DBTPROOF_SECRET_...') }}``.
    Each *scope* (one per derived profile) has names of its own, so two sessions of one
    process never overwrite each other's variables.
    """
    environ = os.environ if environ is None else environ
    prefix = f"{SECRET_VARIABLE_PREFIX}{scope}_" if scope else SECRET_VARIABLE_PREFIX
    names = (f"{prefix}{n}" for n in itertools.count(1))
    hidden: dict[str, Any] = {}
    for key, value in output.items():
        plain = key in PLAIN_KEYS and not isinstance(value, (dict, list))
        hidden[key] = value if plain else _through_environment(value, environ, names)
    return hidden


def write_derived_profiles(
    target: ProfileTarget, overrides: Mapping[str, Any], folder: Path
) -> Path:
    """Write a ``profiles.yml`` holding only *target*, with *overrides* applied, into *folder*.

    The overrides (the run's schema, the DuckDB file) are written under the keys the
    adapter reads (:func:`dbtproof.project.targets.apply_namespace`). The file holds no secret
    value (:func:`hide_secrets`): it stays on disk after ``--dbt-keep``, a SIGKILL, and in
    the basetemps pytest retains. It is readable by its owner only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scope = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8].upper()
    output = hide_secrets(
        apply_namespace(target.adapter_type, target.raw_output, overrides), scope=scope
    )
    document: dict[str, Any] = {
        target.profile_name: {"target": target.target_name, "outputs": {target.target_name: output}}
    }
    if target.raw_config:
        document["config"] = target.raw_config
    path = folder / PROFILES_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(document, handle, sort_keys=False)
    return folder
