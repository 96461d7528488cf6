"""Connection faults told apart from everything else, and retried where that is safe.

A warehouse that restarts, a backend terminated by an administrator, a network that drops
a connection: none of these says anything about the project under test, so none may read
as a test's verdict. :func:`connection_fault` recognises them in an exception (or its
causes) or in dbt's message for a node:

- ``transient``: refused, reset or closed connections, a server starting up or shutting
  down, a terminated backend, a timeout — worth another try;
- ``auth``: the login or a right was refused — another try cannot help, so none is made.

:func:`open_with_retries` opens a connection, retrying transient failures with bounded
exponential backoff (``dbt_connect_retries``); :func:`read_with_retry` runs a read
(``dbt.query``, ``dbt.run_model``) again once, on a fresh connection, when its connection
died under it (the teardown's drop: as often as its patience says). What still fails is a
:class:`~dbtproof.errors.ConnectionFaultError`: pytest reports it as an error of the test,
naming the fault, never as a failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from dbtproof.errors import (
    ConnectionAuthError,
    ConnectionFailedError,
    ConnectionFaultError,
    DbtproofError,
)

T = TypeVar("T")

TRANSIENT = "transient"
AUTH = "auth"

#: SQLSTATE classes and codes (PostgreSQL's, shared by many warehouses) of connection faults.
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300")
_AUTH_STATES = ("28", "42501")
#: What drivers and dbt say when a connection fails (compared casefolded).
_TRANSIENT_TEXT = re.compile(
    r"connection refused|could not connect to server|connection reset|broken pipe"
    r"|server closed the connection unexpectedly|terminating connection due to"
    r"|the database system is (starting up|shutting down|in recovery mode|not yet accepting)"
    r"|connection already closed|connection (timed out|timeout)|timeout expired"
    r"|could not (receive|send) data (from|to) server|no connection to the server"
    r"|ssl syscall error|ssl connection has been closed unexpectedly|server conn crashed"
    r"|connection not open|lost synchronization with server|too many clients already",
    re.IGNORECASE,
)
_AUTH_TEXT = re.compile(
    r"password authentication failed|authentication failed|no pg_hba\.conf entry"
    r"|is not permitted to log in|role \S+ does not exist|permission denied for database"
    r"|password is required|invalid password|access denied",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Fault:
    """A connection fault: its kind (:data:`TRANSIENT` or :data:`AUTH`) and what was said."""

    kind: str
    reason: str


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and its causes and contexts, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [e for e in (current.__context__, current.__cause__) if e is not None]


def _one_line(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def fault_in_text(text: str | None) -> Fault | None:
    """The connection fault a message (dbt's message for a node, a driver's) names, if any."""
    if not text:
        return None
    if _AUTH_TEXT.search(text):
        return Fault(AUTH, _one_line(text))
    if _TRANSIENT_TEXT.search(text):
        return Fault(TRANSIENT, _one_line(text))
    return None


def connection_fault(exc: BaseException) -> Fault | None:
    """The connection fault behind *exc* (it, or any exception that caused it), if any.

    An auth fault wins over a transient one in the same chain (a refused login is what a
    retry would meet again).
    """
    found: Fault | None = None
    for error in _chain(exc):
        if isinstance(error, ConnectionAuthError):
            return Fault(AUTH, _one_line(str(error)))
        state = str(getattr(error, "pgcode", None) or getattr(error, "sqlstate", None) or "")
        if state.startswith(_AUTH_STATES):
            return Fault(AUTH, _one_line(str(error)))
        if state.startswith(_TRANSIENT_STATES) or isinstance(
            error, (ConnectionError, TimeoutError)
        ):
            fault: Fault | None = Fault(TRANSIENT, _one_line(str(error)) or type(error).__name__)
        else:
            fault = fault_in_text(str(error))
        if fault is not None and fault.kind == AUTH:
            return fault
        if fault is not None and (found is None or len(fault.reason) < len(found.reason)):
            found = fault  # the driver's own words, without what wrapped them
    return found


def transient_fault(exc: BaseException) -> Fault | None:
    """The connection fault behind *exc* when it is a transient one (worth another try)."""
    fault = connection_fault(exc)
    return fault if fault is not None and fault.kind == TRANSIENT else None


def is_connection_error(exc: BaseException) -> bool:
    """Whether *exc* (or what caused it) is dbtproof's error for a connection that failed:
    such a test has no verdict, and is reported as an error."""
    return any(isinstance(error, ConnectionFailedError) for error in _chain(exc))


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a connection is opened again after a transient failure:
    *retries* more attempts, waiting *base* seconds, then twice as long each time, at most
    *cap* seconds."""

    retries: int = 3
    base: float = 0.5
    cap: float = 8.0

    def delays(self) -> list[float]:
        """The waits between attempts (one fewer than the attempts)."""
        return [min(self.cap, self.base * 2**n) for n in range(max(0, self.retries))]


def open_with_retries(
    open_: Callable[[], T],
    policy: RetryPolicy,
    where: str,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """``open_()``, tried again after a transient connection fault as *policy* says.

    :raises ConnectionAuthError: at once, when the login or a right is refused.
    :raises ConnectionFaultError: when every attempt met a transient fault.
    Other exceptions propagate as they are.
    """
    delays = policy.delays()
    waited = 0.0
    for attempt in range(len(delays) + 1):
        try:
            return open_()
        except ConnectionFailedError:
            raise
        except Exception as exc:
            fault = connection_fault(exc)
            if fault is None:
                raise
            if fault.kind == AUTH:
                raise ConnectionAuthError(
                    f"dbtproof: the warehouse refused {where} (not retried: another attempt "
                    f"would be refused alike): {fault.reason}. Check the profile's user, "
                    f"password and rights."
                ) from exc
            if attempt == len(delays):
                raise ConnectionFaultError(
                    f"dbtproof: cannot reach the warehouse for {where}: {fault.reason} "
                    f"({attempt + 1} attempts over {waited:.1f} s; ini dbt_connect_retries = "
                    f"{policy.retries}). The test could not run: no verdict."
                ) from exc
            sleep(delays[attempt])
            waited += delays[attempt]
    raise AssertionError("unreachable")  # pragma: no cover


def read_with_retry(
    read: Callable[[], T],
    reset: Callable[[], object],
    what: str,
    patience: RetryPolicy | None = None,
) -> T:
    """``read()``; when its connection died under it, ``reset()`` (drop that connection) and
    ``read()`` again on a fresh one: once, or, with *patience*, as often as it says, waiting
    its delays in between (the teardown's drop: the run's last chance to leave nothing
    behind). A read repeated is the same read: nothing it does stays.

    :raises ConnectionFaultError: when the last attempt meets a connection fault too.
    """
    delays = patience.delays() if patience is not None else [0.0]
    for attempt in range(len(delays) + 1):
        try:
            return read()
        except ConnectionFailedError:
            raise
        except Exception as exc:
            fault = transient_fault(exc)
            if fault is None:
                raise
            if attempt == len(delays):
                again = (
                    "again on a fresh connection"
                    if attempt == 1
                    else f"in all {attempt + 1} attempts"
                )
                raise ConnectionFaultError(
                    f"dbtproof: the connection to the warehouse failed during {what}, and "
                    f"{again}: {fault.reason}. The test could not run: "
                    f"no verdict."
                ) from exc
            reset()
            if delays[attempt]:
                time.sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def not_retried(what: str) -> Iterator[None]:
    """A block that writes (``dbt build``, ``dbt.execute``), so is never run twice: an
    exception a transient connection fault caused leaves it as a
    :class:`ConnectionFaultError` naming the fault."""
    try:
        yield
    except Exception as exc:
        error = lost_during(what, exc)
        if error is exc:
            raise
        raise error from exc


def lost_during(what: str, exc: BaseException) -> BaseException:
    """A :class:`ConnectionFaultError` for *exc* when a transient connection fault caused it
    (a write, not retried; raise it ``from exc``), else *exc* itself."""
    if isinstance(exc, ConnectionFailedError):
        return exc
    fault = transient_fault(exc)
    if fault is None:
        return exc
    return ConnectionFaultError(
        f"dbtproof: the connection to the warehouse failed during {what} (a write: not "
        f"retried): {fault.reason}. The test could not run: no verdict."
    )


#: How every error of a failed start begins.
START_FAILED = "dbtproof: the run could not start: "


def _start_fault(exc: BaseException) -> Fault | None:
    """The connection fault a step of the start met in *exc*, if it is one to act on: any
    fault in a driver's error; in dbtproof's own errors (their advice is kept otherwise),
    only a transient one (a read that failed again, a setup a fault cut short)."""
    if isinstance(exc, ConnectionFaultError):
        return transient_fault(exc) or Fault(TRANSIENT, _one_line(str(exc)))
    if isinstance(exc, DbtproofError):
        return transient_fault(exc)
    return connection_fault(exc)


def start_with_retries(
    step: Callable[[], T],
    reset: Callable[[], object],
    what: str,
    policy: RetryPolicy,
    again: Callable[[], object] = lambda: None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """A step of the run's start (its statements: the liveness lock, the run role, the
    grants, the guard's first look): ``step()``, tried again as *policy* says after a
    transient connection fault (one that a read inside it could not get past either).
    ``reset()`` runs straight after the fault (it drops the dead connection; it never
    raises); ``again()`` runs before each later attempt, after the wait, as part of it (it
    undoes what the step made: the server may have been away until then).

    :raises ConnectionAuthError: at once, when the login or a right is refused.
    :raises ConnectionFaultError: when every attempt met a transient fault.
    Other exceptions (dbtproof's own errors with their advice) propagate as they are.
    """
    delays = policy.delays()
    waited = 0.0
    for attempt in range(len(delays) + 1):
        try:
            if attempt:
                again()
            return step()
        except ConnectionAuthError:
            raise
        except Exception as exc:
            fault = _start_fault(exc)
            if fault is None:
                raise
            if fault.kind == AUTH:
                raise ConnectionAuthError(
                    f"{START_FAILED}the warehouse refused {what} (not retried): "
                    f"{fault.reason}. Check the profile's user, password and rights."
                ) from exc
            if attempt == len(delays):
                raise ConnectionFaultError(
                    f"{START_FAILED}the connection to the warehouse failed during {what}: "
                    f"{fault.reason} ({attempt + 1} attempts over {waited:.1f} s; ini "
                    f"dbt_connect_retries = {policy.retries}). Rerun once the warehouse is "
                    f"reachable."
                ) from exc
            reset()
            sleep(delays[attempt])
            waited += delays[attempt]
    raise AssertionError("unreachable")  # pragma: no cover


def start_failed(exc: BaseException) -> BaseException:
    """What a failed start raises for *exc*: a :class:`ConnectionFaultError` (raise it
    ``from exc``) when a connection fault caused it, worded as a start that failed;
    dbtproof's own errors otherwise as they are."""
    if isinstance(exc, ConnectionAuthError) or str(exc).startswith(START_FAILED):
        return exc
    fault = _start_fault(exc)
    if fault is None:
        return exc
    if fault.kind == AUTH:
        return ConnectionAuthError(
            f"{START_FAILED}the warehouse refused a statement of its start: {fault.reason}. "
            f"Check the profile's user, password and rights."
        )
    return ConnectionFaultError(
        f"{START_FAILED}the connection to the warehouse failed during its start: "
        f"{fault.reason}. Rerun once the warehouse is reachable."
    )
