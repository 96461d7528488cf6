"""What ``dbtproof doctor`` finds before it connects: the project, which ``profiles.yml``
won and why, the target and adapter, the variables the target reads, and what the
credential providers would mint.

Every step reuses what a test run does (:func:`dbtproof.project.discovery.profiles_dir_search`,
:func:`dbtproof.project.discovery.load_profile_target`,
:func:`dbtproof.credentials.load_credentials`), so doctor reports what ``pytest`` would do,
not a second opinion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dbtproof.cli.doctor.report import Report, one_line
from dbtproof.credentials import SECRET_PREFIX, CredentialSet, load_credentials
from dbtproof.credentials.profile import bind_to_target, unset_secret_hint
from dbtproof.errors import DbtproofError
from dbtproof.project.discovery import (
    PROFILES_FILE,
    DbtProject,
    ProfileTarget,
    find_project_dir,
    load_profile_target,
    profiles_dir_search,
)
from dbtproof.project.targets import (
    DEFAULT_PROTECTED_PATTERNS,
    PLAIN_KEYS,
    check_protected,
    protected_pattern,
)
from dbtproof.safety.redaction import public_secrets


def _render(cli_vars: dict[str, Any]) -> Callable[[str], Any]:
    """Render a profile value as dbt does; dbt's error becomes a :class:`DbtproofError`."""
    from dbtproof import _dbt_compat as compat

    def render(value: str) -> Any:
        try:
            return compat.render_profile_value(value, cli_vars)
        except Exception as exc:  # dbt's rendering errors, whatever their class
            raise DbtproofError(
                f"cannot render {value!r} from profiles.yml: {one_line(exc)}"
            ) from None

    return render


def find_project(report: Report, project_dir: str | None) -> DbtProject | None:
    """The dbt project (``--project-dir``, else the nearest ``dbt_project.yml``)."""
    try:
        root = find_project_dir(Path.cwd(), project_dir)
        if root is None:
            report.add(
                "project",
                "error",
                f"no dbt_project.yml at or above {Path.cwd()}: run from the dbt project, or "
                f"pass --project-dir",
            )
            return None
        project = DbtProject.load(root)
    except DbtproofError as exc:
        report.add("project", "error", str(exc))
        return None
    report.add(
        "project", "ok", f"{project.name} ({project.root})", name=project.name, root=project.root
    )
    return project


def read_env_file(report: Report) -> dict[str, str]:
    """dbt-core 1.12's ``.env`` file (the first at or above the working directory), read into
    the environment as dbt reads it — before the profile is rendered — and reported: the
    variables it sets (never a value), those the shell's value wins over, a warning when it
    holds secrets or names a protected target (``DBT_TARGET``). Returns what it set (the
    variables the environment did not have)."""
    from dbtproof import _dbt_compat as compat

    path = compat.env_file()
    if path is None:
        if compat.dbt_reads_env_file():
            report.add("environment", "info", f"no .env file at or above {Path.cwd()}")
        return {}
    values = compat.env_file_values(path)
    kept = sorted(name for name in values if name in os.environ)
    compat.load_env_file()
    names = ", ".join(sorted(values)) or "nothing"
    what = f"{path}: dbt reads it into the environment; it sets {names}"
    if kept:
        what += f" ({', '.join(kept)} already set: the environment's value is kept)"
    report.add("environment", "info", what, env_file=path, sets=sorted(values), kept=kept)
    secrets = sorted(name for name in values if name.startswith(SECRET_PREFIX))
    for name in secrets:
        report.secrets.add(values[name], f"{name} in {path}")
    if secrets:
        report.add(
            "environment",
            "warning",
            f"{path} holds secrets ({', '.join(secrets)}): keep it out of version control "
            "(dbtproof masks them in its output)",
            env_file=path,
            secrets=secrets,
        )
    target = values.get("DBT_TARGET")
    matched = protected_pattern(target, DEFAULT_PROTECTED_PATTERNS) if target else None
    if target and "DBT_TARGET" not in kept:
        level = "warning" if matched else "info"
        report.add(
            "environment",
            level,
            f"{path} sets DBT_TARGET={target}"
            + (f", a protected target (matches {matched!r})" if matched else "")
            + ": dbt run by hand uses it; dbtproof ignores dbt's flag variables and tests "
            "the target --target or the profile's `target:` names",
            env_file=path,
        )
    return {name: value for name, value in values.items() if name not in kept}


def find_profiles(report: Report, profiles_dir: str | None) -> Path:
    """Each step of dbt's search for ``profiles.yml``, with the path checked at each."""
    winner: Path | None = None
    for step in profiles_dir_search(profiles_dir):
        data = {
            "source": step.source,
            "folder": step.folder,
            "has_profiles_yml": step.has_profiles,
            "chosen": step.chosen,
        }
        if step.folder is None:
            missing = "not given" if step.source.startswith("-") else "unset"
            report.add("profiles", "info", f"{step.source}: {missing}", **data)
            continue
        found = "holds profiles.yml" if step.has_profiles else "no profiles.yml there"
        if step.chosen:
            winner = step.folder
            status = "ok" if step.has_profiles else "error"
            report.add(
                "profiles", status, f"{step.source}: {step.folder} ({found}) <- used", **data
            )
        else:
            later = " (not looked at: an earlier step won)" if winner is not None else ""
            report.add("profiles", "info", f"{step.source}: {step.folder} ({found}){later}", **data)
    assert winner is not None  # ~/.dbt always wins last
    return winner


def load_target(
    report: Report,
    project: DbtProject,
    profiles_dir: Path,
    target: str | None,
    cli_vars: dict[str, Any],
    allow_protected: bool = False,
) -> ProfileTarget | None:
    """The profile target, how it was chosen, and its adapter; a protected target is an
    error unless *allow_protected* (then a warning)."""
    if not (profiles_dir / PROFILES_FILE).is_file():
        return None
    try:
        loaded = load_profile_target(profiles_dir, project.profile_name, target, _render(cli_vars))
    except DbtproofError as exc:
        report.add("target", "error", str(exc))
        return None
    chosen_by = "--target" if target else "the profile's `target:`"
    report.add(
        "target",
        "ok",
        f"profile '{loaded.profile_name}', target '{loaded.target_name}' (chosen by {chosen_by}; "
        f"targets: {', '.join(loaded.all_targets)})",
        profile=loaded.profile_name,
        target=loaded.target_name,
        chosen_by=chosen_by,
        profiles_yml=loaded.profiles_path,
    )
    _adapter(report, loaded.adapter_type)
    check_public_secrets(report, loaded, cli_vars)
    try:
        check_protected(
            loaded.profile_name,
            loaded.target_name,
            loaded.profiles_path,
            loaded.profile_outputs,
            list(DEFAULT_PROTECTED_PATTERNS),
            _render(cli_vars),
        )
    except DbtproofError as exc:
        if not allow_protected:
            report.add("target", "error", str(exc))
            return None
        report.add("target", "warning", f"{exc} (allowed by --allow-protected-target)")
    return loaded


def check_public_secrets(report: Report, target: ProfileTarget, cli_vars: dict[str, Any]) -> None:
    """A warning for each password (token, key) of the target that equals a setting that is
    no secret (its user, the adapter type, the database...) or a common word: it is guessed,
    and output masks it only where it shows it as a password."""
    render = _render(cli_vars)
    rendered: dict[str, Any] = {}
    for key, value in target.raw_output.items():
        try:
            rendered[key] = render(value) if isinstance(value, str) else value
        except DbtproofError:  # an unset variable: check_environment says so
            continue
    # the raw target first: a plain setting it reads from a DBT_ENV_SECRET_ variable stays masked
    report.secrets.add_target(target.raw_output, f"target {target.target_name}")
    report.secrets.add_public(rendered)
    for name, reason in public_secrets(rendered):
        report.add(
            "target",
            "warning",
            f"the {name} of target '{target.target_name}' {reason}: anyone reading the "
            f"profile or a run's output can guess it, and dbtproof masks it only where output "
            f"shows it as a {name} (`{name}=...`, a URL's password), not where it is that "
            f"other value. Give the identity a {name} of its own",
            setting=name,
            reason=reason,
        )


def _adapter(report: Report, adapter_type: str) -> None:
    from dbtproof import _dbt_compat as compat

    if not compat.adapter_installed(adapter_type):
        report.add(
            "target",
            "error",
            f"adapter {adapter_type}: dbt-{adapter_type} is not installed: pip install "
            f"dbt-{adapter_type}",
            adapter=adapter_type,
            installed=False,
        )
        return
    try:
        package = f"dbt-{adapter_type} {version(f'dbt-{adapter_type}')}"
    except PackageNotFoundError:
        package = f"dbt-{adapter_type}"
    report.add(
        "target",
        "ok",
        f"adapter {adapter_type} ({package}, dbt-core {compat.dbt_version()})",
        adapter=adapter_type,
        installed=True,
    )


def check_environment(
    report: Report,
    target: ProfileTarget,
    minted: Sequence[str],
    environ: Mapping[str, str] | None = None,
    from_env_file: Collection[str] = (),
) -> None:
    """Each variable the target reads: set or unset (*from_env_file*: those the ``.env``
    file set), secret or not (never its value)."""
    environ = os.environ if environ is None else environ
    uses = target.env_var_uses()
    if not uses:
        report.add("environment", "info", "the target reads no environment variables")
    for name, keys, defaulted in uses:
        secret = name.startswith(SECRET_PREFIX) or any(key not in PLAIN_KEYS for key in keys)
        is_set = name in environ
        data = {"variable": name, "set": is_set, "secret": secret, "read_by": keys}
        what = f"{name}: read by {', '.join(keys)}, {'secret' if secret else 'not secret'}"
        if secret and not name.startswith(SECRET_PREFIX):
            what += f" (dbt scrubs only {SECRET_PREFIX}* variables from its logs)"
        if name in minted:
            report.add("environment", "ok", f"{what}, minted by a credential provider", **data)
        elif is_set:
            where = " by the .env file" if name in from_env_file else ""
            report.add("environment", "ok", f"{what}, set{where}", **data)
            if secret:
                report.secrets.add(environ[name], f"variable {name}")
        elif defaulted:
            report.add("environment", "info", f"{what}, unset (its default is used)", **data)
        else:
            hint = (
                " or mint it with --credentials PROVIDER" if name.startswith(SECRET_PREFIX) else ""
            )
            report.add(
                "environment", "error", f"{what}, unset and without default: set it{hint}", **data
            )


def check_credentials(
    report: Report,
    target: ProfileTarget,
    specs: Sequence[str],
    allow_untrusted: bool,
    cli_vars: dict[str, Any],
) -> CredentialSet | None:
    """Which providers would run, and what each would mint now (issuer, audience, subject,
    expiry — never the token)."""
    try:
        credentials = load_credentials(specs, allow_untrusted, minted=report.secrets.add)
        bind_to_target(credentials, target, _render(cli_vars))
    except DbtproofError as exc:
        report.add("credentials", "error", str(exc))
        return None
    if not credentials:
        hint = unset_secret_hint(target, credentials)
        report.add("credentials", "info", "no credential provider" + (f": {hint}" if hint else ""))
        return credentials
    for described in credentials.describe():
        name, variable = described.pop("provider"), described.pop("variable")
        error = described.pop("error", None)
        if error is not None:
            report.add("credentials", "error", error, provider=name, variable=variable)
            continue
        facts = ", ".join(f"{key} {value}" for key, value in described.items())
        report.add(
            "credentials",
            "ok",
            f"{name} mints {variable}: {facts}",
            provider=name,
            variable=variable,
            **described,
        )
    return credentials
