"""One ``dbt.run_model(...)`` call as one value: :class:`ModelRunRequest`.

The ``dbt`` fixture makes it from the user's arguments, the session adds where fixture
files are looked for, and the engine reads it: the call travels whole, not as a dozen
arguments copied at each step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelRunRequest:
    """What to run (*model*, a name or ``ref(...)``) on which fixtures, and how; see
    :meth:`dbtproof.DbtFixture.run_model` for each field's meaning."""

    model: Any
    given: Mapping[Any, Any] | None = None
    vars: Mapping[str, Any] | None = None
    env: Mapping[str, str] | None = None
    macros: Mapping[str, Any] | None = None
    is_incremental: bool = False
    this: Any = None
    apply: bool = False
    ordered: bool = False
    approx: Any = None
    queries: Mapping[Any, Any] | None = None
    #: Folders fixture files are looked for in, in order.
    search_dirs: tuple[Path, ...] = ()
    #: Given the statement to run (the model's SQL with its fixtures in), returns the one run
    #: instead: ``dbtproof propose`` runs mutants of the model so. Not a fixture argument.
    rewrite: Callable[[str], str] | None = None

    @property
    def label(self) -> str:
        """How the call is named in messages: ``dbt.run_model('customers')``."""
        return f"dbt.run_model({str(self.model)!r})"
