"""Whether two spellings of a server are one server: ``localhost`` and ``127.0.0.1`` are.

A host name is resolved (``socket.getaddrinfo``, bounded by a timeout) with its port;
two hosts on the same port are one server when their addresses meet, or when both are
loopback addresses (the machine itself). Used by the protected-target check
(:mod:`dbtproof.targets`) before anything connects.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

#: How long one host name may take to resolve before it counts as unresolvable.
RESOLVE_TIMEOUT = 2.0


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
    try:
        return bool(addresses) and all(
            ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
        )
    except ValueError:
        return False


class ServerResolver:
    """Compares servers named by host and port, resolving each host once."""

    def __init__(self, timeout: float = RESOLVE_TIMEOUT) -> None:
        self.timeout = timeout
        self._resolved: dict[tuple[str, int], frozenset[str] | None] = {}

    def addresses(self, host: str, port: int) -> frozenset[str] | None:
        """The addresses of *host* (None when it does not resolve)."""
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
