"""The run's namespace: schema names, the isolation guard, and what a cleaner may drop.

A run's namespace is ``<prefix><UTC yyyymmddhhmm>_<random>``; each xdist worker
adds ``_gw<N>``; dbt's custom schemas add ``_<custom>``. Everything a run writes
lives in schemas that start with its worker's schema name, so dropping the run is
dropping those schemas. The creation time in the name lets ``dbtproof clean``
judge the age of a namespace left behind by a run that died.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dbtproof.errors import DbtproofError, IsolationError
from dbtproof.project.nodes import WRITING, graph_nodes, resource_type

DEFAULT_PREFIX = "dbtproof_"
#: PostgreSQL's identifier limit.
MAX_IDENTIFIER = 63
#: Room left for dbt's ``_<custom_schema>`` suffixes after the worker schema.
SUFFIX_ROOM = 24
_TIME_FORMAT = "%Y%m%d%H%M"
_RANDOM_ALPHABET = string.ascii_lowercase + string.digits
_RANDOM_LENGTH = 6
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def validate_prefix(prefix: str) -> str:
    """Return *prefix* if it can start a schema name, else raise a clear error."""
    longest = len(prefix) + 12 + 1 + _RANDOM_LENGTH + len("_gw99")
    if not _PREFIX_RE.match(prefix):
        raise DbtproofError(
            f"dbtproof: namespace prefix {prefix!r} (from --dbt-schema-prefix or the "
            f"dbt_schema_prefix ini key) must be lowercase letters, digits and '_', starting "
            f"with a letter."
        )
    if longest + SUFFIX_ROOM > MAX_IDENTIFIER:
        raise DbtproofError(
            f"dbtproof: namespace prefix {prefix!r} is too long: schema names would exceed "
            f"{MAX_IDENTIFIER} characters once dbt adds custom-schema suffixes. Use at most "
            f"{MAX_IDENTIFIER - SUFFIX_ROOM - (longest - len(prefix))} characters."
        )
    return prefix


def new_run_id(prefix: str = DEFAULT_PREFIX, now: datetime | None = None) -> str:
    """A fresh run id: ``<prefix><UTC yyyymmddhhmm>_<6 random [a-z0-9]>``."""
    now = now or datetime.now(timezone.utc)
    token = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return f"{validate_prefix(prefix)}{now.astimezone(timezone.utc).strftime(_TIME_FORMAT)}_{token}"


def worker_schema(run_id: str, worker_id: str | None) -> str:
    """The schema of one worker: the run id, plus ``_gw<N>`` under xdist."""
    if worker_id and worker_id != "master":
        return f"{run_id}_{worker_id}"
    return run_id


def belongs_to(schema: str, namespace: str) -> bool:
    """True if *schema* is *namespace* itself or one of its ``_<suffix>`` schemas."""
    schema, namespace = schema.lower(), namespace.lower()
    return schema == namespace or schema.startswith(namespace + "_")


def leftover_pattern(prefix: str) -> re.Pattern[str]:
    """The pattern of schemas created by dbtproof runs with *prefix*; group 1 is the time."""
    return re.compile(
        rf"^{re.escape(prefix)}(\d{{12}})_[a-z0-9]{{{_RANDOM_LENGTH}}}(?:_gw\d+)?(?:_.*)?$"
    )


#: A schema of any dbtproof run, whatever its prefix.
_ANY_RUN = re.compile(rf"^[a-z][a-z0-9_]*?\d{{12}}_[a-z0-9]{{{_RANDOM_LENGTH}}}(?:_.*)?$")


def is_run_schema(schema: str) -> bool:
    """Whether *schema* is named as a dbtproof run's namespace (or one of its schemas)."""
    return _ANY_RUN.match(schema.lower()) is not None


@dataclass(frozen=True)
class Leftover:
    """A schema left by an earlier run, with the time its name records."""

    schema: str
    created: datetime

    def age(self, now: datetime | None = None) -> timedelta:
        """How long ago the run that created it started."""
        return (now or datetime.now(timezone.utc)) - self.created


def find_leftovers(schemas: Iterable[str], prefix: str = DEFAULT_PREFIX) -> list[Leftover]:
    """The schemas among *schemas* whose names match dbtproof's pattern for *prefix*."""
    pattern = leftover_pattern(prefix)
    found = []
    for schema in schemas:
        match = pattern.match(schema.lower())
        if not match:
            continue
        try:
            created = datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        found.append(Leftover(schema=schema, created=created))
    return sorted(found, key=lambda leftover: (leftover.created, leftover.schema))


def parse_age(text: str) -> timedelta:
    """Parse ``30m``, ``24h``, ``7d`` (or ``0``) into a timedelta, with a clear error."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match:
        raise DbtproofError(
            f"dbtproof: cannot read the age {text!r}: write a number and a unit, e.g. 30m, 24h, 7d."
        )
    number, unit = int(match.group(1)), match.group(2) or "s"
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return timedelta(seconds=number * seconds)


@dataclass(frozen=True)
class Violation:
    """A node that would write outside the run's namespace."""

    unique_id: str
    path: str
    database: str | None
    schema: str

    def describe(self) -> str:
        """One line naming the node, its file and where it would write."""
        where = f"{self.database}.{self.schema}" if self.database else self.schema
        return f"{self.unique_id} ({self.path}) would write to {where}"


def writing_nodes(manifest: Any) -> Iterable[Any]:
    """Nodes of the parsed manifest that may create relations (or functions) when run.

    Every data test counts: ``--store-failures`` can be switched on per invocation.
    """
    for node in graph_nodes(manifest).values():
        if resource_type(node) in WRITING:
            yield node


def find_violations(manifest: Any, namespace: str, database: str | None) -> list[Violation]:
    """Every node that would write outside *namespace* (or outside *database*)."""
    violations = []
    for node in writing_nodes(manifest):
        same_db = (
            database is None
            or node.database is None
            or str(node.database).lower() == database.lower()
        )
        if belongs_to(str(node.schema), namespace) and same_db:
            continue
        violations.append(
            Violation(
                unique_id=node.unique_id,
                path=str(getattr(node, "original_file_path", "?")),
                database=node.database,
                schema=str(node.schema),
            )
        )
    return violations


def check_isolation(manifest: Any, namespace: str, database: str | None) -> None:
    """Raise :class:`IsolationError` naming every node that would write outside the namespace.

    Run after :func:`dbtproof.safety.relocation.relocate`, which should leave nothing to name.
    """
    violations = find_violations(manifest, namespace, database)
    if not violations:
        return
    lines = "\n".join(f"  - {v.describe()}" for v in violations)
    raise IsolationError(
        f"dbtproof: refusing to run: {len(violations)} node(s) would write outside this run's "
        f"namespace '{namespace}'{f' in database {database}' if database else ''}:\n{lines}\n"
        f"dbtproof could not move them into the namespace; please report this with the "
        f"nodes' configs."
    )
