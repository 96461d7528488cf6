"""dbtproof: test dbt projects with pytest.

Importing this package is cheap: it does not import dbt. dbt is imported only
when a dbt project is in play.
"""

from __future__ import annotations

from dbtproof.approx import Approx
from dbtproof.cells import Tolerance
from dbtproof.dbt_fixture import DbtFixture
from dbtproof.engine.keys import ref, source
from dbtproof.errors import (
    AccessDenied,
    DbtError,
    DbtItemOutcome,
    DbtItemSetupError,
    DbtRunError,
)
from dbtproof.plugin_api import register_secret
from dbtproof.rows import OrderedRows, Rows, RowsView
from dbtproof.runner import InvocationResult, NodeResult

__all__ = [
    "AccessDenied",
    "Approx",
    "DbtError",
    "DbtFixture",
    "DbtItemOutcome",
    "DbtItemSetupError",
    "DbtRunError",
    "InvocationResult",
    "NodeResult",
    "OrderedRows",
    "Rows",
    "RowsView",
    "Tolerance",
    "__version__",
    "ref",
    "register_secret",
    "source",
]
__version__ = "0.1.0"
