"""What the run's dbt selection options pick (``--dbt-select``, ``--dbt-exclude``, and
``--no-dbt-builds``).

dbt's own selector syntax decides (``dbt ls`` through the session's runner); a selector
dbt refuses, or one that picks nothing, stops the run with one message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError, DbtRunError
from dbtproof.project.nodes import BUILDABLE, FUNCTION, graph_nodes, is_buildable, resource_type

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession


def selected(
    session: DbtSession, select: str | None, exclude: str | None, builds: bool = True
) -> tuple[list[Any], list[Any]]:
    """The enabled data tests and unit tests, and (with *builds*) the models, seeds,
    snapshots and functions to build, narrowed by dbt selectors. Ephemeral models are
    never built.
    """
    manifest = session.manifest
    tests = {uid: n for uid, n in manifest.nodes.items() if resource_type(n) == "test"}
    tests.update(getattr(manifest, "unit_tests", {}) or {})
    nodes = {uid: n for uid, n in graph_nodes(manifest).items() if builds and is_buildable(n)}
    if select or exclude:
        # `function` is a resource type only to a dbt that has functions (1.11 on)
        kinds = BUILDABLE if compat.functions(manifest) else BUILDABLE - {FUNCTION}
        types = ("test", "unit_test", *(sorted(kinds) if builds else ()))
        try:
            chosen = session.commands.runner_list(select, exclude, types)
        except DbtRunError as exc:
            raise DbtproofError(
                f"dbtproof: dbt cannot use {_selection_options(select, exclude)} "
                f"in project '{session.project.name}':\n{_dbt_reason(exc)}\n"
                f"Fix the selector (dbt's syntax: '+customers', 'tag:nightly', "
                f"'test_type:unit', 'path:models/marts')."
            ) from None
        picked = (
            [tests[uid] for uid in chosen if uid in tests],
            [nodes[uid] for uid in chosen if uid in nodes],
        )
        if not picked[0] and not picked[1]:
            what = "dbt test, model, seed, snapshot or function" if builds else "dbt test"
            raise DbtproofError(
                f"dbtproof: {_selection_options(select, exclude)} selects no {what} "
                f"in project '{session.project.name}'. Check the selector (dbt's syntax: "
                f"'+customers', 'tag:nightly', 'test_type:unit', 'path:models/marts')."
            )
        return picked
    return [tests[uid] for uid in sorted(tests)], [nodes[uid] for uid in sorted(nodes)]


def selection_for(config: pytest.Config, session: DbtSession) -> tuple[list[Any], list[Any]]:
    """The data tests and unit tests, and the nodes to build, that the run's options pick
    (``--dbt-select``, ``--dbt-exclude``, ``--no-dbt-builds``); see :func:`selected`."""
    return selected(
        session,
        config.getoption("dbt_select"),
        config.getoption("dbt_exclude"),
        builds=not config.getoption("no_dbt_builds"),
    )


def _selection_options(select: str | None, exclude: str | None) -> str:
    """The selection options as given: ``--dbt-select '+x' --dbt-exclude 'y'``."""
    given = [(o, v) for o, v in (("--dbt-select", select), ("--dbt-exclude", exclude)) if v]
    return " ".join(f"{option} {value!r}" for option, value in given)


def _dbt_reason(exc: DbtRunError) -> str:
    """dbt's own words from a failed selection (the lines after dbtproof's first)."""
    lines = str(exc).splitlines()[1:]
    return "\n".join(lines) or "  (dbt gave no reason)"
