"""dbt's events that nothing reads are dropped before dbt makes their messages
(:func:`dbtproof._dbt_compat.lean_events`); everything that reads an event still gets it.

dbt_common's own ``EventManager`` (a fresh one, not the process's), its loggers and its
warn-error handling; the only thing watched is how many messages dbt made.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("dbt.adapters.events.types")

import dbt_common.events.event_manager as event_manager  # noqa: E402
from dbt.adapters.events.types import SQLQuery  # noqa: E402
from dbt_common.events.base_types import EventLevel  # noqa: E402
from dbt_common.events.logger import LoggerConfig  # noqa: E402
from dbt_common.events.types import Note  # noqa: E402
from dbt_common.exceptions import EventCompilationError  # noqa: E402

from dbtproof import _dbt_compat as compat  # noqa: E402
from dbtproof._dbt_compat.events import reading  # noqa: E402


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the events dbt made a message of."""
    names: list[str] = []
    make = event_manager.msg_from_base_event

    def counted(event: Any, level: Any = None) -> Any:
        names.append(type(event).__name__)
        return make(event, level=level)

    monkeypatch.setattr(event_manager, "msg_from_base_event", counted)
    yield names


def query() -> Any:
    return SQLQuery(conn_name="model.shop.orders", sql="select 1", node_info={})


def test_an_event_nothing_reads_is_dropped_before_its_message(made: list[str]) -> None:
    manager = event_manager.EventManager()
    finished: list[Any] = []
    every: list[Any] = []
    manager.callbacks = [reading(["NodeFinished"], finished.append), reading([], every.append)]
    with compat.lean_events():
        manager.fire_event(query())
    assert made == [] and finished == []
    assert every == [None]  # a trigger is still called on every event
    manager.fire_event(query())  # dbt's own fire_event again after the block
    assert made == ["SQLQuery"] and finished[0].info.name == "SQLQuery"


def test_what_reads_an_event_gets_dbts_message(made: list[str]) -> None:
    manager = event_manager.EventManager()
    queries: list[Any] = []
    every: list[Any] = []
    manager.callbacks = [reading(["SQLQuery"], queries.append), reading([], every.append)]
    with compat.lean_events():
        manager.fire_event(query())
        manager.fire_event(Note(msg="not read"))
    assert made == ["SQLQuery"]
    assert [m.info.name for m in queries] == ["SQLQuery"] and queries[0].data.sql == "select 1"
    assert every[0] is queries[0] and every[1] is None
    # a logger, or a callback whose reading is not known, reads every event
    unknown: list[Any] = []
    manager.callbacks = [unknown.append]
    out = io.StringIO()
    logged = event_manager.EventManager()
    logged.add_logger(LoggerConfig("test", level=EventLevel.DEBUG, output_stream=out))
    with compat.lean_events():
        manager.fire_event(Note(msg="to a callback"))
        logged.fire_event(Note(msg="to a log"))
    assert [m.info.msg for m in unknown] == ["to a callback"]
    assert "to a log" in out.getvalue()


def test_warnings_still_meet_warn_error(made: list[str]) -> None:
    manager = event_manager.EventManager()
    manager.require_warn_or_error_handling = True
    manager.warn_error = True
    with compat.lean_events(), pytest.raises(EventCompilationError, match="a warning"):
        manager.fire_event(Note(msg="a warning"), level=EventLevel.WARN)
    with compat.lean_events(), pytest.raises(EventCompilationError, match="forced"):
        manager.fire_event(Note(msg="forced"), force_warn_or_error_handling=True)


def test_dbt_commons_before_1_16_get_only_the_arguments_they_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dbt-common before 1.16 (dbt-core 1.8 allows it): fire_event(self, e, level=None)
    passed: list[Any] = []

    def old_fire_event(self: Any, e: Any, level: Any = None) -> None:
        passed.append((type(e).__name__, level))

    monkeypatch.setattr(event_manager.EventManager, "fire_event", old_fire_event)
    manager = event_manager.EventManager()
    manager.add_logger(LoggerConfig("test", level=EventLevel.DEBUG, output_stream=io.StringIO()))
    with compat.lean_events():
        manager.fire_event(query())
        manager.fire_event(Note(msg="a warning"), level=EventLevel.WARN)
    assert passed == [("SQLQuery", None), ("Note", EventLevel.WARN)]
