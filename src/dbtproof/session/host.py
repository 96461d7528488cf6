"""What every part of a session reads of it: the facts of the run's target and parse.

The session's parts (access, placement, derived profile, teardown) each read the session
through a protocol of their own module; the facts they all read are declared once here.
"""

from __future__ import annotations

from typing import Any, Protocol


class RunFacts(Protocol):
    """The run's namespace, its target and dbt's parse, as the session holds them."""

    @property
    def schema(self) -> str:
        """The run's namespace."""

    @property
    def adapter_type(self) -> str:
        """The target's adapter type."""

    @property
    def database(self) -> str | None:
        """The target's database, as dbt resolved it."""

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest."""

    @property
    def runtime_config(self) -> Any:
        """dbt's ``RuntimeConfig``."""
