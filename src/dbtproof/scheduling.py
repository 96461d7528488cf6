"""Under ``pytest -n``: every dbt item of the project goes to one xdist worker.

xdist's default distribution (``--dist load``) spreads items over the workers in chunks,
so each worker would build in its own namespace what its share of ``dbt_project.yml``'s
items needs: the models under many tests built once per worker.
:class:`DbtProjectScheduling` (xdist's ``loadscope`` scheduling with other scopes) keeps
the build items, data tests and unit tests of ``dbt_project.yml`` together as one unit of
work — one worker builds each node once and runs the data tests in one ``dbt test``, with
the profile's threads, as ``dbt build`` would — and gives every other test a unit of its
own, so pytest tests spread over all workers as with ``--dist load``.

Only ``--dist load`` (what ``-n`` means without ``--dist``) is replaced; any other
``--dist`` is the user's choice and kept (``loadfile`` groups the project's items alike).
This module imports xdist: the plugin imports it only inside xdist's hook.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from dbtproof.project import PROJECT_FILE


def is_project_item(nodeid: str) -> bool:
    """Whether *nodeid* is an item collected from a ``dbt_project.yml``."""
    path = nodeid.split("::", 1)[0]
    return path == PROJECT_FILE or path.endswith("/" + PROJECT_FILE)


class DbtProjectScheduling(LoadScopeScheduling):
    """``loadscope`` with two kinds of scope: a ``dbt_project.yml`` with all its items, and
    each other test alone, handed out in the order pytest collected them (as ``--dist
    load`` does; ``loadscope`` would otherwise send the largest scope first)."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        # --loadscope-reorder means something only to --dist loadscope, which this
        # scheduler is not: it would send dbt_project.yml's items first
        config.option.loadscopereorder = False
        super().__init__(config, log)

    def _split_scope(self, nodeid: str) -> str:
        if is_project_item(nodeid):
            return nodeid.split("::", 1)[0]
        return nodeid
