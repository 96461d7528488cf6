"""Under ``pytest -n``: the project's nodes built once for the run, read by every worker.

dbt's data tests only read. Under xdist (``--dist load``, the default of ``-n``), the
items of ``dbt_project.yml`` are split over the workers (:mod:`dbtproof.plugin.scheduling`);
what all of them need is built once, in a run-level place, and each worker runs its
share of the data tests against it:

* the place is the run's schema ``<run id>_shared`` (and its ``<run id>_shared_<custom>``
  schemas): on DuckDB in a file of its own (its catalog :data:`CATALOG`), on PostgreSQL
  in the target's database; the lock, the results file (and DuckDB's file) are in a folder
  the xdist controller made for the run and removes when the run ends. The schemas are
  named as the run's namespaces are, so the run's liveness mark (every worker holds it)
  keeps them alive for ``dbtproof clean``, the guard leaves them alone as the run's, and
  ``clean`` drops them once the run is dead; on PostgreSQL the run's last worker drops
  them at its teardown (the last to let go of the run's advisory lock:
  :meth:`dbtproof.safety.liveness.LivenessMark.last_of_run`);
* each worker moves a fresh copy of the controller's parse there
  (:meth:`SharedHost.manifest`, the session's placement): the same relocation as its own
  namespace's, in the run-level schema (and DuckDB's catalog);
* the first worker to need a node takes the folder's lock, makes the place ready for
  writing (:meth:`SharedHost.attach`), builds the trunk of what the run's collected items
  need (everything, unless the build splits: :mod:`dbtproof.project.build_split`) in one
  ``dbt build`` per level (:class:`dbtproof.plugin.batches.DbtTestBatches`), with as many
  dbt threads as the run has workers (the others wait), hands the place back
  (:meth:`SharedHost.detach`) and writes each node's result, and the groups left, to
  :data:`RESULTS_FILE`; a worker that finds the results reads them instead;
* on PostgreSQL (several writers; DuckDB lets one process write a file) each worker then
  takes every group nobody took yet (its own lock, taken without waiting, and results
  file ``group-<n>.json``), builds it beside the others on twice its share of the threads
  (:meth:`SharedHost.join`, then :meth:`SharedHost.detach`), and waits for the groups
  the others took; a group whose worker died before its results is built by the next
  worker to wait for it (with a run role, what the dead worker's role made there is
  still its own: those nodes then fail, as a rebuilt trunk's would);
* every worker then reads the place (DuckDB: the file attached read-only, which many
  processes may do while nobody writes it) and its data tests read it.

What a pytest test builds or runs itself (``dbt.build``, ``run_model``) stays in the
worker's own namespace. This module owns the place, the lock, the results file and the
session's side of the place (``session.shared``): :class:`SharedAttachment` on DuckDB
(the file attached through a connection of its own), :class:`SharedSchemas` on
PostgreSQL (with a run role, the schemas owned by a role of the build's own, which each
worker's run role joins: see :meth:`dbtproof.session.access.SessionAccess.share_run_schemas`);
the session's placement makes the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dbtproof import _dbt_compat as compat
from dbtproof.errors import DbtproofError, DbtRunError
from dbtproof.safety import namespace as ns
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
#: The first part of the run-level build: the whole build, or what its groups need.
TRUNK = "built"
#: Where the worker that built the trunk writes each node's result, for the others (each
#: group's in ``group-<n>.json``).
RESULTS_FILE = f"{TRUNK}.json"
#: Adapters whose run-level build is implemented.
SUPPORTED = ("duckdb", "postgres")
#: Adapters whose run-level build splits into groups built by several workers at once.
SPLITTING = ("postgres",)


def supported(adapter_type: str) -> bool:
    """Whether the project's nodes can be built once for all workers on *adapter_type*."""
    return adapter_type in SUPPORTED and fcntl is not None


def splits(adapter_type: str) -> bool:
    """Whether workers may build parts of the run-level build side by side on
    *adapter_type*: on PostgreSQL, yes; DuckDB lets one process write a file."""
    return adapter_type in SPLITTING and supported(adapter_type)


@dataclass(frozen=True)
class SharedPlace:
    """Where a run's run-level build lives."""

    #: The run's folder for it (lock, results, the DuckDB file, external files).
    folder: Path
    #: The run-level schema, ``<run id>_shared``: inside the run's namespace.
    schema: str
    #: The DuckDB catalog the file is attached as (None: the target's own database).
    catalog: str | None = CATALOG

    @classmethod
    def of_run(cls, folder: Path, run_id: str, adapter_type: str = "duckdb") -> SharedPlace:
        """The place of run *run_id* on *adapter_type*, whose folder the controller made
        at *folder*: DuckDB's in a file of its own, the others' in the target's database."""
        catalog = CATALOG if adapter_type == "duckdb" else None
        return cls(folder=folder, schema=f"{run_id}_shared", catalog=catalog)

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
    #: The trunk's results only: the groups of nodes left to build, each by one worker at
    #: the same time as the others (:mod:`dbtproof.project.build_split`); empty: none.
    groups: list[list[str]] = field(default_factory=list)

    def to_json(self) -> str:
        """The results as the results file holds them."""
        return json.dumps(
            {
                "built": self.built,
                "nodes": [asdict(node) for node in self.nodes],
                "hook_failure": self.hook_failure,
                "error": self.error,
                "groups": self.groups,
            }
        )

    def joined(self, *others: SharedResults) -> SharedResults:
        """These results and the groups' *others*, as one build's (the first hook failure
        and error of them all)."""
        everything = [self, *others]
        return SharedResults(
            built=[uid for part in everything for uid in part.built],
            nodes=[node for part in everything for node in part.nodes],
            hook_failure=next((p.hook_failure for p in everything if p.hook_failure), None),
            error=next((p.error for p in everything if p.error), None),
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
            groups=[list(group) for group in data.get("groups") or []],
        )


class SharedHost(Protocol):
    """What :class:`SharedBuild` needs of the worker's session: its
    :class:`SharedAttachment` or :class:`SharedSchemas` (``session.shared``)."""

    def manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the controller's parse moved to *place*."""

    def attach(self, place: SharedPlace, read_only: bool) -> None:
        """Make *place* ready to be read, or written by the one worker that builds it."""

    def join(self, place: SharedPlace) -> None:
        """Make *place*, made by the trunk's builder, ready for this worker to build a group
        in it while others build theirs."""

    def detach(self, place: SharedPlace) -> None:
        """After the build: hand *place* over to every worker."""

    def release(self) -> None:
        """The session's teardown: let go of what the place holds in this process."""


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

    def join(self, place: SharedPlace) -> None:
        """Attach *place*'s file for writing: DuckDB lets one process write a file, so its
        build never splits into groups (:attr:`SharedBuild.splits`) and this is the one
        writer."""
        self.attach(place, read_only=False)

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


class SharedSchemas:
    """PostgreSQL: one worker's side of the run-level schemas, in the target's database.

    Nothing is attached: the schemas are the database's. With a run role (which may not
    create schemas), *share* (the session's
    :meth:`~dbtproof.session.access.SessionAccess.share_run_schemas`) is given the place's
    schema and the schemas the build writes before it (none before reading): they are
    made as the identity, owned by a role of the run-level build's own
    (``<run id>_shared_role``), which this worker's run role joins, so that every worker
    reads them. After each part of the build it made, *hand_over* (the session's
    :meth:`~dbtproof.session.access.SessionAccess.hand_over_to_run`) gives what the
    builder's run role made to that role, so that the builder's teardown (which drops what
    its role owns) leaves the build to the workers still reading it. The run's last worker
    drops the schemas (and that role) at its teardown. Without a run role both do nothing:
    dbt makes the schemas, and every worker is the same identity.
    """

    def __init__(
        self,
        place: SharedPlace | None,
        make_manifest: Callable[[SharedPlace], Any],
        share: Callable[[str, Sequence[str]], None],
        hand_over: Callable[[str], None],
    ) -> None:
        self.place = place
        self._make_manifest = make_manifest
        self._share = share
        self._hand_over = hand_over
        #: The schemas the last manifest made writes (the run-level schema and its others).
        self.schemas: list[str] = []

    def manifest(self, place: SharedPlace) -> Any:
        """A fresh copy of the xdist controller's parse moved to *place*."""
        manifest = self._make_manifest(place)
        written = {str(node.schema) for node in ns.writing_nodes(manifest)}
        self.schemas = sorted(
            {place.schema, *(s for s in written if ns.belongs_to(s, place.schema))}
        )
        return manifest

    def attach(self, place: SharedPlace, read_only: bool) -> None:
        """Before the build, its schemas made (with a run role); before reading, the run's
        own role joined (with a run role)."""
        self._share(place.schema, () if read_only else self.schemas)

    def join(self, place: SharedPlace) -> None:
        """Before building a group: the run's own role joined (the schemas are made)."""
        self._share(place.schema, ())

    def detach(self, place: SharedPlace) -> None:
        """After the build: what this worker's run role made handed to the build's owner."""
        self._hand_over(place.schema)

    def release(self) -> None:
        """Nothing held in this process: the run's last worker drops the schemas
        (:meth:`dbtproof.session.teardown.SessionTeardown.run`)."""


class SharedBuild:
    """One worker's side of the run-level build: its manifest, and the build done once.

    *work* gives the unique ids of the nodes of every collected build item, and of every
    collected data test, of the whole run (every worker collects the same items).
    *threads*: the dbt threads the trunk runs on at least (the run's number of workers:
    the others wait for it, so their cores are its own; each group twice its worker's
    share; None: the profile's).
    *splits*: whether the build may split into groups that workers build side by side
    (:func:`splits`).
    """

    def __init__(
        self,
        session: SharedHost,
        place: SharedPlace,
        work: Callable[[], tuple[Sequence[str], Sequence[str]]],
        threads: int | None = None,
        splits: bool = False,
    ) -> None:
        self.session = session
        self.place = place
        self.work = work
        self.threads = threads
        self.splits = splits
        self._manifest: Any = None
        self._results: SharedResults | None = None

    @property
    def manifest(self) -> Any:
        """The run's manifest moved into the run-level schema and catalog (made once)."""
        if self._manifest is None:
            self._manifest = self.session.manifest(self.place)
        return self._manifest

    def results(
        self,
        build: Callable[[], SharedResults],
        build_group: Callable[[Sequence[str], SharedResults], SharedResults] | None = None,
    ) -> SharedResults:
        """The run-level build's results: each part read from its file when a worker built
        it already, else built here with the place ready for writing.

        *build* builds the trunk (the whole build, when it does not split) and names the
        groups left (:attr:`SharedResults.groups`, only where :attr:`splits`); each worker
        then takes every group no worker took yet and builds it with *build_group* (given
        the group and the trunk's results), and waits for the groups the others took. A
        group whose worker died before its results is built by the next one to wait for it.

        Either way the place is read afterwards (DuckDB: the file attached read-only), for
        the data tests. A part that stopped with a dbtproof error is recorded as such:
        every worker raises it, none builds it again.
        """
        if self._results is not None:
            return self._results
        self.manifest  # noqa: B018 - moved before the wait: the build is the slow part
        trunk = self._part(TRUNK, build, made=False)
        assert trunk is not None
        results = trunk
        if trunk.groups and trunk.error is None and build_group is not None:
            parts = {}
            for waiting in (False, True):  # first the groups nobody took, then the others'
                for index, group in enumerate(trunk.groups):
                    if index not in parts:
                        part = self._part(
                            f"group-{index}",
                            lambda group=group: build_group(group, trunk),
                            made=True,
                            wait=waiting,
                        )
                        if part is not None:
                            parts[index] = part
            results = trunk.joined(*(parts[index] for index in sorted(parts)))
        if results.error is not None:
            raise DbtRunError(f"{results.error}\n(the run-level build, shared by every worker)")
        self.session.attach(self.place, read_only=True)
        self._results = results
        return results

    def _part(
        self, name: str, build: Callable[[], SharedResults], made: bool, wait: bool = True
    ) -> SharedResults | None:
        """One part of the run-level build (:data:`TRUNK`, a group): read from its file when
        a worker built it, else built by *build* under the part's lock, the place ready for
        writing (*made*: its schemas made by the trunk's builder already). Without *wait*,
        None when another worker holds the part."""
        results_file = self.place.folder / f"{name}.json"
        with _locked(self.place.folder, name, wait) as held:
            if not held:
                return None
            if results_file.is_file():
                return SharedResults.from_json(results_file.read_text())
            if made:
                self.session.join(self.place)
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
            return results


def _write(results_file: Path, results: SharedResults) -> None:
    """Write *results* whole, so that a reader never sees half of them."""
    partial = results_file.with_name(f"{results_file.name}.{os.getpid()}.partial")
    partial.write_text(results.to_json())
    partial.replace(results_file)


@contextmanager
def _locked(folder: Path, name: str = TRUNK, wait: bool = True) -> Iterator[bool]:
    """Hold the lock of the part *name* of the run-level build: waiting as long as its build
    takes (a worker that dies releases it with its process), or, without *wait*, yield
    False at once when another worker holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
