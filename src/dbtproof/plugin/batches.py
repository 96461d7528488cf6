"""Running the project's own dbt tests, and building its nodes, on behalf of pytest items.

A dbt task per item would pay dbt's fixed overhead hundreds of times. Instead,
when the first build item or dbt test item of a worker runs,
:class:`DbtTestBatches` takes every build item and every dbt data test still
waiting to run on this worker, builds in one ``dbt build`` invocation the
models, seeds and snapshots of those build items and everything those nodes
and tests need (once per session, skipping what is already built), runs all of
those tests (many to a statement, :mod:`dbtproof.plugin.batched_tests`, and those that cannot be
batched in one ``dbt test`` invocation), and keeps each node's and each
test's outcome for its item to report.

Under ``pytest -n`` on DuckDB and PostgreSQL the build is the run's, not the worker's
(:mod:`dbtproof.session.shared_build`): the first worker to need a node builds what every
collected item of the run needs, once, in the run-level place, on as many dbt threads as
the run has workers (the others wait for it), or on PostgreSQL only its trunk, the rest in
groups the workers build side by side (:mod:`dbtproof.project.build_split`); every worker
reads the results and runs its own share of the data tests there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dbtproof.compare.rows import Rows
from dbtproof.plugin.batched_tests import run_batched
from dbtproof.project.build_split import BuildSplit, split_build
from dbtproof.project.nodes import (
    ancestors,
    built_parents,
    direct_parents,
    fqn_selector,
    graph_nodes,
    is_buildable,
    resource_type,
)
from dbtproof.safety.faults import TRANSIENT, fault_in_text
from dbtproof.session.runner import SEE_DBT_LOG, InvocationResult, NodeResult

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession
    from dbtproof.session.shared_build import SharedBuild, SharedResults

#: How many failing rows a failure report shows.
FAILING_ROWS_SHOWN = 10
#: dbt's statuses of a node that was built, or a test that passed.
SUCCESS = ("success", "pass")
#: The most nodes a ``dbt build`` may build for data tests to run in it too.
RIDE_ALONG_LIMIT = 50
#: How the result of a model a failing unit test keeps from being built starts (the unit
#: tests gate, ``--dbt-unit-tests-gate``): the message read back by every worker.
GATED = "its unit test failed:"


@dataclass
class TestOutcome:
    """What happened to one dbt test, or to the build of one model, seed or snapshot."""

    unique_id: str
    status: str
    message: str | None = None
    failures: int | None = None
    compiled_code: str | None = None
    execution_time: float = 0.0
    #: Set when the test (or node) could not run because something it needs failed to build.
    upstream_failure: str | None = None
    #: Set when a hook (``on-run-start``, ``on-run-end``) of the dbt invocation that ran it failed.
    hook_failure: str | None = None
    #: Set when its connection failed (refused, terminated, a restart): no verdict.
    connection_fault: str | None = None
    #: Set when the unit tests gate skips it: why (the failing unit tests, the model).
    gated_by: str | None = None
    failing_rows: Rows | None = None


def test_node(manifest: Any, unique_id: str) -> Any:
    """The manifest entry of a data test or a unit test."""
    if unique_id in manifest.nodes:
        return manifest.nodes[unique_id]
    return manifest.unit_tests[unique_id]


def feeder_levels(
    manifest: Any, unique_ids: Iterable[str], feeders: Mapping[str, str]
) -> dict[str, int]:
    """In which dbt invocation (0, 1, ...) each node can be built, given source feeders.

    dbt orders one invocation by its own graph, which has no edge from the seed (or
    model) that writes a source's table to the source. A node reading such a source
    must be built in a later invocation than the feeder, unless the feeder is already
    one of its ancestors in dbt's graph (a ``-- depends_on: {{ ref(...) }}`` hint).
    """
    levels: dict[str, int] = {}
    lineage: dict[str, frozenset[str]] = {}
    nodes = graph_nodes(manifest)

    def parents_of(uid: str) -> list[str]:
        return direct_parents(manifest, nodes, uid)

    def graph_ancestors(uid: str) -> frozenset[str]:
        if uid not in lineage:
            lineage[uid] = frozenset()  # a cycle guard; dbt's graph has none
            found: set[str] = set()
            for parent in parents_of(uid):
                found.add(parent)
                found |= graph_ancestors(parent)
            lineage[uid] = frozenset(found)
        return lineage[uid]

    def level(uid: str) -> int:
        if uid in levels:
            return levels[uid]
        levels[uid] = 0  # a cycle guard
        found = 0
        for parent in parents_of(uid):
            feeder = feeders.get(parent)
            if feeder is not None:
                later = 0 if feeder in graph_ancestors(uid) else 1
                found = max(found, level(feeder) + later)
            elif parent not in manifest.sources:
                found = max(found, level(parent))
        levels[uid] = found
        return found

    return {uid: level(uid) for uid in unique_ids}


class DbtTestBatches:
    """Builds nodes and runs dbt tests in batches for one session; remembers each outcome."""

    def __init__(
        self,
        session: DbtSession,
        store_failures: bool = False,
        shared: SharedBuild | None = None,
        unit_gate: Sequence[str] | None = None,
        batched: bool = True,
    ) -> None:
        self.session = session
        self.store_failures = store_failures
        #: Whether data tests run many to a statement (:mod:`dbtproof.plugin.batched_tests`) where
        #: they can, rather than each in ``dbt test``.
        self.batched = batched
        #: The unit tests that gate their model's build as in ``dbt build`` (the collected
        #: ones; None: no gate, every node is built).
        self.unit_gate = list(unit_gate) if unit_gate is not None else None
        #: Each native unit test run so far: its result, or the error it could not run with.
        self.unit_results: dict[str, Any] = {}
        #: The run-level build this worker's items read (None: the worker builds its own).
        self.shared = shared
        self._shared_taken = False
        #: Outcome of each dbt test that ran (or could not run).
        self.outcomes: dict[str, TestOutcome] = {}
        #: Outcome of each build item's node.
        self.build_outcomes: dict[str, TestOutcome] = {}
        #: dbt's result for each node the batches built (or tried to build).
        self.built: dict[str, NodeResult] = {}
        #: Buildable nodes that failed (or were skipped) when built, with dbt's message.
        self.broken: dict[str, str] = {}
        self._source_exists: dict[str, bool] = {}

    @property
    def _feeders(self) -> Mapping[str, str]:
        relocation = self.session.relocation
        return relocation.feeders if relocation is not None else {}

    def outcome(
        self, unique_id: str, pending: Sequence[str] = (), pending_builds: Sequence[str] = ()
    ) -> TestOutcome:
        """The outcome of the dbt test *unique_id*, running the pending work first if needed."""
        if unique_id not in self.outcomes:
            self.run_pending(pending_builds, [unique_id, *pending])
        return self.outcomes[unique_id]

    def build_outcome(
        self, unique_id: str, pending_builds: Sequence[str] = (), pending: Sequence[str] = ()
    ) -> TestOutcome:
        """The outcome of building the node *unique_id*, running the pending work if needed."""
        if unique_id not in self.build_outcomes:
            self.run_pending([unique_id, *pending_builds], pending)
        return self.build_outcomes[unique_id]

    def run_pending(self, builds: Sequence[str], tests: Sequence[str]) -> None:
        """Build the nodes *builds* and what *tests* need in one ``dbt build``; run *tests*.

        *builds* are unique ids of models, seeds and snapshots (build items); *tests*
        of data tests. Whatever already has an outcome is left out.
        """
        builds = [uid for uid in dict.fromkeys(builds) if uid not in self.build_outcomes]
        tests = [uid for uid in dict.fromkeys(tests) if uid not in self.outcomes]
        ran: InvocationResult | None = None
        if self.shared is not None:
            built, hook_failure = self._shared_build()
        else:
            built, hook_failure, ran = self._build(builds, tests, ride_along=True)
        for uid in builds:
            self.build_outcomes[uid] = self._build_outcome(uid)
        if hook_failure:
            # A hook of that `dbt build` failed: the builds it ran and the tests it built
            # for are errors, whatever their nodes did.
            for uid in builds:
                if uid in built:
                    self.build_outcomes[uid] = TestOutcome(uid, "error", hook_failure=hook_failure)
            for uid in tests:
                self.outcomes[uid] = TestOutcome(uid, "error", hook_failure=hook_failure)
            return
        if tests:
            self._run_tests(tests, ran)

    def _shared_build(self) -> tuple[set[str], str | None]:
        """The run-level build: its parts done by this worker where it is the first to
        need them, the others' results read; returns what it built (or tried to) and a
        hook's failure."""
        assert self.shared is not None

        def results(built: set[str], failure: str | None) -> SharedResults:
            from dbtproof.session.shared_build import SharedResults

            # what an earlier, interrupted attempt of this worker built counts too
            order = sorted(built | self.built.keys())
            nodes = [self.built[uid] for uid in order if uid in self.built]
            return SharedResults(order, nodes, failure)

        def build() -> SharedResults:
            assert self.shared is not None
            split = self._split(self._needed(*self.shared.work()))
            built, failure, _ = self._build_levels(split.trunk)
            trunk = results(built, failure)
            if split.groups and not failure:
                # made now, once: two groups' `dbt build`s would both make a schema they
                # share, and PostgreSQL lets only one of two `create schema if not exists`
                # made at the same time succeed
                nodes = graph_nodes(self.shared.manifest)
                self.session.commands.ensure_schemas(
                    (nodes[uid].database, nodes[uid].schema)
                    for group in split.groups
                    for uid in group
                )
                trunk.groups = split.groups
            return trunk

        def build_group(group: Sequence[str], trunk: SharedResults) -> SharedResults:
            for node in trunk.nodes:  # what failed in the trunk keeps its downstream out
                self._record_built(node)
            from dbtproof.session.shared_build import SharedResults

            # the groups are built side by side: twice the workers' share of threads each
            # (a dbt thread waits on the warehouse a good part of its time), at most the
            # workers' count; with the workers' count each, N groups would open N x N
            # connections
            workers = self.shared.threads or 1
            share = min(workers, -(-2 * workers // len(trunk.groups)))  # ceiling
            built, failure, _ = self._build_levels(group, threads=share)
            nodes = [self.built[uid] for uid in sorted(built) if uid in self.built]
            return SharedResults(sorted(built), nodes, failure)

        results_of_run = self.shared.results(build, build_group)
        if not self._shared_taken:
            for node in results_of_run.nodes:
                self._record_built(node)
            self._shared_taken = True
        return set(results_of_run.built), results_of_run.hook_failure

    def _record_built(self, node: NodeResult) -> None:
        """Keep dbt's result of building *node*; one that did not succeed is broken."""
        self.built[node.unique_id] = node
        if node.status not in SUCCESS:
            self.broken[node.unique_id] = f"{node.status}: {node.message or ''}".strip()

    def unit_result(self, unique_id: str) -> Any:
        """The result of the native unit test *unique_id* (a ``UnitTestResult``), run once;
        raises the :class:`DbtproofError` it could not run with, each time it is asked."""
        from dbtproof.errors import DbtproofError
        from dbtproof.plugin.native_unit import run_native_unit_test

        if unique_id not in self.unit_results:
            unit_test = self.session.manifest.unit_tests[unique_id]
            try:
                self.unit_results[unique_id] = run_native_unit_test(self.session, unit_test)
            except DbtproofError as exc:
                self.unit_results[unique_id] = exc
        found = self.unit_results[unique_id]
        if isinstance(found, Exception):
            raise found
        return found

    def _gate(self, needed: Sequence[str]) -> None:
        """The unit tests gate: run the gating unit tests of the models of *needed*; a model
        one of them fails (or cannot run) is recorded as skipped, as ``dbt build`` skips it,
        so that nothing downstream of it is built either."""
        from dbtproof.errors import DbtproofError

        manifest = self.session.manifest
        wanted = set(needed)
        by_model: dict[str, list[str]] = {}
        for uid in self.unit_gate or ():
            unit_test = manifest.unit_tests.get(uid)
            for model in getattr(getattr(unit_test, "depends_on", None), "nodes", None) or []:
                if model in wanted and model.startswith("model."):
                    by_model.setdefault(model, []).append(uid)
        # upstream first (a model has more ancestors than any of its parents): the unit
        # tests of a model downstream of one the gate skips are skipped, not run, as in dbt
        lineage = {model: len(ancestors(manifest, [model])) for model in by_model}
        for model in sorted(by_model, key=lambda m: (lineage[m], m)):
            if self.gated_by(model):
                continue
            failing = []
            for uid in by_model[model]:
                try:
                    passed = self.unit_result(uid).passed
                except DbtproofError:
                    passed = False
                if not passed:
                    failing.append(str(manifest.unit_tests[uid].name))
            if failing:
                name, message = str(manifest.nodes[model].name), f"{GATED} {', '.join(failing)}"
                self._record_built(NodeResult(model, name, "model", "skipped", message))

    def gated_by(self, unique_id: str) -> str | None:
        """Why the unit tests gate skips *unique_id* (its own unit test, or one of a model
        upstream, failed), when nothing upstream failed otherwise; else None."""
        if self.unit_gate is None or not self.broken:
            return None
        manifest = self.session.manifest
        broken = ancestors(manifest, [unique_id], self._feeders) & self.broken.keys()
        if unique_id in self.broken:
            broken.add(unique_id)
        gated = sorted(uid for uid in broken if _is_gated(self.built.get(uid)))
        if not gated or len(gated) != len(broken):
            return None
        said = "; ".join(f"{manifest.nodes[uid].name}: {self.built[uid].message}" for uid in gated)
        return f"dbt build skips it (--dbt-unit-tests-gate): {said}"

    def upstream_failure(self, unique_id: str) -> str | None:
        """Why *unique_id* cannot run: the nodes upstream of it that failed to build, if any.

        Nodes dbt skipped because of such a failure are named only when no failure is known.
        """
        if not self.broken:
            return None
        broken = ancestors(self.session.manifest, [unique_id], self._feeders) & self.broken.keys()
        if not broken:
            return None
        failed = [uid for uid in broken if self.built[uid].status != "skipped"]
        return "; ".join(f"{uid} {self.broken[uid]}" for uid in sorted(failed or broken))

    def _build(
        self, builds: Sequence[str], tests: Sequence[str], ride_along: bool = False
    ) -> tuple[set[str], str | None, InvocationResult | None]:
        """Build what *builds* and *tests* need and is not built yet (one ``dbt build`` per level).

        Returns the unique ids those invocations built (or tried to), why one failed
        apart from its nodes (a failing hook), if it did, and, with *ride_along*, the
        invocation that ran *tests* too when they could run in the same ``dbt build``
        (see :meth:`_tests_can_ride`), else None.
        """
        return self._build_levels(self._needed(builds, tests), tests if ride_along else ())

    def _needed(self, builds: Sequence[str], tests: Sequence[str]) -> list[str]:
        """The nodes to build for *builds* and *tests*: theirs and their ancestors that dbt
        builds and are not built yet, less what the unit tests gate keeps from building."""
        manifest = self.session.manifest
        nodes = graph_nodes(manifest)
        wanted = set(builds) | ancestors(manifest, [*builds, *tests], self._feeders)
        needed = [
            uid
            for uid in sorted(wanted)
            if uid in nodes
            and is_buildable(nodes[uid])
            and (self.shared is not None or uid not in self.session.commands.built_nodes)
            and uid not in self.built
        ]
        if self.unit_gate:
            self._gate(needed)
            needed = [uid for uid in needed if uid not in self.built]
        return needed

    def _build_levels(
        self, needed: Sequence[str], tests: Sequence[str] = (), threads: int | None = None
    ) -> tuple[set[str], str | None, InvocationResult | None]:
        """Build *needed*, one ``dbt build`` per level of source feeders (*tests* riding
        along when they can; the run-level build on *threads* dbt threads at least, when
        given); what :meth:`_build` returns."""
        levels = feeder_levels(self.session.manifest, needed, self._feeders)
        riding = list(tests) if tests and self._tests_can_ride(needed, tests, levels) else []
        ran: InvocationResult | None = None
        built: set[str] = set()
        for level in sorted(set(levels.values())):
            # A node that reads a source the project writes is built after that source's
            # feeder: dbt's graph has no edge between the two.
            batch = [uid for uid in needed if levels[uid] == level]
            if self.broken:  # what sits downstream of a node that failed cannot build
                batch = [uid for uid in batch if self.upstream_failure(uid) is None]
            if not batch:
                continue
            built |= set(batch)
            hook_failure, result = self._build_batch(batch, riding, threads)
            if riding:
                ran = result
            if hook_failure:
                return built, hook_failure, None
        return built, None, ran

    def _split(self, needed: Sequence[str]) -> BuildSplit:
        """How the run-level build of *needed* splits over the workers
        (:mod:`dbtproof.project.build_split`): not at all unless the warehouse takes
        several writers, the run has workers, the build is one ``dbt build`` (no source
        feeders between levels) and the project has no ``on-run-start``/``on-run-end``
        hooks (each group's invocation would run them again, beside the others'). A
        model's own hooks run in its group's invocation, beside the other groups' (a
        post-hook's schema-wide statement, such as ``grant ... on all tables in schema``,
        may then meet another group's at the same time); each group has its own
        invocation id and ``run_started_at``, as each level's invocation has."""
        assert self.shared is not None
        manifest = self.session.manifest
        whole = BuildSplit(list(needed))
        if (
            not self.shared.splits
            or (self.shared.threads or 0) < 2
            or len(set(feeder_levels(manifest, needed, self._feeders).values())) > 1
            or any(resource_type(node) == "operation" for node in manifest.nodes.values())
        ):
            return whole
        return split_build(needed, built_parents(manifest, needed), self.shared.threads or 0)

    def _tests_can_ride(
        self, needed: Sequence[str], tests: Sequence[str], levels: Mapping[str, int]
    ) -> bool:
        """Whether *tests* give the same verdicts run in the ``dbt build`` of *needed* as in
        a ``dbt test`` after it: one invocation builds everything (no source feeders
        between levels), nothing failed earlier, and no node of *needed* waits on a test
        in ``dbt build``'s graph (dbt makes a node wait on, and be skipped after the
        failure of, a test all of whose parents are its ancestors). A watch round's save
        of a model then costs one dbt invocation, not two. Large batches are not looked
        at (a run of the whole project has tests upstream of its builds anyway)."""
        if (
            not tests
            or not needed
            or self.broken
            or len(needed) > RIDE_ALONG_LIMIT
            or len(set(levels.values())) != 1
        ):
            return False
        manifest = self.session.manifest
        lineage = [ancestors(manifest, [uid]) for uid in needed]
        for uid in tests:
            parents = set(getattr(test_node(manifest, uid).depends_on, "nodes", None) or [])
            if any(parents <= upstream for upstream in lineage):
                return False
        return True

    def _build_batch(
        self, needed: Sequence[str], tests: Sequence[str] = (), threads: int | None = None
    ) -> tuple[str | None, InvocationResult]:
        """One ``dbt build`` of *needed* (and of the data *tests*, when they ride along);
        returns why it failed apart from its nodes, if so, and the invocation's result.
        The run-level build runs on *threads* dbt threads at least (default: as many as
        the run has workers), or the profile's if more."""
        manifest = self.session.manifest
        nodes = graph_nodes(manifest)
        select = [fqn_selector(nodes[uid]) for uid in needed]
        select += [fqn_selector(test_node(manifest, uid)) for uid in tests]
        exclude, extra = "resource_type:unit_test", ("--indirect-selection", "empty")
        if tests and self.store_failures:
            extra = (*extra, "--store-failures")
        if self.shared is not None:  # the run-level build, once for every worker
            wanted = threads if threads is not None else self.shared.threads
            count = max(wanted or 0, self.session.require_runner().threads or 1)
            if wanted:  # the trunk: the other workers wait, so their cores are its own
                extra = (*extra, "--threads", str(count))
            result = self.session.commands.runner_invoke(
                "build", select, extra, exclude=exclude, manifest=self.shared.manifest
            )
        else:
            result = self.session.commands.build(
                select=select, expect_fail=True, exclude=exclude, extra_args=extra
            )
        riding = set(tests)
        for node in result.nodes:
            if node.is_hook or node.unique_id in riding:
                continue
            if node.status == "error":
                node = self._explain_missing_sources(node)
            self._record_built(node)
        return result.invocation_failure(), result

    def _explain_missing_sources(self, node: NodeResult) -> NodeResult:
        """A node that failed because a source it reads has no table says so, briefly."""
        missing = self.missing_sources(node.unique_id)
        if not missing:
            return node
        lines = [
            f"reads source '{name}', whose table {relation} does not exist"
            for name, relation in missing
        ]
        said = [
            line.strip()
            for line in (node.message or "").splitlines()
            if line.strip() and not re.match(r"\w+ Error in ", line.strip())
        ]
        detail = f"\n(dbt: {said[0]})" if said else ""
        return replace(node, message="; ".join(lines) + detail)

    def missing_sources(self, unique_id: str) -> list[tuple[str, str]]:
        """The sources *unique_id* reads directly whose table is not in the warehouse.

        Sources the project writes itself (a seed loaded into ``raw``) are not checked:
        their feeder's build says what went wrong. Each source is looked up once.
        """
        manifest = self.session.manifest
        node = graph_nodes(manifest).get(unique_id)
        parents = getattr(getattr(node, "depends_on", None), "nodes", None) or []
        found = []
        for parent in parents:
            source = manifest.sources.get(parent)
            if source is None or parent in self._feeders:
                continue
            if parent not in self._source_exists:
                self._source_exists[parent] = self.session.commands.relation_exists(source)
            if not self._source_exists[parent]:
                name = f"{source.source_name}.{source.name}"
                found.append((name, str(source.relation_name or source.identifier)))
        return found

    def _build_outcome(self, uid: str) -> TestOutcome:
        result = self.built.get(uid)
        if result is None:
            if self.shared is None and uid in self.session.commands.built_nodes:  # e.g. by a test
                return TestOutcome(uid, "success")
            upstream = self.upstream_failure(uid)
            if upstream:
                gate = self.gated_by(uid)
                return TestOutcome(uid, "skipped", upstream_failure=upstream, gated_by=gate)
            return TestOutcome(uid, "error", message=f"dbt did not build it ({SEE_DBT_LOG})")
        if _is_gated(result):
            return TestOutcome(uid, "skipped", gated_by=self.gated_by(uid))
        if result.status == "skipped":
            upstream = self.upstream_failure(uid) or result.message or "dbt skipped it"
            return TestOutcome(uid, "skipped", upstream_failure=upstream)
        return TestOutcome(
            unique_id=uid,
            status=result.status,
            message=result.message,
            compiled_code=result.compiled_code,
            execution_time=result.execution_time,
            connection_fault=_fault_of(result),
        )

    def _run_tests(self, unique_ids: Sequence[str], ran: InvocationResult | None = None) -> None:
        """Run the data tests *unique_ids* (built for already): in batched statements where
        they can be (:mod:`dbtproof.plugin.batched_tests`), the others in one ``dbt test``
        invocation; or read their results from *ran*, the ``dbt build`` they rode along in."""
        manifest = self.session.manifest
        runnable = []
        for uid in unique_ids:
            upstream = self.upstream_failure(uid)
            if upstream:
                gate = self.gated_by(uid)
                status = "skipped" if gate else "error"
                self.outcomes[uid] = TestOutcome(
                    uid, status, upstream_failure=upstream, gated_by=gate
                )
            else:
                runnable.append(uid)
        if not runnable:
            return
        extra = ("--store-failures",) if self.store_failures else ()
        read = self.shared.manifest if self.shared is not None else None
        by_id: dict[str, NodeResult] = {}
        per_test = runnable
        if ran is None and self.batched:
            batched = run_batched(
                self.session, runnable, store_failures=self.store_failures, manifest=read
            )
            by_id.update(batched.results)
            per_test = batched.left
        result = ran or InvocationResult(command=[], success=True)
        if per_test and ran is None:
            result = self.session.commands.runner_invoke(
                "test",
                select=[fqn_selector(test_node(manifest, uid)) for uid in per_test],
                extra_args=extra,
                manifest=read,
            )
        by_id.update((node.unique_id, node) for node in result.nodes)
        lost = [uid for uid in runnable if uid in by_id and _fault_of(by_id[uid])]
        hook_failure = result.invocation_failure()
        if lost and not hook_failure:
            # a data test only reads: the ones whose connection died run once more
            again = self.session.commands.runner_invoke(
                "test",
                select=[fqn_selector(test_node(manifest, uid)) for uid in lost],
                extra_args=extra,
                manifest=read,
            )
            by_id.update((node.unique_id, node) for node in again.nodes if node.unique_id in lost)
        for uid in runnable:
            if hook_failure:
                self.outcomes[uid] = TestOutcome(uid, "error", hook_failure=hook_failure)
                continue
            node = by_id.get(uid)
            if node is None:
                self.outcomes[uid] = TestOutcome(
                    uid, "error", message=f"dbt did not run this test ({SEE_DBT_LOG})"
                )
                continue
            fault = _fault_of(node)
            if fault:
                self.outcomes[uid] = TestOutcome(
                    uid, "error", message=node.message, connection_fault=fault
                )
                continue
            if node.status == "error":
                node = self._explain_missing_sources(node)
            outcome = TestOutcome(
                unique_id=uid,
                status=node.status,
                message=node.message,
                failures=node.failures,
                compiled_code=node.compiled_code,
                execution_time=node.execution_time,
            )
            if node.status in ("fail", "warn") and node.compiled_code and uid in manifest.nodes:
                outcome.failing_rows = self._failing_rows(node.compiled_code)
            self.outcomes[uid] = outcome

    def _failing_rows(self, compiled_code: str) -> Rows | None:
        try:
            return self.session.connections.query(
                f"select * from (\n{compiled_code}\n) dbtproof_failing_rows "
                f"limit {FAILING_ROWS_SHOWN}"
            )
        except Exception:  # noqa: BLE001 - the rows are a courtesy; the status stands
            return None


def _is_gated(node: NodeResult | None) -> bool:
    """Whether *node* is a model the unit tests gate kept from being built."""
    return node is not None and node.status == "skipped" and (node.message or "").startswith(GATED)


def _fault_of(node: NodeResult) -> str | None:
    """dbt's message for a node that errored because its connection failed, else None."""
    if node.status != "error":
        return None
    fault = fault_in_text(node.message)
    return fault.reason if fault is not None and fault.kind == TRANSIENT else None
