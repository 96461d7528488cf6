"""Whether two spellings of a server are one server: ``localhost`` and ``127.0.0.1`` are.

A host name is resolved (``socket.getaddrinfo``, bounded by a timeout) with its port;
two hosts on the same port are one server when their addresses meet, or when both are
loopback addresses (the machine itself). Used by the protected-target check
(:mod:`dbtproof.project.targets`) before anything connects, and once connected on PostgreSQL
with what the server says of itself (:class:`ServerFacts`: the address and port it was
reached on, a Unix socket being this machine). A host spelled as a socket folder
(``/var/run/postgresql``) is this machine too.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: How long one host name may take to resolve before it counts as unresolvable.
RESOLVE_TIMEOUT = 2.0
#: What a Unix socket folder (a host spelled ``/var/run/postgresql``) resolves to: this
#: machine, as libpq reads a host that starts with ``/``.
SOCKET_ADDRESSES = frozenset({"127.0.0.1", "::1"})


def _resolve(host: str, port: int, timeout: float) -> frozenset[str] | None:
    """The addresses *host* resolves to, or None (unresolvable, or too slow)."""
    found: list[frozenset[str]] = []

    def look() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        found.append(frozenset(str(info[4][0]) for info in infos))

    thread = threading.Thread(target=look, name="dbtproof-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else None


def _loopback(addresses: frozenset[str]) -> bool:
    """True when *addresses* are some, and all of this machine (loopback)."""
    try:
        return bool(addresses) and all(
            ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
        )
    except ValueError:
        return False


#: What a PostgreSQL connection says of its server: the address and port it was reached
#: on (NULL address over a Unix socket; the port the server listens on), the database, and
#: whether the identity may read the cluster's system identifier.
SERVER_FACTS_SQL = (
    "select inet_server_addr()::text, coalesce(inet_server_port(), "
    "current_setting('port')::int), current_database(), "
    "has_function_privilege('pg_control_system()', 'execute')"
)
#: The cluster's system identifier: a query of its own, as a CASE around it does not keep
#: PostgreSQL from checking the right to call ``pg_control_system()``.
SYSTEM_IDENTIFIER_SQL = "select system_identifier::text from pg_control_system()"


@dataclass(frozen=True)
class ServerFacts:
    """What a PostgreSQL connection says of the server it reached."""

    #: ``inet_server_addr()``; None over a Unix socket (a server on this machine).
    address: str | None
    port: int
    database: str
    #: ``pg_control_system()``'s system identifier (the cluster's identity), if readable.
    system_identifier: str | None

    @classmethod
    def read(cls, fetch: Callable[[str], Sequence[Any]]) -> ServerFacts:
        """The facts, read with *fetch* (SQL -> rows) on a connection to the server.

        Raises what *fetch* raises: a server that refuses the query (a role without the
        right to call one of its functions, a PostgreSQL-compatible server without them).
        """
        address, port, database, readable = fetch(SERVER_FACTS_SQL)[0]
        system_identifier = fetch(SYSTEM_IDENTIFIER_SQL)[0][0] if readable else None
        return cls(address, int(port), str(database), system_identifier)

    def describe(self) -> str:
        """How the server answered, for messages."""
        reached = (
            f"{self.address}:{self.port}" if self.address else f"a local socket, port {self.port}"
        )
        identity = f", system_identifier {self.system_identifier}" if self.system_identifier else ""
        return f"{reached}{identity}"


class ServerResolver:
    """Compares servers named by host and port, resolving each host once."""

    def __init__(self, timeout: float = RESOLVE_TIMEOUT) -> None:
        self.timeout = timeout
        self._resolved: dict[tuple[str, int], frozenset[str] | None] = {}

    def addresses(self, host: str, port: int) -> frozenset[str] | None:
        """The addresses of *host* (None when it does not resolve); a socket folder
        (``/...``) is this machine's loopback."""
        if host.startswith("/"):
            return SOCKET_ADDRESSES
        key = (host.casefold(), port)
        if key not in self._resolved:
            self._resolved[key] = _resolve(host, port, self.timeout)
        return self._resolved[key]

    def same(self, host: str, port: int, other_host: str, other_port: int) -> bool:
        """Whether *host*:*port* and *other_host*:*other_port* are one server: the same
        port, and the same name, addresses that meet, or loopback addresses both."""
        if port != other_port:
            return False
        if host.casefold() == other_host.casefold():
            return True
        mine, theirs = self.addresses(host, port), self.addresses(other_host, other_port)
        if mine is None or theirs is None:
            return False
        return bool(mine & theirs) or (_loopback(mine) and _loopback(theirs))

    def reaches(self, host: str, port: int, facts: ServerFacts) -> bool:
        """Whether *host*:*port* names the server that answered with *facts*: the same
        port, and its address among the host's (a loopback or Unix-socket answer: a host
        that resolves to loopback addresses)."""
        if port != facts.port:
            return False
        addresses = self.addresses(host, port)
        if addresses is None:
            return False
        if facts.address is None:
            return _loopback(addresses)
        answered = frozenset({facts.address.split("/", 1)[0]})
        return bool(addresses & answered) or (_loopback(addresses) and _loopback(answered))
