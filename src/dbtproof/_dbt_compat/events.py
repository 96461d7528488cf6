"""dbt's events that nothing reads, dropped before dbt makes their messages.

dbt fires an event for each statement, connection, cache change and node (a dozen or more
per model built). dbt_common's ``EventManager.fire_event`` first turns each into its
protobuf message (``msg_from_base_event``: the event's info parsed into the message by
``ParseDict``, a timestamp, the thread's name), then asks its loggers and callbacks whether
they want it. In dbtproof's invocations there is no logger (``--log-level none``, and no
file log without ``--dbt-keep``), and each of dbtproof's callbacks says which events it
reads (:data:`READS`): on PostgreSQL the messages no one read were about a sixth of the
CPU time of a ``dbt build`` of the models.

:func:`lean_events` replaces ``fire_event`` for the duration of one invocation (under the
runner's lock) by one that drops an event when nothing would read it: no logger, every
callback's reading known and none reading that event, no warn-or-error handling asked for
(``--warn-error``, ``--warn-error-options``: a warning still goes through dbt's own
``fire_event``, which raises or silences it). Everything else goes through dbt's own
``fire_event``, unchanged. Callbacks that read no event (:data:`READS` empty: a trigger,
such as the query comment's) are still called for every event, with None.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

#: The attribute of a callback given to dbt's runner that names the events (by class name)
#: it reads; an empty set: it reads none, but is called on every event (with None).
READS = "dbtproof_reads"
#: dbt's own callbacks, and the events they read (dbt 1.12 tracks behaviour-change
#: warnings, when anonymous usage stats are on).
DBT_CALLBACKS = MappingProxyType(
    {("dbt.tracking", "track_behavior_change_warn"): frozenset({"BehaviorChangeEvent"})}
)


def reading(events: Sequence[str], callback: Callable[[Any], None]) -> Callable[[Any], None]:
    """*callback*, as a callback that says it reads only *events* (class names of dbt's
    events; none: it is called on every event, with None)."""

    def read(event: Any) -> None:
        callback(event)

    setattr(read, READS, frozenset(events))
    return read


def _reads(callback: Any) -> frozenset[str] | None:
    """The events *callback* reads, or None when not known."""
    found = getattr(callback, READS, None)
    if found is not None:
        return found
    return DBT_CALLBACKS.get(
        (getattr(callback, "__module__", None), getattr(callback, "__name__", None))
    )


@contextmanager
def lean_events() -> Iterator[None]:
    """While the block runs (one dbt invocation, under the runner's lock), an event that
    nothing reads is dropped before dbt makes its message."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager

    original = EventManager.fire_event
    takes = inspect.signature(original).parameters  # dbt-common < 1.16: (e, level) only

    def fire_event(
        self: Any,
        e: Any,
        level: Any = None,
        node: Any = None,
        force_warn_or_error_handling: bool = False,
    ) -> None:
        read = [_reads(callback) for callback in self.callbacks]
        if (
            self.loggers
            or force_warn_or_error_handling
            or any(events is None for events in read)
            or any(type(e).__name__ in events for events in read if events)
            or (
                getattr(self, "require_warn_or_error_handling", True)
                and (level or e.level_tag()) == EventLevel.WARN
            )
            or os.environ.get("DBT_TEST_BINARY_SERIALIZATION")
        ):
            extra = {"node": node, "force_warn_or_error_handling": force_warn_or_error_handling}
            original(self, e, level=level, **{k: v for k, v in extra.items() if k in takes})
            return
        for callback, events in zip(self.callbacks, read, strict=True):
            if not events:
                callback(None)

    EventManager.fire_event = fire_event  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventManager.fire_event = original  # type: ignore[method-assign]
