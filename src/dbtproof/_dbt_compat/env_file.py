"""The ``.env`` file dbt reads into the environment (dbt-core 1.12 and later).

dbt-core 1.12 calls ``load_dotenv(find_dotenv(usecwd=True), override=False)`` (python-dotenv)
when ``dbt.cli.main`` is imported and at each ``dbtRunner.invoke``: the first ``.env`` at or
above the working directory is read into ``os.environ``, a variable already set keeping
its value. It is a place secrets come from (a ``DBT_ENV_SECRET_*`` variable, a password a
profile reads with ``env_var``), so dbtproof reads it the same way, at start, before it
resolves the profile: it then sees the environment dbt will see, and its secret registry
knows those values. Older dbt reads no ``.env``: nothing here does either.
"""

from __future__ import annotations

from pathlib import Path


def dbt_reads_env_file() -> bool:
    """Whether the installed dbt reads a ``.env`` file (dbt-core 1.12 and later)."""
    from importlib.metadata import version
    from importlib.util import find_spec

    from packaging.version import Version

    return Version(version("dbt-core")) >= Version("1.12") and find_spec("dotenv") is not None


def env_file() -> Path | None:
    """The ``.env`` file dbt would read from the working directory now, or None (none
    found, or a dbt that reads none)."""
    if not dbt_reads_env_file():
        return None
    from dotenv import find_dotenv

    found = find_dotenv(usecwd=True)
    return Path(found) if found else None


def env_file_values(path: Path) -> dict[str, str]:
    """The variables *path* sets, as python-dotenv reads them (a name without a value is
    left out: it sets nothing)."""
    from dotenv import dotenv_values

    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def load_env_file() -> tuple[Path, dict[str, str]] | None:
    """Read dbt's ``.env`` file into ``os.environ`` as dbt does (a variable already set
    keeps its value). Returns the file and what it sets, or None when dbt reads none."""
    path = env_file()
    if path is None:
        return None
    from dotenv import load_dotenv

    load_dotenv(path, override=False)
    return path, env_file_values(path)
