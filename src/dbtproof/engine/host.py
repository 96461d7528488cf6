"""What the engine needs from whoever runs it: the :class:`EngineHost` protocol.

The engine does not know the session. It is handed a host — in dbtproof the worker's
:class:`~dbtproof.session.session.DbtSession` — that gives the parsed manifest, dbt's runtime
config, the adapter, the place (database, schema) where ``apply=True`` writes and
``this`` lives, and makes the user-defined functions a model calls exist. Anything that
offers these members can run the engine (the engine's tests use the session; a benchmark
could use a lighter host).
"""

from __future__ import annotations

from typing import Any, Protocol


class EngineHost(Protocol):
    """The members the engine reads; nothing else of its host is touched."""

    @property
    def manifest(self) -> Any:
        """dbt's parsed manifest, relocated into the run's namespace (may be re-parsed:
        the engine drops what it cached for another manifest)."""

    @property
    def runtime_config(self) -> Any:
        """dbt's ``RuntimeConfig`` of the project and target."""

    def adapter(self) -> Any:
        """dbt's adapter of the target, connected with the run's profile."""

    @property
    def database(self) -> str | None:
        """The target's database (catalog), as dbt resolved it."""

    @property
    def schema(self) -> str:
        """The run's namespace: where ``apply=True`` creates its tables."""

    def functions_ready(self, node: Any) -> None:
        """Make the user-defined functions (dbt 1.11's ``functions:``) that *node* and the
        nodes upstream of it call exist where their SQL calls them: the engine runs a
        model's SQL, functions included, in the warehouse."""
