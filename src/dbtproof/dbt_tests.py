"""Running the project's own dbt tests on behalf of pytest items.

A dbt task per test would pay dbt's fixed overhead hundreds of times. Instead,
when the first dbt test item of a worker runs, :class:`DbtTestBatches` takes
that item and every dbt test still waiting to run on this worker, builds the
models, seeds and snapshots they need (once per session, skipping what is
already built), runs all of those tests in one ``dbt test`` invocation, and
keeps each test's outcome for its item to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbtproof.nodes import fqn_selector, resource_type
from dbtproof.rows import Rows
from dbtproof.runner import NodeResult

if TYPE_CHECKING:
    from dbtproof.session import DbtSession

#: Node types a dbt test may need built before it runs.
BUILDABLE = {"model", "seed", "snapshot"}
#: How many failing rows a failure report shows.
FAILING_ROWS_SHOWN = 10


@dataclass
class TestOutcome:
    """What happened to one dbt test."""

    unique_id: str
    status: str
    message: str | None = None
    failures: int | None = None
    compiled_code: str | None = None
    execution_time: float = 0.0
    #: Set when the test could not run because something it needs failed to build.
    upstream_failure: str | None = None
    failing_rows: Rows | None = None


def test_node(manifest: Any, unique_id: str) -> Any:
    """The manifest entry of a data test or a unit test."""
    if unique_id in manifest.nodes:
        return manifest.nodes[unique_id]
    return manifest.unit_tests[unique_id]


def ancestors(manifest: Any, unique_ids: Iterable[str]) -> set[str]:
    """Every node the given tests depend on, directly or not (sources included).

    A unit test needs its model's parents to exist (dbt reads their columns), not
    the model itself.
    """
    seen: set[str] = set()
    stack = []
    for uid in unique_ids:
        if uid in manifest.unit_tests:
            stack.extend(getattr(manifest.unit_tests[uid].depends_on, "nodes", []))
        else:
            stack.append(uid)
    while stack:
        uid = stack.pop()
        node = manifest.nodes.get(uid) or manifest.unit_tests.get(uid) or manifest.sources.get(uid)
        if node is None:
            continue
        for parent in getattr(node.depends_on, "nodes", None) or []:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


class DbtTestBatches:
    """Runs dbt tests in batches for one session and remembers each outcome."""

    def __init__(self, session: DbtSession, store_failures: bool = False) -> None:
        self.session = session
        self.store_failures = store_failures
        self.outcomes: dict[str, TestOutcome] = {}
        #: Buildable nodes that failed (or were skipped) when built, with dbt's message.
        self.broken: dict[str, str] = {}

    def outcome(self, unique_id: str, pending: Sequence[str] = ()) -> TestOutcome:
        """The outcome of *unique_id*, running it (and the *pending* tests with it) if needed."""
        if unique_id not in self.outcomes:
            batch = [unique_id, *(p for p in pending if p not in self.outcomes and p != unique_id)]
            self.run_batch(batch)
        return self.outcomes[unique_id]

    def _build_upstream(self, unique_ids: Sequence[str]) -> None:
        manifest = self.session.manifest
        needed = [
            uid
            for uid in sorted(ancestors(manifest, unique_ids))
            if uid in manifest.nodes
            and resource_type(manifest.nodes[uid]) in BUILDABLE
            and manifest.nodes[uid].config.materialized != "ephemeral"
            and uid not in self.session.built_nodes
            and uid not in self.broken
        ]
        if not needed:
            return
        result = self.session.build(
            select=[fqn_selector(manifest.nodes[uid]) for uid in needed],
            expect_fail=True,
            exclude="resource_type:unit_test",
            extra_args=("--indirect-selection", "empty"),
        )
        for node in result.nodes:
            if node.status not in ("success", "pass"):
                self.broken[node.unique_id] = f"{node.status}: {node.message or ''}".strip()

    def run_batch(self, unique_ids: Sequence[str]) -> None:
        """Build what *unique_ids* need, then run them in one ``dbt test`` invocation."""
        manifest = self.session.manifest
        self._build_upstream(unique_ids)
        runnable = []
        for uid in unique_ids:
            broken = sorted(ancestors(manifest, [uid]) & set(self.broken)) if self.broken else []
            if broken:
                reasons = "; ".join(f"{b} {self.broken[b]}" for b in broken)
                self.outcomes[uid] = TestOutcome(uid, "error", upstream_failure=reasons)
            else:
                runnable.append(uid)
        if not runnable:
            return
        extra = ("--store-failures",) if self.store_failures else ()
        result = self.session.runner_invoke(
            "test",
            select=[fqn_selector(test_node(manifest, uid)) for uid in runnable],
            extra_args=extra,
        )
        by_id: dict[str, NodeResult] = {node.unique_id: node for node in result.nodes}
        for uid in runnable:
            node = by_id.get(uid)
            if node is None:
                self.outcomes[uid] = TestOutcome(
                    uid, "error", message="dbt did not run this test (see the dbt log)"
                )
                continue
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
            return self.session.query(
                f"select * from (\n{compiled_code}\n) dbtproof_failing_rows "
                f"limit {FAILING_ROWS_SHOWN}"
            )
        except Exception:  # noqa: BLE001 - the rows are a courtesy; the status stands
            return None
