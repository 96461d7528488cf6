"""``dbt build`` of nodes only, its graph compiled without the data tests' edges.

``dbt build`` compiles its graph with an edge from each data test to every node downstream
of the test's models (``Compiler.compile(..., add_test_edges=True)``), so that a node waits
for, and is skipped after the failure of, the tests upstream of it. On a project whose
models are chained, that is one edge per test and node below it (about 240,000 edges on
the benchmark's 1,000 models and 3,000 tests): more than half of the fixed cost of each
``dbt build`` invocation, and the subset of the graph dbt takes for the selection walks
them all again.

dbtproof's builds of nodes select no test (``--indirect-selection empty``, only the nodes'
own selectors): every test is dropped from the graph dbt runs, and where a test is dropped
dbt joins its parents to its children, which are nodes downstream of those parents
already. The queue is the same without those edges, and so is what a failing node skips
(dbt skips the nodes downstream of it in the whole graph: the same nodes). While the block
of :func:`build_without_test_edges` runs (one invocation, under the runner's lock), dbt's
build compiles its graph as its other commands do. :func:`selects_no_test` says when the
caller may ask for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dbtproof._dbt_compat.selection import FqnIndex

#: What a selector must not have: graph operators, wildcards, set operators (the
#: selection then depends only on the nodes, not on the graph's edges).
_OPERATORS = ("+", "@", "*", "?", "[", ",")


def selects_no_test(
    select: Sequence[str], extra_args: Sequence[str], manifest: Any, exclude: Sequence[str] = ()
) -> bool:
    """Whether a ``dbt build`` of *select* (less *exclude*) with *extra_args* selects
    nodes and no data or unit test: tests not selected indirectly (``--indirect-selection
    empty``, the last one given), every selector an ``fqn:`` one without graph operators
    or wildcards, and none of them matching a test of *manifest* as dbt's fqn method
    matches (a prefix of its fqn, with or without the package, or its last part:
    :class:`FqnIndex`), unit tests left out when *exclude* has
    ``resource_type:unit_test`` (a unit test's fqn starts with its model's)."""
    args = list(extra_args)
    given = [
        arg.partition("=")[2] if "=" in arg else "".join(args[i + 1 : i + 2])
        for i, arg in enumerate(args)
        if arg == "--indirect-selection" or arg.startswith("--indirect-selection=")
    ]
    selectors = [part for each in select for part in each.split()]
    if not given or given[-1] != "empty" or not selectors or manifest is None:
        return False
    if any(not s.startswith("fqn:") or any(op in s for op in _OPERATORS) for s in selectors):
        return False
    excluded = [part for each in exclude for part in each.split()]
    kinds = ("test",) if "resource_type:unit_test" in excluded else ("test", "unit_test")
    tests = FqnIndex(
        (uid, node)
        for uid, node in (*manifest.nodes.items(), *manifest.unit_tests.items())
        if str(getattr(node.resource_type, "value", node.resource_type)) in kinds
    )
    return not any(tests.matches(s.removeprefix("fqn:"), lambda *args: False) for s in selectors)


@contextmanager
def build_without_test_edges() -> Iterator[None]:
    """While the block runs, ``dbt build`` compiles its graph without the tests' edges."""
    from dbt.task.build import BuildTask

    original = BuildTask.compile_manifest

    def compile_manifest(self: Any) -> None:
        compile_graph = self.compiler.compile

        def without_test_edges(*args: Any, **kwargs: Any) -> Any:
            return compile_graph(*args, **{**kwargs, "add_test_edges": False})

        self.compiler.compile = without_test_edges
        try:
            original(self)
        finally:
            del self.compiler.compile

    BuildTask.compile_manifest = compile_manifest  # type: ignore[method-assign]
    try:
        yield
    finally:
        BuildTask.compile_manifest = original  # type: ignore[method-assign]
