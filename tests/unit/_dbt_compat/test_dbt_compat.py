"""The dbt compat module against the installed dbt-core (CI runs it on 1.8 and on 1.11).

Every function of ``dbtproof._dbt_compat`` is exercised here on a real DuckDB file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dbtproof import _dbt_compat as compat
from dbtproof.session.runner import DbtRunner


@pytest.fixture
def project(tmp_path: Path) -> DbtRunner:
    """A two-model project (one ephemeral) on a DuckDB file, parsed once."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: tiny\nprofile: tiny\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(
        "tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {tmp_path / 'tiny.duckdb'}\n      schema: compat_test\n"
    )
    (root / "models" / "base.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect 1 as id union all select 2"
    )
    (root / "models" / "numbers.sql").write_text("select id * 10 as n from {{ ref('base') }}")
    return _parsed(root, "tiny", tmp_path)


def _parsed(root: Path, profile: str, tmp_path: Path) -> DbtRunner:
    """A runner of the project at *root* (its profiles.yml, target ``dev``), parsed."""
    runner = DbtRunner(
        project_dir=root,
        profiles_dir=root,
        profile=profile,
        target="dev",
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
    )
    runner.parse()
    return runner


def test_dbt_version_is_supported() -> None:
    """The installed dbt-core is one dbtproof declares (pyproject) and this module was tested on."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    declared = [Requirement(r) for r in requires("dbtproof") or []]
    (dbt_core,) = [r for r in declared if r.name == "dbt-core" and r.marker is None]
    assert dbt_core.specifier.contains(compat.dbt_version()), (compat.dbt_version(), dbt_core)
    major_minor = ".".join(compat.dbt_version().split(".")[:2])
    assert major_minor in compat.TESTED_DBT_VERSIONS
    for minor in compat.TESTED_DBT_VERSIONS:  # and every release tested on is declared
        assert dbt_core.specifier.contains(f"{minor}.0"), (minor, dbt_core)


def test_render_profile_value_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBTPROOF_COMPAT_X", "from-env")
    assert compat.render_profile_value("{{ env_var('DBTPROOF_COMPAT_X') }}") == "from-env"
    assert compat.render_profile_value("{{ env_var('DBTPROOF_NOT_SET', 'dflt') }}") == "dflt"
    with pytest.raises(Exception, match="DBTPROOF_NOT_SET"):
        compat.render_profile_value("{{ env_var('DBTPROOF_NOT_SET') }}")


def test_adapter_runs_sql_and_manages_schemas(project: DbtRunner, tmp_path: Path) -> None:
    config = compat.registered_runtime_config("duckdb")
    assert config.credentials.schema == "compat_test"
    adapter = compat.adapter_for(config, project.manifest)
    database = config.credentials.database
    with compat.connection(adapter):
        compat.execute(adapter, "create schema compat_extra")
        compat.execute(adapter, "create table compat_extra.t as select 42 as answer, 'x' as s")
        assert compat.fetch(adapter, "select * from compat_extra.t") == (
            ["answer", "s"],
            [(42, "x")],
        )
        assert "compat_extra" in compat.list_schemas(adapter, database)
        compat.drop_schemas(adapter, database, ["compat_extra"], cascade=True)
        assert "compat_extra" not in compat.list_schemas(adapter, database)
    compat.close_adapter_connections(adapter)


def test_reused_manifest_runs_ephemeral_parents_twice(project: DbtRunner) -> None:
    for _ in range(2):
        result = project.invoke("run")
        assert [(n.name, n.status) for n in result.nodes] == [("numbers", "success")]
    adapter = compat.adapter_for(compat.registered_runtime_config("duckdb"), project.manifest)
    with compat.connection(adapter):
        _, rows = compat.fetch(adapter, "select n from compat_test.numbers order by n")
    assert rows == [(10,), (20,)]


def test_reset_compilation_state_forgets_compiled_sql(project: DbtRunner) -> None:
    project.invoke("compile")
    node = project.manifest.nodes["model.tiny.numbers"]
    assert node.compiled and node.extra_ctes_injected
    compat.reset_compilation_state(project.manifest)
    assert not node.compiled and not node.extra_ctes_injected and node.compiled_code is None


def test_dbt_file_log_is_written_but_hidden_from_pytest(project: DbtRunner) -> None:
    project.invoke("compile")
    assert "file_log" not in logging.root.manager.loggerDict
    assert (project.log_path / "dbt.log").stat().st_size > 0


def test_query_result_is_what_dbt_adapter_execute_returns() -> None:
    from decimal import Decimal

    rows = [{"method": "card", "n": 2, "tags": ["a"]}, {"method": "cash"}]
    response, table = compat.query_result(["method", "n", "tags"], rows, False, fetch=True)
    assert response.rows_affected == 2 and str(response) == "SELECT 2"
    assert list(table.column_names) == ["method", "n", "tags"]
    # As dbt types a query's result: numbers as Decimals, containers as JSON, strings kept.
    assert [tuple(row.values()) for row in table.rows] == [
        ("card", Decimal(2), '["a"]'),
        ("cash", None, None),
    ]
    # CSV text is typed as dbt types a seed's cells.
    text_rows = [{"n": "7", "day": "2024-01-02"}]
    _, table = compat.query_result(["n", "day"], text_rows, True, fetch=True, limit=5)
    assert table.rows[0]["n"] == Decimal(7) and str(table.rows[0]["day"]) == "2024-01-02"
    _, table = compat.query_result(["method"], rows, False, fetch=True, limit=1)
    assert len(table.rows) == 1
    _, table = compat.query_result(["method"], rows, False, fetch=False)
    assert len(table.rows) == 0


def test_no_module_of_the_package_keeps_state(project: DbtRunner) -> None:
    """What is cached is held by its user: the engine's RenderCaches, the runner's flag
    variables; no module of the package holds a dict, list or set of its own."""
    import importlib
    import pkgutil

    modules = [compat] + [
        importlib.import_module(f"{compat.__name__}.{info.name}")
        for info in pkgutil.iter_modules(compat.__path__)
    ]
    assert len(modules) > 5
    for module in modules:
        for name, value in vars(module).items():
            if not name.startswith("__"):
                assert not isinstance(value, (dict, list, set, bytearray)), (module, name)
    assert "parse" in project.flag_variables._by_command  # the runner's, walked once


def test_grants_difference_is_dbts_case_insensitive_diff() -> None:
    # What apply_grants would grant (configured minus found) and revoke (found minus configured).
    configured = {"select": ["reporter", "Analyst"], "insert": ["loader"]}
    found = {"SELECT": ["REPORTER", "public"]}
    assert compat.grants_difference(configured, found) == {
        "select": ["Analyst"],
        "insert": ["loader"],
    }
    assert compat.grants_difference(found, configured) == {"SELECT": ["public"]}
    assert compat.grants_difference(found, {"select": ["reporter", "PUBLIC"]}) == {}


# -- fqn selection through an index ----------------------------------------------------

_NAMES = ("shop", "marts", "orders", "orders.v2", "v1", "v2", "stg")


def _fqn_nodes(draw_fqns: list[tuple[list[str], bool]]) -> list[tuple[str, object]]:
    from types import SimpleNamespace

    return [
        (f"node.{index}", SimpleNamespace(fqn=fqn, is_versioned=versioned))
        for index, (fqn, versioned) in enumerate(draw_fqns)
    ]


def _dbt_search(nodes: list[tuple[str, object]], selector: str) -> set[str]:
    """dbt's own answer: its ``node_is_match`` on every node, as its search does."""
    from dbt.graph.selector_methods import QualifiedNameSelectorMethod

    method = QualifiedNameSelectorMethod(None, None, [])  # type: ignore[arg-type]
    return {
        uid for uid, node in nodes if method.node_is_match(selector, node.fqn, node.is_versioned)
    }


def test_fqn_index_picks_what_dbts_search_picks() -> None:
    """Generated fqns (dots inside names, versioned models) and selectors made of their
    parts: the index gives exactly the nodes dbt's own matching gives."""
    from dbt.graph.selector_methods import QualifiedNameSelectorMethod
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dbtproof._dbt_compat.selection import FqnIndex, has_wildcard

    name = st.sampled_from(_NAMES)
    plain = st.tuples(st.lists(name, min_size=2, max_size=4), st.just(False))
    versioned = st.tuples(
        st.lists(name, min_size=2, max_size=3).map(lambda f: [*f, "v1"]), st.just(True)
    )
    fqns = st.lists(st.one_of(plain, versioned), min_size=1, max_size=8)
    selectors = st.lists(name, min_size=1, max_size=4).map(".".join)
    method = QualifiedNameSelectorMethod(None, None, [])  # type: ignore[arg-type]

    @settings(max_examples=400, deadline=None)
    @given(fqns, st.lists(selectors, min_size=1, max_size=5))
    def check(drawn: list[tuple[list[str], bool]], picks: list[str]) -> None:
        nodes = _fqn_nodes(drawn)
        index = FqnIndex(nodes)
        for selector in picks:
            assert not has_wildcard(selector)
            found = index.matches(selector, method.node_is_match)
            assert len(found) == len(set(found))
            assert set(found) == _dbt_search(nodes, selector), (drawn, selector)

    check()


def test_indexed_fqn_selection_selects_as_dbt_on_a_manifest(project: DbtRunner) -> None:
    """On a parsed project, inside the context and after it: the same nodes as dbt's own
    search for names, paths, packages and patterns; dbt's search is back afterwards."""
    from dbt.graph.selector_methods import QualifiedNameSelectorMethod

    original = QualifiedNameSelectorMethod.search
    method = QualifiedNameSelectorMethod(project.manifest, None, [])  # type: ignore[arg-type]
    included = set(project.manifest.nodes)
    selectors = ["numbers", "tiny.numbers", "tiny", "base", "tiny.base", "nope", "tiny.*", "num*"]
    expected = {s: set(original(method, included, s)) for s in selectors}
    assert expected["numbers"] == {"model.tiny.numbers"} and expected["nope"] == set()
    with compat.indexed_fqn_selection():
        assert QualifiedNameSelectorMethod.search is not original
        found = {s: set(method.search(included, s)) for s in selectors}
    assert found == expected
    assert QualifiedNameSelectorMethod.search is original
    assert project.list_unique_ids("fqn:tiny.numbers", None, ()) == ["model.tiny.numbers"]


def test_a_partial_parse_read_ahead_is_taken_only_for_the_same_bytes(project: DbtRunner) -> None:
    """The partial-parse file read back ahead of a parse gives that parse its manifest
    (then changed by the parse as dbt changes the one it decodes); a file that changed
    since is decoded by dbt itself; either way the parse sees the saved model."""
    model = project.project_dir / "models" / "numbers.sql"
    ahead = compat.read_partial_parse(project.target_path)
    assert ahead is not None
    model.write_text("select id * 100 as n from {{ ref('base') }}")
    with compat.partial_parse_read_ahead(ahead):
        project.parse()
    assert project.manifest is ahead.manifest
    assert "* 100" in project.manifest.nodes["model.tiny.numbers"].raw_code

    stale = compat.read_partial_parse(project.target_path)
    assert stale is not None
    model.write_text("select id * 1000 as n from {{ ref('base') }}")
    project.parse()  # dbt writes the file anew: *stale* holds other bytes
    model.write_text("select id * 7 as n from {{ ref('base') }}")
    with compat.partial_parse_read_ahead(stale):
        project.parse()
    assert project.manifest is not stale.manifest
    assert "* 7" in project.manifest.nodes["model.tiny.numbers"].raw_code
    assert compat.read_partial_parse(project.target_path / "nowhere") is None


def test_graph_summary_is_dbts_own_on_the_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the example project (seeds, sources, models, data and unit tests) plus an
    exposure: the same summary, key for key and in the same order, as dbt's linker
    writes, with and without the test edges of ``dbt build``; dbt's method is back after
    the block."""
    import json

    from conftest import copy_shop
    from dbt.compilation import Linker

    root = copy_shop(tmp_path / "shop")
    (root / "models" / "exposures.yml").write_text(
        "exposures:\n  - name: board\n    type: dashboard\n    owner: {name: data}\n"
        "    depends_on: [ref('customers')]\n"
    )
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "shop.duckdb"))
    manifest = _parsed(root, "shop", tmp_path).manifest
    original = Linker.get_graph_summary
    linker = Linker()
    linker.link_graph(manifest)
    for edges in ("linked", "with test edges"):
        expected = original(linker, manifest)
        with compat.quick_graph_summary():
            assert Linker.get_graph_summary is not original
            found = linker.get_graph_summary(manifest)
        assert json.dumps(found) == json.dumps(expected), edges
        kinds = {entry["type"] for entry in expected.values()}
        assert {"seed", "source", "model", "test", "unit_test", "exposure"} <= kinds, kinds
        assert any("succ" in entry for entry in expected.values())
        manifest.build_parent_and_child_maps()
        linker.add_test_edges(manifest)
    assert Linker.get_graph_summary is original


# -- generic tests compiled with their keyword arguments rendered once per template --------

KWARGS_SCHEMA = """
version: 2
sources:
  - name: raw
    schema: compat_test
    tables: [{name: events}]
models:
  - name: numbers
    columns:
      - name: n
        data_tests:
          - unique
          - not_null: {config: {where: "n > {{ var('floor') }}"}}
          - accepted_values: {values: ['10', 20, "{{ 5 * 6 }}"], quote: false}
          - accepted_values: {values: "{{ range(1, 3) | list }}"}
          - relationships: {to: "ref('base')", field: id}
          - relationships: {to: "source('raw', 'events')", field: id}
          - matches:
              value: "{{ var('floor') }}"
              label: "'quoted'"
              number: "42"
              listed: "[1, 2]"
              mapping: {inner: "{{ 'a' ~ 'b' }}", plain: "x"}
              env: "env_var('DBTPROOF_COMPAT_KWARG', 'fallback')"
              expression: "{{ n }}"
      - name: "{{ 'not rendered' }}"
        data_tests: [not_null]
"""

MATCHES_TEST = """
{% test matches(model, column_name, value, label, number, listed, mapping, env, expression) %}
select '{{ label }}' as label, {{ number * 2 }} as number, {{ listed | length }} as listed,
  '{{ mapping.inner }}{{ mapping.plain }}' as mapping, '{{ env }}' as env,
  '{{ expression }}' as expression, '{{ column_name }}' as col
from {{ model }} where {{ column_name }} = {{ value }}
{% endtest %}
"""


def test_generic_tests_compile_as_dbts_compiler_compiles_them(tmp_path: Path) -> None:
    """Every generic test of a project whose arguments use each rule of dbt's rendering
    (a ``where``, native numbers and lists, a bare ``ref``/``source``/``env_var`` call,
    ``var``, Jinja's own ``range``, nested mappings, a column name with Jinja in it, an
    ephemeral model): the same rendered arguments, values and types, and the same compiled
    SQL as dbt's ``Compiler`` and its ``add_rendered_test_kwargs``."""
    from dbt.clients.jinja import GENERIC_TEST_KWARGS_NAME, add_rendered_test_kwargs
    from dbt.compilation import Compiler
    from dbt.context.providers import generate_runtime_model_context

    from dbtproof._dbt_compat.test_kwargs import KwargsRenderer

    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: tiny\nprofile: tiny\nconfig-version: 2\nvars: {floor: 7}\n"
    )
    (root / "profiles.yml").write_text(
        "tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {tmp_path / 'tiny.duckdb'}\n      schema: compat_test\n"
    )
    (root / "models" / "base.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect 1 as id union all select 2"
    )
    (root / "models" / "numbers.sql").write_text("select id * 10 as n from {{ ref('base') }}")
    (root / "models" / "schema.yml").write_text(KWARGS_SCHEMA)
    (root / "macros" / "matches.sql").write_text(MATCHES_TEST)
    manifest = _parsed(root, "tiny", tmp_path).manifest
    config = compat.registered_runtime_config("duckdb")
    compat.adapter_for(config, manifest)
    tests = sorted(uid for uid in manifest.nodes if uid.startswith("test."))
    assert len(tests) == 8, tests

    renderer = KwargsRenderer()
    for uid in tests:
        node = manifest.nodes[uid]
        expected_context = generate_runtime_model_context(node, config, manifest)
        add_rendered_test_kwargs(expected_context, node)
        expected = expected_context[GENERIC_TEST_KWARGS_NAME]
        found = renderer.render(generate_runtime_model_context(node, config, manifest), node)
        assert repr(found) == repr(expected), uid  # values and their types

    compiler = Compiler(config)
    expected_sql = {
        uid: str(compiler.compile_node(manifest.nodes[uid], manifest, {}, False).compiled_code)
        for uid in tests
    }
    compat.reset_compilation_state(manifest)  # the ephemeral CTEs are injected anew
    assert compat.compile_nodes(config, manifest, tests) == expected_sql
    matches = next(sql for uid, sql in expected_sql.items() if ".matches_" in uid)
    assert "__dbt__cte__base" in expected_sql[next(u for u in tests if "ref_base" in u)]
    for said in ("''quoted''", "4242 as number", "6 as listed", "'abx'", "'fallback'", "= 7"):
        assert said in matches, (said, matches)


def test_a_build_of_nodes_only_is_ordered_alike_without_the_test_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the example project (tests with one parent and with two): a ``dbt build`` that
    selects the nodes and no test (what ``compat.selects_no_test`` allows) runs a graph with
    the same nodes, the same order between them and the same topological generations
    (dbt's queue priorities) whether its graph had the tests' edges or not; and only such
    a build is allowed it."""
    import networkx as nx
    from conftest import copy_shop
    from dbt.compilation import Linker
    from dbt.graph.graph import Graph

    root = copy_shop(tmp_path / "shop")
    monkeypatch.setenv("SHOP_DUCKDB_PATH", str(tmp_path / "shop.duckdb"))
    manifest = _parsed(root, "shop", tmp_path).manifest
    built = sorted(
        uid
        for uid, node in manifest.nodes.items()
        if node.resource_type in ("model", "seed", "snapshot")
        and node.config.materialized != "ephemeral"
    )
    plain = Linker()
    plain.link_graph(manifest)
    with_edges = Linker()
    with_edges.link_graph(manifest)
    manifest.build_parent_and_child_maps()
    with_edges.add_test_edges(manifest)
    assert with_edges.graph.number_of_edges() > plain.graph.number_of_edges()
    two_parents = [
        uid
        for uid, node in manifest.nodes.items()
        if node.resource_type == "test" and len(node.depends_on.nodes) > 1
    ]
    assert two_parents, "the example has a relationships test"
    found = Graph(plain.graph).get_subset_graph(built).graph
    expected = Graph(with_edges.graph).get_subset_graph(built).graph
    assert set(found) == set(expected) == set(built)
    for uid in built:
        assert nx.descendants(found, uid) == nx.descendants(expected, uid), uid
    assert list(map(sorted, nx.topological_generations(found))) == list(
        map(sorted, nx.topological_generations(expected))
    )
    nodes = [f"fqn:{'.'.join(manifest.nodes[uid].fqn)}" for uid in built]
    empty = ["--indirect-selection", "empty"]
    no_unit = ["resource_type:unit_test"]
    assert compat.selects_no_test(nodes, empty, manifest, exclude=no_unit)
    # a unit test's fqn starts with its model's: selected with it unless excluded
    assert manifest.unit_tests and not compat.selects_no_test(nodes, empty, manifest)
    a_test = f"fqn:{'.'.join(manifest.nodes[two_parents[0]].fqn)}"
    assert not compat.selects_no_test([*nodes, a_test], empty, manifest)
    assert not compat.selects_no_test(nodes, [], manifest)  # tests selected indirectly
    assert not compat.selects_no_test([f"{nodes[0]}+"], empty, manifest)  # graph operator
    assert not compat.selects_no_test(["customers"], empty, manifest)  # not a node's fqn
    eager = [*empty, "--indirect-selection", "eager"]
    assert not compat.selects_no_test(nodes, eager, manifest, exclude=no_unit)
    assert compat.selects_no_test(
        [" ".join(nodes)], ["--indirect-selection=empty"], manifest, no_unit
    )
    # dbt's fqn method matches by prefix and by last part: a selector that picks a test that
    # way selects it too
    folder = f"fqn:{'.'.join(manifest.nodes[two_parents[0]].fqn[:-1])}"
    assert not compat.selects_no_test([folder], empty, manifest)
    leaf = f"fqn:{manifest.nodes[two_parents[0]].fqn[-1]}"
    assert not compat.selects_no_test([nodes[0], leaf], empty, manifest)
