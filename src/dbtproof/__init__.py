"""dbtproof: test dbt projects with pytest.

Importing this package is cheap: it does not import dbt. dbt is imported only
when a dbt project is in play.
"""

from __future__ import annotations

from dbtproof.dbt_fixture import DbtFixture
from dbtproof.engine.keys import ref, source
from dbtproof.errors import AccessDenied, DbtError, DbtRunError
from dbtproof.rows import Rows

__all__ = [
    "AccessDenied",
    "DbtError",
    "DbtFixture",
    "DbtRunError",
    "Rows",
    "__version__",
    "ref",
    "source",
]
__version__ = "0.1.0"
