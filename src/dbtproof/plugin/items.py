"""dbt's own tests, and the build of each node, as pytest items: collection and reporting.

``dbt_project.yml`` becomes a pytest file; each model, seed, snapshot (or
source with tests) becomes a collector, in DAG order; the build of each model,
seed and snapshot becomes its collector's first item, ``build``
(``dbt_project.yml::orders::build``), and each data test and each native unit
test an item after it, e.g. ``dbt_project.yml::orders::unique_orders_order_id``; a node
with a ``grants:`` config gets a ``grants`` item after its build, which checks (after the
build) that its relation carries exactly those privileges (:mod:`dbtproof.safety.grants`).
dbt tags become pytest markers (a tag that would mean something to pytest gets the prefix
``dbt_``, see :func:`tag_markers`). Running is delegated to
:mod:`dbtproof.plugin.batches`, which batches the work.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbtproof.errors import (
    DbtBuildFailed,
    DbtConnectionFault,
    DbtGrantsError,
    DbtGrantsMismatch,
    DbtHookError,
    DbtproofError,
    DbtTestFailed,
    DbtTestWarning,
    DbtUnitTestError,
    DbtUnitTestFailed,
    DbtUpstreamError,
    skip_here,
)
from dbtproof.plugin.selection import selection_for
from dbtproof.plugin.state import state_key
from dbtproof.project.nodes import BUILDABLE, FUNCTION, graph_nodes, resource_type
from dbtproof.safety.grants import GRANTS_ITEM, has_grants, unknown_roles_message
from dbtproof.session.runner import SEE_DBT_LOG

if TYPE_CHECKING:
    from dbtproof.plugin.batches import DbtTestBatches, TestOutcome
    from dbtproof.plugin.native_unit import UnitTestResult

#: Group of singular tests that read several (or no) models.
SINGULAR_GROUP = "singular"


#: The name of a node's build item.
BUILD_ITEM = "build"

#: Markers pytest gives a meaning to, whether or not a config registers them (and the
#: spellings of ``parametrize`` pytest refuses), and dbtproof's own.
PYTEST_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "usefixtures", "parametrize", "filterwarnings", "tryfirst",
     "trylast", "parameterize", "parametrise", "parameterise", "dbt"}
)  # fmt: skip
#: The prefix of a dbt tag's marker when the tag itself cannot be one.
TAG_MARKER_PREFIX = "dbt_"
_TAG_MARKERS = pytest.StashKey[dict[str, str]]()


def tag_markers(tags: Iterable[str], registered: Iterable[str]) -> dict[str, str]:
    """The pytest marker of each dbt tag: the tag itself, so that ``-m nightly`` picks it.

    A tag must never change a verdict, so a tag named like a marker pytest or a plugin
    gives a meaning to (``skip``, ``xfail``, ``usefixtures``, ``timeout``, any marker in
    *registered*) becomes ``dbt_<tag>`` (``-m dbt_skip``); so does a tag that is not a
    Python identifier, its other characters as ``_`` (``nightly-eu`` -> ``dbt_nightly_eu``).
    Empty tags get no marker.
    """
    reserved = PYTEST_MARKERS | set(registered)
    markers: dict[str, str] = {}
    for tag in tags:
        if not tag:
            continue
        if tag.isidentifier() and not tag.startswith("_") and tag not in reserved:
            markers[tag] = tag
        else:
            markers[tag] = TAG_MARKER_PREFIX + re.sub(r"\W", "_", tag)
    return markers


def registered_markers(config: pytest.Config) -> set[str]:
    """Names of the markers registered with *config* (ini files, plugins, pytest itself)."""
    return {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}


class GroupNames:
    """The collector (group) names of a manifest's nodes and tests.

    A model, seed, snapshot or function is named by its name (``orders``; a versioned
    model ``dim_v2``, as dbt names its unit tests), or ``<package>.<name>`` when nodes of
    several packages share that name (a function sharing its name with a model or a seed:
    by its unique id, ``function.shop.orders``); a source by
    ``<source>.<table>``. A test belongs to the node it tests; singular tests that read
    several (or no) nodes belong to ``singular``.
    """

    def __init__(self, manifest: Any) -> None:
        self.manifest = manifest
        self.nodes = graph_nodes(manifest)
        by_name: dict[str, list[str]] = {}
        for uid, node in self.nodes.items():
            if resource_type(node) in BUILDABLE:
                by_name.setdefault(_plain_name(node), []).append(uid)
        self._qualified = {uid for uids in by_name.values() if len(uids) > 1 for uid in uids}

    def of_node(self, unique_id: str) -> str | None:
        """The group of the model, seed, snapshot, function or source *unique_id* (None if
        unknown)."""
        if unique_id in self.nodes:
            node = self.nodes[unique_id]
            if unique_id in self._qualified:
                if resource_type(node) == FUNCTION:  # beside a model of its name
                    return unique_id
                return f"{node.package_name}.{_plain_name(node)}"
            return _plain_name(node)
        if unique_id in self.manifest.sources:
            source = self.manifest.sources[unique_id]
            return f"{source.source_name}.{source.name}"
        return None

    def of_test(self, node: Any) -> tuple[str, str | None]:
        """The group of a data test or unit test, and the node it is attached to (if any)."""
        if resource_type(node) == "unit_test":
            parents = [p for p in node.depends_on.nodes if p in self.manifest.nodes]
            if len(parents) == 1:
                return str(self.of_node(parents[0])), parents[0]
            version = getattr(node, "version", None)
            return (f"{node.model}_v{version}" if version is not None else str(node.model)), None
        attached = getattr(node, "attached_node", None)
        if attached is None and len(node.depends_on.nodes) == 1:
            attached = node.depends_on.nodes[0]
        name = self.of_node(attached) if attached else None
        return (name, attached) if name is not None else (SINGULAR_GROUP, None)


def _plain_name(node: Any) -> str:
    version = getattr(node, "version", None) if resource_type(node) == "model" else None
    return f"{node.name}_v{version}" if version is not None else str(node.name)


def group_name(manifest: Any, node: Any) -> str:
    """The model, seed, snapshot or source a test belongs to (its collector's name)."""
    return GroupNames(manifest).of_test(node)[0]


def item_name(node: Any) -> str:
    """The test's name; a unit test of a versioned model gets dbt's ``_v<N>`` suffix."""
    if resource_type(node) == "unit_test":
        return str(node.unique_id).rsplit(".", 1)[-1]
    return str(node.name)


def dag_depths(manifest: Any) -> dict[str, int]:
    """Each node's and source's depth in the DAG: 0 without parents, else 1 + its deepest parent."""
    from graphlib import TopologicalSorter

    everything = {**manifest.sources, **graph_nodes(manifest)}
    parents = {
        uid: [
            p
            for p in getattr(getattr(node, "depends_on", None), "nodes", None) or []
            if p in everything
        ]
        for uid, node in everything.items()
    }
    depths: dict[str, int] = {}
    for uid in TopologicalSorter(parents).static_order():
        depths[uid] = 1 + max((depths[p] for p in parents[uid]), default=-1)
    return depths


class DbtProjectFile(pytest.File):
    """``dbt_project.yml`` as a pytest file: collects the project's builds and dbt tests."""

    def collect(self) -> Iterator[pytest.Collector]:
        state = self.config.stash.get(state_key, None)
        if state is None or state.session is None:
            return
        session = state.session
        manifest = session.manifest
        names = GroupNames(manifest)
        groups: dict[str, dict[str, Any]] = {}
        tags: set[str] = set()
        if state.selection is not None:
            tests, nodes = state.selection
        else:
            tests, nodes = selection_for(self.config, session)
        if state.round_affected is not None:  # a watch round: only what the save affects
            nodes = [node for node in nodes if node.unique_id in state.round_affected]
            tests = [node for node in tests if node.unique_id in state.round_affected]
        for node in nodes:
            name = str(names.of_node(node.unique_id))
            groups[name] = {"anchor": node.unique_id, "build": node, "tests": []}
            tags.update(getattr(node, "tags", []) or [])
        for node in tests:
            name, anchor = names.of_test(node)
            group = groups.setdefault(name, {"anchor": anchor, "build": None, "tests": []})
            group["tests"].append(node)
            tags.update(getattr(node, "tags", []) or [])
        markers = tag_markers(sorted(tags), registered_markers(self.config))
        self.config.stash[_TAG_MARKERS] = markers
        for tag, marker in markers.items():  # dbt tags are markers: declare each once
            self.config.addinivalue_line("markers", f"{marker}: dbt tag {tag!r}")
        # Groups in DAG order (then by name), singular tests last: builds come before the
        # builds and tests downstream of them. Correctness does not depend on the order
        # (every batch builds all a pending item needs); it only reads naturally.
        depths = dag_depths(manifest)
        last = max(depths.values(), default=0) + 1

        def order(name: str) -> tuple[int, str]:
            return depths.get(groups[name]["anchor"], last), name

        grants = not self.config.getoption("no_dbt_grants")
        for name in sorted(groups, key=order):
            group = groups[name]
            yield DbtNodeGroup.from_parent(
                self, name=name, tests=group["tests"], build=group["build"], grants=grants
            )


class DbtNodeGroup(pytest.Collector):
    """The build of one model, seed or snapshot and its dbt tests (or a source's tests)."""

    def __init__(
        self, *, tests: Sequence[Any], build: Any = None, grants: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.tests = list(tests)
        self.build = build
        self.grants = grants

    def collect(self) -> Iterator[pytest.Item]:
        if self.build is not None:
            yield DbtBuildItem.from_parent(self, name=BUILD_ITEM, node=self.build)
            if self.grants and has_grants(self.build):
                yield DbtGrantsItem.from_parent(self, name=GRANTS_ITEM, node=self.build)
        for node in sorted(self.tests, key=item_name):
            yield DbtTestItem.from_parent(self, name=item_name(node), node=node)


class _DbtItem(pytest.Item):
    """An item run through the worker's :class:`DbtTestBatches`; dbt tags are its markers."""

    kind = ""

    def __init__(self, *, node: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unique_id: str = node.unique_id
        self.original_file_path = str(node.original_file_path)
        self.dbt_outcome: TestOutcome | None = None
        self.unit_result: UnitTestResult | None = None
        markers = self.config.stash.get(_TAG_MARKERS, {})
        for tag in sorted(set(getattr(node, "tags", []) or [])):
            if tag in markers:
                self.add_marker(markers[tag])
        self.add_marker("dbt")

    def _batches(self) -> DbtTestBatches:
        state = self.config.stash[state_key]
        if state.test_batches is None:
            from dbtproof.plugin.batches import DbtTestBatches

            session = state.session
            assert session is not None
            store_failures = self.config.getoption("dbt_store_failures")
            shared = None
            if session.shared_place is not None and not store_failures:
                from dbtproof.session.shared_build import SharedBuild, splits

                pytest_session = self.session
                workers = getattr(self.config, "workerinput", {}).get("workercount")
                shared = SharedBuild(
                    session.shared,
                    session.shared_place,
                    lambda: collected_work(pytest_session),
                    threads=int(workers) if workers else None,
                    splits=splits(session.adapter_type),
                )
            unit_gate = None
            if unit_tests_gate(self.config):  # the collected unit tests, as dbt's selected
                unit_gate = [
                    item.unique_id
                    for item in self.session.items
                    if isinstance(item, DbtTestItem) and item.kind == "unit"
                ]
            state.test_batches = DbtTestBatches(
                session,
                store_failures=store_failures,
                shared=shared,
                unit_gate=unit_gate,
                batched=bool(self.config.getini("dbt_batch_data_tests")),
            )
        return state.test_batches


class DbtBuildItem(_DbtItem):
    """The build of one model, seed or snapshot (``dbt build`` of that node), run by dbtproof."""

    kind = "build"

    def __init__(self, *, node: Any, **kwargs: Any) -> None:
        super().__init__(node=node, **kwargs)
        self.resource_type = resource_type(node)
        self.node_name = str(node.name)

    def setup(self) -> None:
        """Build the pending nodes, run the pending tests (once); raise if an upstream failed."""
        batches = self._batches()
        outcome = batches.build_outcomes.get(self.unique_id)
        if outcome is None:
            builds, tests = pending_work(self)
            outcome = batches.build_outcome(self.unique_id, builds, tests)
        self.dbt_outcome = outcome
        _raise_for_setup(outcome)

    def runtest(self) -> None:
        """Report the build: passes when dbt built the node, fails with dbt's message."""
        outcome = self.dbt_outcome
        assert outcome is not None
        if outcome.status not in ("success", "pass"):
            raise DbtBuildFailed(outcome)

    def _what(self) -> str:
        return f"{self.resource_type} {self.node_name} ({self.original_file_path})"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def]
        """A failed build: dbt's status and message; a skipped one: the upstream that failed."""
        if isinstance(excinfo.value, DbtUpstreamError):
            return (
                f"dbt build of {self._what()} could not run: upstream failed to build: "
                f"{excinfo.value}"
            )
        if isinstance(excinfo.value, DbtHookError):
            what = self._what()
            return f"dbt build of {what}: a hook of its dbt invocation failed:\n{excinfo.value}"
        if isinstance(excinfo.value, DbtConnectionFault):
            return (
                f"dbt build of {self._what()} could not run: the connection to the warehouse "
                f"failed (not retried: a build writes): {excinfo.value}"
            )
        if isinstance(excinfo.value, DbtBuildFailed):
            outcome = self.dbt_outcome
            status = outcome.status if outcome else "error"
            message = (outcome.message if outcome else None) or f"(no message; {SEE_DBT_LOG})"
            return f"dbt build of {self._what()}: {status}\n{message}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The node built, for pytest's reports (line 0: pytest places a skip mark there)."""
        return self.path, 0, f"dbt build of {self._what()}"


class DbtGrantsItem(_DbtItem):
    """The grants of one model, seed or snapshot: after its build, its relation carries
    exactly the privileges its ``grants:`` config asks for (mapped by ``dbt_grant_roles``)."""

    kind = "grants"

    def __init__(self, *, node: Any, **kwargs: Any) -> None:
        super().__init__(node=node, **kwargs)
        self.resource_type = resource_type(node)
        self.node_name = str(node.name)
        self.build_outcome: TestOutcome | None = None

    def _what(self) -> str:
        return f"{self.resource_type} {self.node_name} ({self.original_file_path})"

    def setup(self) -> None:
        """Skip where the adapter applies no grants; error on a grantee the warehouse
        lacks; build the node (with the pending work) if it is not built yet."""
        session = self.config.stash[state_key].session
        assert session is not None
        plan = session.access.grants
        if plan is None:
            skip_here(
                f"dbtproof: the {session.adapter_type} adapter has no grants (dbt does not "
                f"apply them there): the grants of {self._what()} cannot be checked"
            )
        planned = plan.nodes.get(self.unique_id)
        if planned is not None and planned.unknown:
            raise DbtGrantsError(unknown_roles_message(self._what(), planned.unknown, plan.mapping))
        batches = self._batches()
        outcome = batches.build_outcomes.get(self.unique_id)
        if outcome is None:
            builds, tests = pending_work(self)
            outcome = batches.build_outcome(self.unique_id, [self.unique_id, *builds], tests)
        self.build_outcome = outcome
        _raise_for_setup(outcome)
        if outcome.status not in ("success", "pass"):
            raise DbtUpstreamError(f"{self.unique_id} {outcome.status}: {outcome.message or ''}")

    def runtest(self) -> None:
        """Read the relation's privileges back and compare them with the config."""
        session = self.config.stash[state_key].session
        assert session is not None
        shared = self._batches().shared  # the run-level build's relation, when it built it
        if shared is not None:
            diff = session.access.check_grants(self.unique_id, shared.manifest, shared.place.schema)
        else:
            diff = session.access.check_grants(self.unique_id)
        if diff:
            raise DbtGrantsMismatch(diff.describe())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def]
        """A mismatch: configured, found, and the diff; an unknown role: the ways out."""
        value = excinfo.value
        if isinstance(value, DbtGrantsMismatch):
            return f"grants of {self._what()} differ from its grants: config:\n{value}"
        if isinstance(value, DbtGrantsError):
            return str(value)
        if isinstance(value, DbtUpstreamError):
            return f"grants of {self._what()} could not be checked: it did not build: {value}"
        if isinstance(value, DbtHookError):
            return f"grants of {self._what()}: a hook of its dbt invocation failed:\n{value}"
        if isinstance(value, DbtConnectionFault):
            return (
                f"grants of {self._what()} could not be checked: the connection to the "
                f"warehouse failed: {value}"
            )
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The node whose grants are checked, for pytest's reports."""
        return self.path, 0, f"grants of {self._what()}"


class DbtTestItem(_DbtItem):
    """One dbt data test or native unit test, run by dbtproof."""

    def __init__(self, *, node: Any, **kwargs: Any) -> None:
        super().__init__(node=node, **kwargs)
        self.kind = "unit" if resource_type(node) == "unit_test" else "data"

    def setup(self) -> None:
        """Data tests: run this test's batch (once); raise if an upstream failed to build.

        Unit tests: run the model on the fixtures; a model or fixture that cannot run is
        an error of this item (as dbt reports it), not a failure.
        """
        if self.kind == "unit":
            if unit_tests_gate(self.config):
                self._gate_unit_test()
            self._run_unit_test()
            return
        batches = self._batches()
        outcome = batches.outcomes.get(self.unique_id)
        if outcome is None:
            builds, tests = pending_work(self)
            outcome = batches.outcome(self.unique_id, tests, builds)
        self.dbt_outcome = outcome
        _raise_for_setup(outcome)

    def runtest(self) -> None:
        """Report the dbt test's outcome: pass, warn (passes with a warning) or fail."""
        if self.kind == "unit":
            if self.unit_result is not None and not self.unit_result.passed:
                raise DbtUnitTestFailed("\n".join(self.unit_result.diff))
            return
        outcome = self.dbt_outcome
        assert outcome is not None
        if outcome.status == "warn":
            self.user_properties.append(("dbtproof_warned", "true"))
            warnings.warn(DbtTestWarning(f"{self.name}: {_describe(outcome)}"), stacklevel=1)
        elif outcome.status not in ("pass", "success"):
            raise DbtTestFailed(outcome)

    def _gate_unit_test(self) -> None:
        """With the unit tests gate, as in ``dbt build``: the pending builds first (the gate
        runs the unit tests of the models they build before building any); a unit test of
        a model downstream of one the gate skips is skipped."""
        batches = self._batches()
        builds, tests = pending_work(self)
        batches.run_pending(builds, tests)
        gate = batches.gated_by(self.unique_id)
        if gate:
            skip_here(gate)

    def _run_unit_test(self) -> None:
        """A native unit test runs through dbtproof's model engine; nothing is built."""
        import time

        from dbtproof.plugin.native_unit import run_native_unit_test

        session = self.config.stash[state_key].session
        assert session is not None
        start = time.perf_counter()
        try:
            if unit_tests_gate(self.config):  # the gate ran it before the builds, or runs it
                self.unit_result = self._batches().unit_result(self.unique_id)
            else:
                self.unit_result = run_native_unit_test(
                    session, session.manifest.unit_tests[self.unique_id]
                )
        except DbtproofError as exc:
            raise DbtUnitTestError(str(exc)) from None
        finally:
            self.unit_seconds = time.perf_counter() - start

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def]
        """A failing test: how many rows failed, the first rows, and the compiled SQL."""
        if isinstance(excinfo.value, DbtUpstreamError):
            return f"dbt test {self.name} could not run: upstream failed to build: {excinfo.value}"
        if isinstance(excinfo.value, DbtHookError):
            return f"dbt test {self.name}: a hook of its dbt invocation failed:\n{excinfo.value}"
        if isinstance(excinfo.value, DbtConnectionFault):
            return (
                f"dbt test {self.name} could not run: the connection to the warehouse failed, "
                f"and again when the test ran once more: {excinfo.value}"
            )
        if isinstance(excinfo.value, DbtUnitTestError):
            return (
                f"dbt unit test {self.name} could not run ({self.original_file_path}):\n"
                f"{excinfo.value}"
            )
        if isinstance(excinfo.value, DbtUnitTestFailed):
            return f"dbt unit test {self.name} failed ({self.original_file_path}):\n{excinfo.value}"
        if isinstance(excinfo.value, DbtTestFailed):
            return format_failure(self.name, self.dbt_outcome)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the test is defined, for pytest's reports (line 0: pytest places a skip there)."""
        return self.path, 0, f"dbt {self.kind} test {self.name} ({self.original_file_path})"


def unit_tests_gate(config: pytest.Config) -> bool:
    """Whether a failing native unit test skips its model and what is downstream, as in
    ``dbt build`` (``--dbt-unit-tests-gate``, ini ``dbt_unit_tests_gate``)."""
    gate = config.getoption("dbt_unit_tests_gate")
    return bool(config.getini("dbt_unit_tests_gate") if gate is None else gate)


def _raise_for_setup(outcome: TestOutcome) -> None:
    """An item whose upstream failed to build, or whose dbt invocation's hook failed, errors;
    one the unit tests gate skips (``--dbt-unit-tests-gate``) is skipped, as dbt reports it."""
    if outcome.gated_by:
        skip_here(outcome.gated_by)
    if outcome.upstream_failure:
        raise DbtUpstreamError(outcome.upstream_failure)
    if outcome.hook_failure:
        raise DbtHookError(outcome.hook_failure)
    if outcome.connection_fault:
        raise DbtConnectionFault(outcome.connection_fault)


def _describe(outcome: TestOutcome) -> str:
    if outcome.failures:
        return f"{outcome.failures} failing row(s)"
    return outcome.message or outcome.status


def format_failure(name: str, outcome: TestOutcome | None) -> str:
    """The report of a failed dbt test: status, failing rows (up to 10), compiled SQL."""
    if outcome is None:
        return f"dbt test {name} failed"
    lines = [f"dbt test {name} {outcome.status}: {_describe(outcome)}"]
    is_unit = outcome.unique_id.startswith("unit_test.")
    if outcome.message and (outcome.status == "error" or is_unit):
        lines.append(str(outcome.message))
    if outcome.failing_rows is not None and len(outcome.failing_rows):
        shown = len(outcome.failing_rows)
        lines += ["", f"First {shown} failing row(s):", repr(outcome.failing_rows)]
    if outcome.compiled_code:
        lines += ["", "--- compiled SQL ---", outcome.compiled_code.strip()]
    return "\n".join(lines)


def collected_work(session: pytest.Session) -> tuple[list[str], list[str]]:
    """The unique ids of the nodes of every build item, and of every dbt data test, the
    whole run collected (every xdist worker collects the same): the run-level build's."""
    return _work_of(session.items)


def _work_of(items: Sequence[pytest.Item]) -> tuple[list[str], list[str]]:
    """The unique ids of the nodes of the build items among *items*, and of the data tests."""
    builds = [item.unique_id for item in items if isinstance(item, DbtBuildItem)]
    tests = [
        item.unique_id for item in items if isinstance(item, DbtTestItem) and item.kind == "data"
    ]
    return builds, tests


def pending_work(item: pytest.Item) -> tuple[list[str], list[str]]:
    """What this worker will still run, starting with *item*: the unique ids of the
    nodes of its build items, and of its dbt data tests.

    Under pytest-xdist a worker only knows the items already sent to it; those
    are read from xdist's worker queue. Without xdist every item of the session
    after *item* is pending.
    """
    items = item.session.items
    queued = _xdist_queued_indexes(item.config)
    if queued is None:
        try:
            start = items.index(item)
        except ValueError:
            pending = [item]
        else:
            pending = items[start:]
    else:
        pending = [item, *(items[i] for i in queued if 0 <= i < len(items))]
    return _work_of(pending)


def _xdist_queued_indexes(config: pytest.Config) -> list[int] | None:
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor":
            try:
                with plugin.torun.lock() as queue:
                    indexes = list(queue)
                nxt = getattr(plugin, "nextitem_index", None)
                return [i for i in [nxt, *indexes] if isinstance(i, int)]
            except Exception:  # noqa: BLE001 - xdist internals changed: no batching
                return []
    return None
