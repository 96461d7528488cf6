"""The protected-target patterns a pytest run in the project would use.

``dbt_protected_targets`` is a pytest ini key: a command that is not a pytest run
(``dbtproof mcp``) reads it from the ini file pytest would pick for the project (pytest's
own lookup: ``pytest.ini``, ``pyproject.toml``, ``tox.ini``, ``setup.cfg``... from the
project folder up), so it refuses exactly the targets a pytest run there refuses. No ini
file, or no such key: the default patterns, as pytest's.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from dbtproof.errors import ProjectConfigError
from dbtproof.project.targets import DEFAULT_PROTECTED_PATTERNS

#: The ini key pytest's plugin reads the patterns from.
INI_KEY = "dbt_protected_targets"


def protected_patterns(project_dir: Path) -> list[str]:
    """The patterns of ``dbt_protected_targets`` for a pytest run in *project_dir*."""
    from _pytest.config.findpaths import locate_config

    try:
        found = locate_config(project_dir, [project_dir])
    except Exception as exc:  # pytest's own message for a broken ini file
        raise ProjectConfigError(
            f"dbtproof: cannot read the pytest ini file of {project_dir} for {INI_KEY}: {exc}"
        ) from None
    raw = found[2].get(INI_KEY)
    value = getattr(raw, "value", raw)
    if value is None:
        return list(DEFAULT_PROTECTED_PATTERNS)
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]
