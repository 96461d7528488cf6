"""dbt's ``grants:`` as tests: what each node's config asks of the test warehouse, after the
run's role mapping, and how that differs from what the relation carries.

Production grants name production roles (``reporter``); a test warehouse may call them
otherwise. ``dbt_grant_roles = reporter:ci_reporter`` maps a role for the whole run: the
manifest's grants configs are rewritten to the mapped names (so dbt's own
``apply_grants`` grants to them when it builds) and the check expects the mapped names.
A grantee the warehouse does not know is left out of the build (dbt would fail on it for a
reason of the test warehouse, not of the project) and errors the node's grants item with
the two ways out. The relation's privileges are read back by
:func:`dbtproof._dbt_compat.show_grants` (dbt's macros) and compared with dbt's own diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError
from dbtproof.project.nodes import is_buildable, is_function

Grants = dict[str, list[str]]
#: The name of a node's grants item (``dbt_project.yml::customers::grants``).
GRANTS_ITEM = "grants"
#: Where the mapping is written, for messages.
MAPPING_HINT = "dbt_grant_roles = {role}:<ci role> in the pytest ini file (or --dbt-grant-roles)"


def grants_of(node: Any) -> Grants:
    """A node's ``grants:`` config as ``{privilege: [grantee, ...]}`` (a single grantee
    written as a string becomes a list, as dbt reads it); ``{}`` when it has none."""
    raw = getattr(getattr(node, "config", None), "grants", None) or {}
    grants: Grants = {}
    for privilege, grantees in dict(raw).items():
        if isinstance(grantees, str):
            grantees = [grantees]
        grants[str(privilege)] = [str(grantee) for grantee in grantees or []]
    return grants


def has_grants(node: Any) -> bool:
    """Whether *node* is a model, seed or snapshot dbt builds with a ``grants:`` config
    (a function's privileges are no relation's: not checked)."""
    return is_buildable(node) and not is_function(node) and bool(grants_of(node))


def parse_role_map(entries: Iterable[str], where: str) -> dict[str, str]:
    """``reporter:ci_reporter`` entries (space or comma separated) as a mapping keyed by the
    casefolded production role. Raises :class:`DbtproofError` naming *where* for a malformed one."""
    mapping: dict[str, str] = {}
    for entry in entries:
        for part in str(entry).replace(",", " ").split():
            role, sep, ci_role = part.partition(":")
            if not sep or not role.strip() or not ci_role.strip() or ":" in ci_role:
                raise DbtproofError(
                    f"dbtproof: {where}: {part!r} is not ROLE:CI_ROLE (the role the project's "
                    f"grants name, a colon, the role that stands for it in the test "
                    f"warehouse), e.g. dbt_grant_roles = reporter:ci_reporter"
                )
            mapping[role.strip().casefold()] = ci_role.strip()
    return mapping


def map_role(mapping: Mapping[str, str], role: str) -> str:
    """The role that stands for *role* in the test warehouse (itself when not mapped)."""
    return mapping.get(role.casefold(), role)


@dataclass(frozen=True)
class NodeGrants:
    """One node's grants: as configured, as the test warehouse should carry them, and the
    configured grantees whose (mapped) role the warehouse does not know."""

    configured: Grants
    expected: Grants
    unknown: tuple[str, ...] = ()


@dataclass
class GrantsPlan:
    """The grants of a run's nodes, with the role mapping and what the warehouse knows."""

    mapping: Mapping[str, str]
    #: Mapped grantees that exist (casefolded); None: the adapter cannot tell.
    known: set[str] | None = None
    nodes: dict[str, NodeGrants] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        manifest: Any,
        mapping: Mapping[str, str],
        lookup: Callable[[set[str]], set[str]] | None,
    ) -> GrantsPlan:
        """The plan for *manifest*; *lookup* answers which of the mapped grantees exist
        (casefolded), or is None where roles cannot be looked up."""
        configured = {
            uid: grants_of(node) for uid, node in manifest.nodes.items() if has_grants(node)
        }
        names = {
            map_role(mapping, grantee)
            for grants in configured.values()
            for grantees in grants.values()
            for grantee in grantees
        }
        plan = cls(mapping, lookup(names) if lookup is not None and names else None)
        for uid, grants in configured.items():
            plan.nodes[uid] = plan._node(grants)
        return plan

    def _node(self, configured: Grants) -> NodeGrants:
        expected = {
            privilege: [map_role(self.mapping, grantee) for grantee in grantees]
            for privilege, grantees in configured.items()
        }
        unknown = [
            grantee
            for grantees in configured.values()
            for grantee in grantees
            if not self.exists(map_role(self.mapping, grantee))
        ]
        return NodeGrants(configured, expected, tuple(dict.fromkeys(unknown)))

    def exists(self, role: str) -> bool:
        """Whether the (mapped) *role* exists in the test warehouse, as far as known."""
        return self.known is None or role.casefold() in self.known

    @property
    def roles(self) -> list[str]:
        """Every mapped grantee that exists, once (what gets the namespace's schema usage)."""
        found = {
            grantee.casefold(): grantee
            for node in self.nodes.values()
            for grantees in node.expected.values()
            for grantee in grantees
            if self.exists(grantee)
        }
        return sorted(found.values())

    @property
    def unknown(self) -> list[str]:
        """Every configured grantee whose role the warehouse lacks, once."""
        return sorted({grantee for node in self.nodes.values() for grantee in node.unknown})

    def rewrite(self, manifest: Any) -> None:
        """Have dbt grant what the plan expects: each node's grants config mapped, unknown
        grantees left out (the node's grants item errors instead). Nodes the plan has not
        seen (a manifest parsed with other vars) are mapped alike."""
        for uid, node in manifest.nodes.items():
            if not has_grants(node):
                continue
            planned = self.nodes.get(uid)
            if planned is None or planned.configured != grants_of(node):
                planned = self._node(grants_of(node))
            node.config.grants = {
                privilege: [grantee for grantee in grantees if self.exists(grantee)]
                for privilege, grantees in planned.expected.items()
            }

    def header_lines(self) -> list[str]:
        """The run header's lines: nodes with grants, roles mapped, roles unknown."""
        if not self.nodes:
            return []
        lines = [f"grants: {len(self.nodes)} node(s) with grants, checked after their build"]
        if self.mapping:
            pairs = ", ".join(f"{role} -> {ci}" for role, ci in sorted(self.mapping.items()))
            lines.append(f"grants: roles mapped (dbt_grant_roles): {pairs}")
        if self.unknown:
            lines.append(
                f"grants: role(s) unknown to the test warehouse: {', '.join(self.unknown)} "
                f"(left out of the build; the grants items naming them error)"
            )
        return lines


@dataclass(frozen=True)
class GrantsDiff:
    """What a relation lacks of its configured grants, and what it has beyond them."""

    expected: Grants
    actual: Grants
    missing: Grants
    extra: Grants

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra)

    def describe(self) -> str:
        """The diff, one line per side: ``- select to analyst``, ``+ insert to reporter``."""
        lines = [
            f"  configured: {_show(self.expected)}",
            f"  on the relation: {_show(self.actual)}",
        ]
        for sign, grants, what in (
            ("-", self.missing, "missing"),
            ("+", self.extra, "extra, not configured"),
        ):
            for privilege, grantees in sorted(grants.items()):
                for grantee in grantees:
                    lines.append(f"  {sign} {privilege} to {grantee} ({what})")
        return "\n".join(lines)


def _show(grants: Grants) -> str:
    shown = "; ".join(f"{p}: {', '.join(sorted(g))}" for p, g in sorted(grants.items()) if g)
    return shown or "(nothing)"


def compare(expected: Grants, actual: Grants) -> GrantsDiff:
    """*expected* against *actual* with dbt's own diff (case-insensitive, as dbt's
    ``apply_grants`` decides what to grant and revoke)."""
    return GrantsDiff(
        expected,
        actual,
        compat.grants_difference(expected, actual),
        compat.grants_difference(actual, expected),
    )


def unknown_roles_message(what: str, unknown: Iterable[str], mapping: Mapping[str, str]) -> str:
    """Why a grants item cannot check *what* (``model customers (models/...)``): the roles it
    names that the warehouse lacks, and the two ways out."""
    named = []
    for role in unknown:
        mapped = map_role(mapping, role)
        named.append(f"'{role}'" + (f" (mapped to '{mapped}')" if mapped != role else ""))
    first = next(iter(unknown), "reporter")
    return (
        f"dbtproof: the grants of {what} name role(s) {', '.join(named)} that do not exist in "
        f"the test warehouse, so they cannot be granted or checked. Either create the role "
        f"for CI (CREATE ROLE {map_role(mapping, first)} NOLOGIN), or map it to a role that "
        f"exists: {MAPPING_HINT.format(role=first)}."
    )
