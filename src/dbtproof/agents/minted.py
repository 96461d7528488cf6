"""``--dbt-credentials`` for ``dbtproof sample``, ``propose`` and ``mcp``.

The same providers as pytest's option (:mod:`dbtproof.credentials`): a token minted in
the command itself, exported only around dbt's invocations and connections, and told to
every :class:`~dbtproof.safety.redaction.SecretRegistry` the command scrubs with (its output,
a server's tool results, log and evidence), so that it is never shown.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from dbtproof.credentials import CredentialSet, load_credentials
from dbtproof.safety.redaction import SecretRegistry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dbt-credentials`` and ``--dbt-allow-untrusted-credentials`` to *parser*."""
    parser.add_argument(
        "--dbt-credentials",
        action="append",
        default=[],
        metavar="NAME[:key=value,...]",
        help="mint a short-lived credential for the profile (github-oidc, gitlab-oidc, "
        "aws-rds-iam or an installed provider), as pytest's --dbt-credentials",
    )
    parser.add_argument(
        "--dbt-allow-untrusted-credentials",
        action="store_true",
        help="mint credentials even for untrusted code (GitHub pull_request_target, forks)",
    )


class MintedCredentials:
    """A command's providers, and the registries every value they mint is told to."""

    def __init__(self, specs: Sequence[str], allow_untrusted: bool = False) -> None:
        """The providers *specs* name; a :class:`~dbtproof.errors.DbtproofError` for a bad
        spec or untrusted code (unless *allow_untrusted*)."""
        self._registries: list[SecretRegistry] = []
        self._minted: list[tuple[str, str]] = []
        self.set: CredentialSet = load_credentials(
            list(specs), allow_untrusted=allow_untrusted, minted=self._tell
        )

    def _tell(self, value: str, source: str) -> None:
        self._minted.append((value, source))
        for registry in self._registries:
            registry.add(value, source)

    def register_into(self, registry: SecretRegistry) -> None:
        """Tell *registry* every value minted so far and every later one."""
        self._registries.append(registry)
        for value, source in self._minted:
            registry.add(value, source)

    @contextmanager
    def exported(self) -> Iterator[None]:
        """The providers' variables set (fresh tokens) for the block, removed after it."""
        with self.set.exported():
            yield


def from_arguments(args: argparse.Namespace) -> MintedCredentials | None:
    """The :class:`MintedCredentials` of a command's options (None without any)."""
    specs = [spec for spec in getattr(args, "dbt_credentials", None) or [] if spec.strip()]
    if not specs:
        return None
    return MintedCredentials(specs, bool(getattr(args, "dbt_allow_untrusted_credentials", False)))


def exported(credentials: MintedCredentials | None) -> Any:
    """:meth:`MintedCredentials.exported`, or nothing to do without credentials."""
    return credentials.exported() if credentials is not None else nullcontext()
