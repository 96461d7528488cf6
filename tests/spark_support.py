"""Apache Spark for the suite: dbt-spark's ``method: session`` (a local Spark in the test
process: PySpark from the package index, Java 17 from Debian's packages).

One JVM per pytest process: a process's Spark is started once and every in-process run
after it (pytester's, the dbt CLI's ``dbtRunner``) uses it. :func:`require_spark` imports
PySpark (and dbt) before any test runs, so that pytester, which drops the modules a run
imported when the run ends, never makes a second run start a second JVM (nor import dbt's
pydantic models twice, which pydantic refuses).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_spark() -> None:
    """Skip the calling module without PySpark or Java; fail instead where CI requires
    Spark (``spark`` in ``DBTPROOF_REQUIRE_ADAPTERS``, set by scripts/test)."""
    required = "spark" in os.environ.get("DBTPROOF_REQUIRE_ADAPTERS", "").split()
    missing = None
    try:
        import dbt.adapters.spark.session  # noqa: F401 - kept in sys.modules, see above
        import dbt.cli.main  # noqa: F401 - dbt's pydantic models register once per process
        import numpy  # noqa: F401 - PySpark's rows import it; a C extension loads once
        import pyspark.sql  # noqa: F401
    except ImportError as exc:
        missing = f"dbt-spark[session] is not installed ({exc})"
    if missing is None and shutil.which("java") is None:
        missing = "no java on PATH (Spark needs Java 17)"
    if missing is None:
        return
    if required:
        pytest.fail(f"Spark is required here (DBTPROOF_REQUIRE_ADAPTERS): {missing}", False)
    pytest.skip(missing, allow_module_level=True)


def leftover_databases(root: Path) -> list[str]:
    """The databases left in every local Spark warehouse under *root* (a basetemp):
    Spark keeps a database's tables in ``<warehouse>/<database>.db``."""
    return sorted(
        f"{path.parent}:{path.name}" for path in root.rglob("spark/warehouse/*.db") if path.is_dir()
    )


def stray_files(folder: Path) -> list[str]:
    """What a Spark run would leave in its working folder when not told where to write."""
    return sorted(
        name
        for name in ("spark-warehouse", "metastore_db", "derby.log")
        if (folder / name).exists()
    )


def process_databases(prefix: str) -> list[str]:
    """The databases named ``<prefix>...`` in this process's Spark (started by an in-process
    run before: its metastore, wherever the first run of the process put it)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    return sorted(
        row[0] for row in spark.sql("show databases").collect() if row[0].startswith(prefix)
    )
