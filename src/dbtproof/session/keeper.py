"""A dbt session kept from one pytest run to the next in one process (``dbtproof watch``).

Each round of ``dbtproof watch`` is a ``pytest.main`` call. Without a keeper every round
would start a session of its own: a new namespace, a parse, and, for the saved model's
build item and data tests, a build of its whole upstream chain. The watch loop instead
passes a :class:`SessionKeeper` to every ``pytest.main`` call as a plugin: the first
round's session is kept in it, and later rounds take it over
(:meth:`dbtproof.plugin.state.DbtproofState.start_session`): the same namespace, connections
and run id, a warm parse again, and only what the saved files modify and what sits
downstream of it counted as not built (:meth:`dbtproof.session.session.DbtSession.refresh`).
A round's end leaves the namespace in place; :meth:`SessionKeeper.close`, when the loop
ends (Ctrl-C, SIGTERM), drops it.

The session's files live in a folder of the keeper's own, not under pytest's basetemp:
pytest removes old basetemps as rounds go by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof.project.changes import CalledModels

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession


@dataclass(eq=False)  # a plugin: hashed by identity
class SessionKeeper:
    """Holds the dbt session of a ``dbtproof watch`` loop between its rounds.

    Registered as a plugin of each round's ``pytest.main`` call; it implements no hook.
    """

    #: The session's folder (its DuckDB file, dbt's target and logs), kept across rounds.
    workdir: Path
    #: The session, once a round has started one.
    session: DbtSession | None = None
    #: Its run id: every round reuses it, so the namespace and its name stay the same.
    run_id: str | None = None
    #: Messages of a close that could not drop everything.
    leftovers: list[str] = field(default_factory=list)
    #: The models each test module runs by name, read once per saved version of it.
    called_models: CalledModels = field(default_factory=CalledModels)

    def read_ahead(self) -> None:
        """Between rounds: the kept session reads dbt's partial parse back now, while the
        loop waits for a save, rather than in the next round's parse."""
        if self.session is not None:
            self.session.parsing.read_parse_ahead()

    def close(self) -> list[str]:
        """Drop the kept session's namespace (unless ``--dbt-keep``); what could not be
        dropped, one message each (also kept in :attr:`leftovers`)."""
        session, self.session = self.session, None
        if session is None:
            return []
        try:
            session.teardown.run()
        except Exception as exc:  # noqa: BLE001 - say what is left, never hide the loop's end
            reason = " ".join(str(exc).split())
            self.leftovers.append(
                f"dbtproof: could not drop namespace {session.schema}: {reason}. Run "
                "`dbtproof clean --older-than 0m` once the warehouse is back to remove it."
            )
        return list(self.leftovers)


def keeper_of(config: Any) -> SessionKeeper | None:
    """The :class:`SessionKeeper` registered with pytest *config*, if any."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, SessionKeeper):
            return plugin
    return None
