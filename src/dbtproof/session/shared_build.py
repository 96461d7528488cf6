"""Under ``pytest -n`` on DuckDB: the project's nodes built once for the run, read by every worker.

dbt's data tests only read. Under xdist (``--dist load``, the default of ``-n``), the
items of ``dbt_project.yml`` are split over the workers (:mod:`dbtproof.plugin.scheduling`);
what all of them need is built once, in a run-level place, and each worker runs its
share of the data tests against it:

* the place is the run's schema ``<run id>_shared`` in a DuckDB file of its own (its
  catalog :data:`CATALOG`), in a folder the xdist controller made for the run and
  removes when the run ends;
* each worker moves a fresh copy of the controller's parse there
  (:meth:`SharedHost.manifest`, the session's placement): the same relocation as its own
  namespace's, in the run-level schema and catalog;
* the first worker to need a node takes the folder's lock, attaches the file for
  writing, builds everything the run's collected items need in one ``dbt build`` per
  level (:class:`dbtproof.plugin.batches.DbtTestBatches`), detaches it and writes each node's
  result to :data:`RESULTS_FILE`; a worker that finds the results reads them instead;
* every worker then attaches the file read-only (DuckDB lets many processes read one
  file that nobody writes) and its data tests read it.

What a pytest test builds or runs itself (``dbt.build``, ``run_model``) stays in the
worker's own namespace. This module owns the place, the lock, the results file and the
connection a worker keeps the file attached through (:class:`SharedAttachment`, owned by
the session as ``session.shared``); the session's placement makes the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError, DbtRunError
from dbtproof.safety.quoting import literal, quote
from dbtproof.session.runner import NodeResult

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no shared build
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The DuckDB catalog (database name) of the run-level file, in every worker.
CATALOG = "dbtproof_shared"
#: Where the worker that built writes each node's result, for the others.
RESULTS_FILE = "built.json"
_LOCK_FILE = "build.lock"
#: Adapters whose run-level build is implemented.
SUPPORTED = ("duckdb",)


def supported(adapter_type: str) -> bool:
    """Whether the project's nodes can be built once for all workers on *adapter_type*."""
    return adapter_type in SUPPORTED and fcntl is not None


@dataclass(frozen=True)
class SharedPlace:
    """Where a run's run-level build lives."""

    #: The run's folder for it (lock, results, the DuckDB file, external files).
    folder: Path
    #: The run-level schema, ``<run id>_shared``: inside the run's namespace.
    schema: str
    #: The DuckDB catalog the file is attached as.
    catalog: str = CATALOG

    @classmethod
    def of_run(cls, folder: Path, run_id: str) -> SharedPlace:
        """The place of run *run_id*, whose folder the controller made at *folder*."""
        return cls(folder=folder, schema=f"{run_id}_shared")

    @property
    def database_file(self) -> Path:
        """The run-level DuckDB file."""
        return self.folder / f"{self.catalog}.duckdb"

    @property
    def external_root(self) -> Path:
        """Where dbt-duckdb's ``external`` models of the run-level build write their files."""
        return self.folder / "external"


@dataclass
class SharedResults:
    """What the run-level build did: each node's result, and a hook's failure if any."""

    #: Every node the build tried to build (some have no result: see the dbt log).
    built: list[str]
    nodes: list[NodeResult]
    hook_failure: str | None = None
    #: Why the build stopped before its results (a dbtproof error): every worker says it.
    error: str | None = None

    def to_json(self) -> str:
        """The results as the results file holds them."""
        return json.dumps(
            {
                "built": self.built,
                "nodes": [asdict(node) for node in self.nodes],
                "hook_failure": self.hook_failure,
                "error": self.error,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SharedResults:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            built=list(data["built"]),
            nodes=[NodeResult(**node) for node in data["nodes"]],
            hook_failure=data.get("hook_failure"),
            error=data.get("error"),
        )


class SharedHost(Protocol):
    """What :class:`SharedBuild` needs of the worker's session: its
    :class:`SharedAttachment` (``session.shared``)."""

    def manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the controller's parse moved to *place*."""

    def attach(self, place: SharedPlace, read_only: bool) -> None:
        """Attach the run-level file, read-only or for writing."""

    def detach(self, place: SharedPlace) -> None:
        """Detach the run-level file, if attached."""


class SharedAttachment:
    """One worker's attachment of the run-level DuckDB file (as its catalog) to its
    process's database, through a connection of its own: DuckDB keeps an attachment as
    long as one connection stays open. Also makes the manifest moved to the place
    (*make_manifest*: the session's :meth:`SessionPlacement.shared_manifest`)."""

    def __init__(
        self,
        place: SharedPlace | None,
        open_connection: Callable[[], Any],
        make_manifest: Callable[[SharedPlace], Any],
    ) -> None:
        self.place = place
        self._open_connection = open_connection
        self._make_manifest = make_manifest
        self._pin: Any = None

    def manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the xdist controller's parse moved to *place*."""
        return self._make_manifest(place)

    def attach(self, place: SharedPlace, read_only: bool) -> None:
        """Attach *place*'s file, read-only or for the one worker that builds it."""
        if self._pin is None:
            self._pin = self._open_connection()
        mode = " (read_only)" if read_only else ""
        compat.execute_dedicated(
            self._pin,
            f"attach {literal(str(place.database_file))} as {quote(place.catalog)}{mode}",
        )

    def detach(self, place: SharedPlace) -> None:
        """Detach *place*'s file, if attached (its lock released for others)."""
        if self._pin is not None:
            compat.execute_dedicated(self._pin, f"detach database if exists {quote(place.catalog)}")

    def release(self) -> None:
        """Detach the run-level file and close the connection that kept it (teardown)."""
        if self._pin is None:
            return
        if self.place is not None:
            with suppress(Exception):  # the file goes with the run's folder anyway
                self.detach(self.place)
        pin, self._pin = self._pin, None
        compat.close_dedicated_connection(pin)


class SharedBuild:
    """One worker's side of the run-level build: its manifest, and the build done once.

    *work* gives the unique ids of the nodes of every collected build item, and of every
    collected data test, of the whole run (every worker collects the same items).
    """

    def __init__(
        self,
        session: SharedHost,
        place: SharedPlace,
        work: Callable[[], tuple[Sequence[str], Sequence[str]]],
    ) -> None:
        self.session = session
        self.place = place
        self.work = work
        self._manifest: Any = None
        self._results: SharedResults | None = None

    @property
    def manifest(self) -> Any:
        """The run's manifest moved into the run-level schema and catalog (made once)."""
        if self._manifest is None:
            self._manifest = self.session.manifest(self.place)
        return self._manifest

    def results(self, build: Callable[[], SharedResults]) -> SharedResults:
        """The run-level build's results: read from the file when a worker built already,
        else made by *build* (which runs dbt) with the file attached for writing.

        Either way the file is attached read-only afterwards, for the data tests. A build
        that stopped with a dbtproof error is recorded as such: every worker raises it,
        none builds again.
        """
        if self._results is not None:
            return self._results
        self.manifest  # noqa: B018 - moved before the wait: the build is the slow part
        results_file = self.place.folder / RESULTS_FILE
        with _locked(self.place.folder):
            if results_file.is_file():
                results = SharedResults.from_json(results_file.read_text())
            else:
                self.session.attach(self.place, read_only=False)
                try:
                    results = build()
                except DbtproofError as exc:
                    _write(results_file, SharedResults([], [], error=str(exc)))
                    raise
                finally:
                    self.session.detach(self.place)
                _write(results_file, results)
        if results.error is not None:
            raise DbtRunError(f"{results.error}\n(the run-level build, shared by every worker)")
        self.session.attach(self.place, read_only=True)
        self._results = results
        return results


def _write(results_file: Path, results: SharedResults) -> None:
    """Write *results* whole, so that a reader never sees half of them."""
    partial = results_file.with_name(RESULTS_FILE + f".{os.getpid()}.partial")
    partial.write_text(results.to_json())
    partial.replace(results_file)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the run-level build's lock (waiting as long as the build takes: a worker
    that dies releases it with its process)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
