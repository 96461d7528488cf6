"""The xdist controller's hand-over to its workers: :class:`XdistHandover`.

Under ``pytest -n`` the controller parses once and writes its warm parse for the
workers (:attr:`XdistHandover.shared_parse`, loaded by each worker instead of parsing),
and, when the target allows it, makes the run's folder for the nodes built once for
every worker (:attr:`XdistHandover.shared_build`, see :mod:`dbtproof.session.shared_build`);
both paths go to the workers in ``workerinput``. The controller removes them when the
run ends. Owned by the run's state (``state.xdist``), read through :class:`HandoverHost`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from dbtproof.plugin.options import is_xdist_controller

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession

#: ``workerinput`` key: the controller's warm parse, for workers to load instead of parsing.
PARSE_KEY = "dbtproof_parse"
#: ``workerinput`` key: the run's folder for the nodes built once for every worker.
SHARED_BUILD_KEY = "dbtproof_shared_build"


class HandoverHost(Protocol):
    """What :class:`XdistHandover` reads of the run's state."""

    run_id: str
    session: DbtSession | None
    #: What the run keeps (``--dbt-keep``): the run-level build's file joins it.
    kept: list[str]

    def workdir(self, config: pytest.Config) -> Path:
        """Where the run keeps its files."""


class XdistHandover:
    """The controller's warm parse and run-level build folder, for its workers."""

    def __init__(self, host: HandoverHost) -> None:
        self.host = host
        #: The xdist controller's warm parse, written for its workers (controller) or to be
        #: loaded instead of parsing (worker); the controller removes it when the run ends.
        self.shared_parse: Path | None = None
        #: The run's folder for the project's nodes built once for every xdist worker
        #: (:mod:`dbtproof.session.shared_build`): made by the controller when the target allows
        #: it, handed to the workers, removed by the controller when the run ends; None: each
        #: worker builds what its items need.
        self.shared_build: Path | None = None

    def hand_over(self, config: pytest.Config, workerinput: dict[str, Any]) -> None:
        """The xdist controller, configuring a worker: put the warm parse it wrote and the
        run-level build's folder (when the run has one) in the worker's *workerinput*."""
        if self.shared_parse is not None and self.shared_parse.is_file():
            workerinput[PARSE_KEY] = str(self.shared_parse)
        shared_build = self.share_build(config)
        if shared_build is not None:
            workerinput[SHARED_BUILD_KEY] = str(shared_build)

    def take_over(self, workerinput: dict[str, Any] | None) -> None:
        """An xdist worker, at configure: what its controller handed over (if anything)."""
        if workerinput is not None and workerinput.get(PARSE_KEY):
            self.shared_parse = Path(workerinput[PARSE_KEY])
        if workerinput is not None and workerinput.get(SHARED_BUILD_KEY):
            self.shared_build = Path(workerinput[SHARED_BUILD_KEY])

    def share_parse(self, config: pytest.Config) -> None:
        """The xdist controller: have its session's warm parse written for the workers."""
        self.shared_parse = self.host.workdir(config) / f"{self.host.run_id}.manifest.pickle"

    def share_build(self, config: pytest.Config) -> Path | None:
        """The xdist controller: the run's folder for the nodes built once for every worker
        (made on the first call), or None when each worker builds its own: the target's
        adapter has no run-level build, ``dbt_shared_build = false``, ``--dbt-store-failures``
        (tests then write), no parse shared (``dbt_warm_parse = false``), or a ``--dist``
        other than ``load``."""
        from dbtproof.session import shared_build

        if self.shared_build is not None:
            return self.shared_build
        session = self.host.session
        if (
            session is None
            or self.shared_parse is None
            or not self.shared_parse.is_file()
            or not shared_build.supported(session.adapter_type)
            or not config.getini("dbt_shared_build")
            or config.getoption("dbt_store_failures")
            or config.getvalue("dist") != "load"
        ):
            return None
        self.shared_build = self.host.workdir(config) / f"{self.host.run_id}.shared"
        self.shared_build.mkdir(parents=True, exist_ok=True)
        return self.shared_build

    def remove(self, config: pytest.Config) -> None:
        """The xdist controller, when the run ends: remove the parse it wrote for workers,
        and the run-level build's folder (its DuckDB file with it)."""
        if not is_xdist_controller(config):
            return
        if self.shared_parse is not None:
            self.shared_parse.unlink(missing_ok=True)
        if self.shared_build is None:
            return
        if config.getoption("dbt_keep"):  # --dbt-keep: the run-level build's file stays too
            from dbtproof.session.shared_build import SharedPlace

            kept = SharedPlace.of_run(self.shared_build, self.host.run_id).database_file
            if kept.is_file():
                self.host.kept.append(str(kept))
            return
        shutil.rmtree(self.shared_build, ignore_errors=True)
