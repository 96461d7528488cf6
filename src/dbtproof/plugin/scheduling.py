"""Under ``pytest -n``: where the items of ``dbt_project.yml`` go.

xdist's default distribution (``--dist load``) spreads items over the workers in chunks,
so each worker would build in its own namespace what its share of ``dbt_project.yml``'s
items needs: the models under many tests built once per worker.
:class:`DbtProjectScheduling` (xdist's ``loadscope`` scheduling with other scopes) avoids
that in one of two ways:

* when the run builds the project's nodes once for every worker
  (:mod:`dbtproof.session.shared_build`: DuckDB, PostgreSQL), the project's items are split
  into as many units of work as there are workers, so that each runs its share of the
  data tests against that one build;
* otherwise the build items, data tests and unit tests of ``dbt_project.yml`` stay
  together as one unit of work: one worker builds each node once and runs the data tests
  in one ``dbt test``, with the profile's threads, as ``dbt build`` would.

Every other test is a unit of its own, so pytest tests spread over all workers as with
``--dist load``. Only ``--dist load`` (what ``-n`` means without ``--dist``) is replaced;
any other ``--dist`` is the user's choice and kept (``loadfile`` groups the project's
items alike). This module imports xdist: the plugin imports it only inside xdist's hook.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from dbtproof.project.discovery import PROJECT_FILE


def is_project_item(nodeid: str) -> bool:
    """Whether *nodeid* is an item collected from a ``dbt_project.yml``."""
    path = nodeid.split("::", 1)[0]
    return path == PROJECT_FILE or path.endswith("/" + PROJECT_FILE)


class DbtProjectScheduling(LoadScopeScheduling):
    """``loadscope`` with two kinds of scope: a ``dbt_project.yml`` with all its items (or,
    with *split*, one share of them per worker), and each other test alone, handed out
    in the order pytest collected them (as ``--dist load`` does; ``loadscope`` would
    otherwise send the largest scope first)."""

    def __init__(self, config: pytest.Config, log: Any = None, split: bool = False) -> None:
        # --loadscope-reorder means something only to --dist loadscope, which this
        # scheduler is not: it would send dbt_project.yml's items first
        config.option.loadscopereorder = False
        super().__init__(config, log)
        self.split = split
        #: With *split*: each project item's share, dealt in collection order (DAG order,
        #: so each share has as many of each kind and depth) when first scheduled.
        self.share_of: dict[str, int] = {}

    def schedule(self) -> None:
        """Deal the project's items into one share per worker, then schedule as ``loadscope``."""
        if self.split and not self.share_of and self.registered_collections:
            shares = max(len(self.nodes), 1)
            collection = next(iter(self.registered_collections.values()))
            project = [nodeid for nodeid in collection if is_project_item(nodeid)]
            self.share_of = {nodeid: index % shares for index, nodeid in enumerate(project)}
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        if not is_project_item(nodeid):
            return nodeid
        path = nodeid.split("::", 1)[0]
        share = self.share_of.get(nodeid)
        return path if share is None else f"{path}::{share}"
