"""dbt's own tests as pytest items: collection and reporting.

``dbt_project.yml`` becomes a pytest file; each model (or seed, snapshot,
source) with tests becomes a collector; each data test and each native unit
test becomes an item, e.g. ``dbt_project.yml::orders::unique_orders_order_id``.
dbt tags become pytest markers. Running is delegated to
:mod:`dbtproof.dbt_tests`, which batches the work.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbtproof.errors import DbtError
from dbtproof.nodes import resource_type

if TYPE_CHECKING:
    from dbtproof.dbt_tests import DbtTestBatches, TestOutcome
    from dbtproof.native_unit import UnitTestResult
    from dbtproof.session import DbtSession

#: Group of singular tests that read several (or no) models.
SINGULAR_GROUP = "singular"


class DbtTestWarning(UserWarning):
    """A dbt test with ``severity: warn`` found rows: it passes, with this warning."""


class DbtTestFailed(Exception):
    """A dbt test found failing rows, or its SQL failed."""


class DbtUnitTestFailed(Exception):
    """A dbt unit test's model did not produce the expected rows (or could not run)."""


class DbtUnitTestError(Exception):
    """A dbt unit test could not run: its model's SQL, its fixtures or its YAML failed.

    Raised during setup, so pytest reports an error, as dbt does, not a failure.
    """


class DbtUpstreamError(Exception):
    """A dbt test could not run because a node it needs failed to build."""


def group_name(manifest: Any, node: Any) -> str:
    """The model, seed, snapshot or source a test belongs to (its collector's name)."""
    if resource_type(node) == "unit_test":
        version = getattr(node, "version", None)
        return f"{node.model}_v{version}" if version is not None else str(node.model)
    attached = getattr(node, "attached_node", None)
    if attached is None and len(node.depends_on.nodes) == 1:
        attached = node.depends_on.nodes[0]
    if attached in manifest.nodes:
        return str(manifest.nodes[attached].name)
    if attached in manifest.sources:
        source = manifest.sources[attached]
        return f"{source.source_name}.{source.name}"
    return SINGULAR_GROUP


def item_name(node: Any) -> str:
    """The test's name; a unit test of a versioned model gets dbt's ``_v<N>`` suffix."""
    if resource_type(node) == "unit_test":
        return str(node.unique_id).rsplit(".", 1)[-1]
    return str(node.name)


def selected_tests(session: DbtSession, select: str | None, exclude: str | None) -> list[Any]:
    """The enabled data tests and unit tests to collect, narrowed by dbt selectors."""
    manifest = session.manifest
    candidates = {uid: n for uid, n in manifest.nodes.items() if resource_type(n) == "test"}
    candidates.update(getattr(manifest, "unit_tests", {}) or {})
    if select or exclude:
        chosen = session.runner_list(select, exclude, ("test", "unit_test"))
        if not chosen:
            raise DbtError(
                f"dbtproof: --dbt-select {select!r} --dbt-exclude {exclude!r} selects no dbt test "
                f"in project '{session.project.name}'. Check the selector (dbt's syntax: "
                f"'+customers', 'tag:nightly', 'test_type:unit', 'path:models/marts')."
            )
        return [candidates[uid] for uid in chosen if uid in candidates]
    return [candidates[uid] for uid in sorted(candidates)]


class DbtProjectFile(pytest.File):
    """``dbt_project.yml`` as a pytest file: collects the project's dbt tests."""

    def collect(self) -> Iterator[pytest.Collector]:
        from dbtproof.plugin import state_key

        state = self.config.stash.get(state_key, None)
        if state is None or state.session is None:
            return
        session = state.session
        select = self.config.getoption("dbt_select")
        exclude = self.config.getoption("dbt_exclude")
        groups: dict[str, list[Any]] = {}
        tags: set[str] = set()
        for node in selected_tests(session, select, exclude):
            groups.setdefault(group_name(session.manifest, node), []).append(node)
            tags.update(getattr(node, "tags", []) or [])
        for tag in sorted(tags):  # dbt tags are markers: declare each once
            self.config.addinivalue_line("markers", f"{tag}: dbt tag '{tag}'")
        for name in sorted(groups):
            yield DbtNodeGroup.from_parent(self, name=name, tests=groups[name])


class DbtNodeGroup(pytest.Collector):
    """The dbt tests of one model, seed, snapshot or source."""

    def __init__(self, *, tests: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tests = list(tests)

    def collect(self) -> Iterator[pytest.Item]:
        for node in sorted(self.tests, key=item_name):
            yield DbtTestItem.from_parent(self, name=item_name(node), node=node)


class DbtTestItem(pytest.Item):
    """One dbt data test or native unit test, run by dbtproof."""

    def __init__(self, *, node: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unique_id: str = node.unique_id
        self.kind = "unit" if resource_type(node) == "unit_test" else "data"
        self.original_file_path = str(node.original_file_path)
        self.dbt_outcome: TestOutcome | None = None
        self.unit_result: UnitTestResult | None = None
        for tag in sorted(set(getattr(node, "tags", []) or [])):
            self.add_marker(tag)
        self.add_marker("dbt")

    def _batches(self) -> DbtTestBatches:
        from dbtproof.plugin import state_key

        state = self.config.stash[state_key]
        if state.test_batches is None:
            from dbtproof.dbt_tests import DbtTestBatches

            assert state.session is not None
            state.test_batches = DbtTestBatches(
                state.session, store_failures=self.config.getoption("dbt_store_failures")
            )
        return state.test_batches

    def setup(self) -> None:
        """Data tests: run this test's batch (once); raise if an upstream failed to build.

        Unit tests: run the model on the fixtures; a model or fixture that cannot run is
        an error of this item (as dbt reports it), not a failure.
        """
        if self.kind == "unit":
            self._run_unit_test()
            return
        self.dbt_outcome = self._batches().outcome(self.unique_id, pending_test_ids(self))
        if self.dbt_outcome.upstream_failure:
            raise DbtUpstreamError(self.dbt_outcome.upstream_failure)

    def runtest(self) -> None:
        """Report the dbt test's outcome: pass, warn (passes with a warning) or fail."""
        if self.kind == "unit":
            if self.unit_result is not None and not self.unit_result.passed:
                raise DbtUnitTestFailed("\n".join(self.unit_result.diff))
            return
        outcome = self.dbt_outcome
        assert outcome is not None
        if outcome.status == "warn":
            warnings.warn(DbtTestWarning(f"{self.name}: {_describe(outcome)}"), stacklevel=1)
        elif outcome.status not in ("pass", "success"):
            raise DbtTestFailed(outcome)

    def _run_unit_test(self) -> None:
        """A native unit test runs through dbtproof's model engine; nothing is built."""
        import time

        from dbtproof.native_unit import run_native_unit_test
        from dbtproof.plugin import state_key

        session = self.config.stash[state_key].session
        assert session is not None
        start = time.perf_counter()
        try:
            self.unit_result = run_native_unit_test(
                session, session.manifest.unit_tests[self.unique_id]
            )
        except DbtError as exc:
            raise DbtUnitTestError(str(exc)) from None
        finally:
            self.unit_seconds = time.perf_counter() - start

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def]
        """A failing test: how many rows failed, the first rows, and the compiled SQL."""
        if isinstance(excinfo.value, DbtUpstreamError):
            return f"dbt test {self.name} could not run: upstream failed to build: {excinfo.value}"
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
        """Where the test is defined, for pytest's reports."""
        return self.path, None, f"dbt {self.kind} test {self.name} ({self.original_file_path})"


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


def pending_test_ids(item: pytest.Item) -> list[str]:
    """Unique ids of the dbt tests this worker will run, starting with *item*.

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
            return [getattr(item, "unique_id", "")]
        pending = items[start:]
    else:
        pending = [item, *(items[i] for i in queued if 0 <= i < len(items))]
    return [p.unique_id for p in pending if isinstance(p, DbtTestItem) and p.kind == "data"]


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
