"""dbtproof: test dbt projects with pytest.

Importing this package is cheap: it does not import dbt. dbt is imported only
when a dbt project is in play.
"""

from __future__ import annotations

from dbtproof.compare.approx import Approx
from dbtproof.compare.cells import Tolerance
from dbtproof.compare.rows import OrderedRows, Rows, RowsView
from dbtproof.engine.keys import ref, source
from dbtproof.errors import (
    AccessDenied,
    DbtItemOutcome,
    DbtItemSetupError,
    DbtproofError,
    DbtRunError,
)
from dbtproof.plugin.api import register_secret
from dbtproof.plugin.dbt_fixture import DbtFixture
from dbtproof.session.runner import InvocationResult, NodeResult

__all__ = [
    "AccessDenied",
    "Approx",
    "DbtproofError",
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


def __getattr__(name: str) -> object:
    """The base error's deprecated old name (:mod:`dbtproof.errors` warns when it is used)."""
    if name == "DbtError":
        from dbtproof import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
