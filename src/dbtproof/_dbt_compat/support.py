"""Whether the dbt installed is one dbtproof can run on, read from package metadata.

dbtproof renders and runs models through dbt-core's Python internals (this package), so
it needs dbt-core 1.x, the Python engine. dbt v2 (the Rust engine, "Fusion") is
published as ``dbt-core`` 2.x too, with a Python API that only invokes its commands:
installed, it must stop dbtproof with one message at start, before anything imports
``dbt``. Nothing here imports dbt.
"""

from __future__ import annotations

#: The dbt-core releases dbtproof supports (pyproject.toml declares the same range).
SUPPORTED_DBT_CORE = ">=1.8,<1.13"


def unsupported_dbt() -> str | None:
    """Why the installed dbt-core cannot run dbtproof (one message), or None when it can:
    dbt-core missing, or dbt-core 2.x (the Rust engine) or older than 1.8 installed."""
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import InvalidVersion, Version

    supported = f"dbt-core{SUPPORTED_DBT_CORE}, the Python engine"
    try:
        installed = version("dbt-core")
    except PackageNotFoundError:
        return (
            f"dbtproof: dbt-core is not installed in this environment ({sys.prefix}). "
            f"dbtproof needs {supported}: pip install 'dbt-core{SUPPORTED_DBT_CORE}' "
            "and your adapter (dbt-duckdb, dbt-postgres ...)."
        )
    try:
        parsed = Version(installed)
    except InvalidVersion:
        return None
    if parsed.major >= 2:
        return (
            f"dbtproof: dbt-core {installed} is installed: dbt v2, the Rust engine "
            '("Fusion"), whose Python package only invokes dbt\'s commands. dbtproof '
            "renders and runs models through dbt-core's Python internals, so it supports "
            f"{supported}. Install that in this environment (pip install "
            f"'dbt-core{SUPPORTED_DBT_CORE}' and your adapter), and keep dbt v2 in an "
            "environment of its own."
        )
    if parsed < Version("1.8"):
        return (
            f"dbtproof: dbt-core {installed} is installed; dbtproof supports {supported}. "
            f"Upgrade it: pip install 'dbt-core{SUPPORTED_DBT_CORE}' and your adapter."
        )
    return None
