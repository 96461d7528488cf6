"""The public fixtures of dbtproof. Thin: the work is done by :mod:`dbtproof.session.session`.

This module never imports the plugin; it reads the run's state from ``config.stash``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dbtproof.plugin.dbt_fixture import DbtFixture
from dbtproof.plugin.state import state_key


@pytest.fixture(scope="session")
def dbt(request: pytest.FixtureRequest) -> DbtFixture:
    """The dbt project under test, opened in this run's own namespace (one per xdist worker).

    Build and read models in an isolated schema that is dropped when the run ends::

        def test_customers(dbt):
            dbt.build(select="+customers")
            assert dbt.table("customers") == [{"customer_id": 1, "number_of_orders": 2}]

    Commands: ``build``, ``run``, ``seed``, ``test``, ``snapshot`` (``select=``, ``exclude=``,
    ``vars=``, ``full_refresh=``; the same selection runs once per session unless
    ``force=True``; failures raise :class:`dbtproof.DbtRunError` unless ``expect_fail=True``).
    Reading and writing: ``query(sql)``, ``execute(sql)``, ``table(name)``,
    ``relation(name)``, ``node(name)``, ``compile(name)``.
    Model unit tests: ``run_model(model, given={ref("x"): rows}, ...)`` runs one model on
    fixture rows (``vars=``, ``env=``, ``macros=``, ``is_incremental=``, ``this=``,
    ``apply=``, ``ordered=``, ``approx=``; ``queries=`` gives the results of queries the
    model runs while it renders, such as ``run_query``).
    Access: ``with dbt.as_role("reporter"):`` runs ``query``, ``table`` and ``run_model`` as
    a warehouse role (``dbtproof.AccessDenied`` for what it may not read).
    Attributes: ``schema``, ``target``, ``adapter_type``, ``manifest``.
    Annotate it as :class:`dbtproof.DbtFixture`.
    """
    state = request.config.stash.get(state_key, None)
    if state is None:
        raise pytest.UsageError(
            "dbtproof: the `dbt` fixture needs a dbt project, and none was found at or above "
            f"{request.config.rootpath}. Pass --dbt-project-dir or set the dbt_project_dir ini key."
        )
    return DbtFixture(state.start_session(request.config))


@contextmanager
def marked_role(item: pytest.Item, marker: Any) -> Iterator[None]:
    """``@pytest.mark.dbt_role("reporter")``: *item*'s call runs inside ``dbt.as_role``.

    Skipped with a reason where the adapter has no roles (DuckDB), as ``dbt.as_role`` is.
    """
    from dbtproof.errors import DbtproofError

    if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str):
        raise DbtproofError(
            f"dbtproof: {item.nodeid}: @pytest.mark.dbt_role takes one role name, "
            f"e.g. @pytest.mark.dbt_role('reporter')."
        )
    state = item.config.stash.get(state_key, None)
    if state is None:
        raise DbtproofError(
            f"dbtproof: {item.nodeid}: @pytest.mark.dbt_role needs a dbt project, and none "
            f"was found. Pass --dbt-project-dir or set the dbt_project_dir ini key."
        )
    with DbtFixture(state.start_session(item.config)).as_role(marker.args[0]):
        yield
