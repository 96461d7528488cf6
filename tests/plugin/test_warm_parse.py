"""The warm parse: a manifest parsed against the placeholder profile and moved to the
run's namespace is the manifest a cold parse with the namespace gives, node by node.

Each comparison starts two sessions with the same run id (so the same namespace) on
the same project: one through the project's parse cache (warm), one parsing cold with
the run's own profile, and compares every node's and source's database, schema,
alias/identifier, relation name and config, and the SQL dbt compiles for every node
(``{{ this }}`` included), on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_ROLE, copy_shop, drop_pg_schemas, login_role, unique_prefix
from test_relocation import jaffle_style

from dbtproof.safety.namespace import new_run_id
from dbtproof.session.parse_cache import PARSE_SCHEMA, cache_for, locked, project_target_path
from dbtproof.session.parse_snapshot import ParseInputs, ProjectInputs, current, record
from dbtproof.session.session import DbtSession, SessionSettings

#: A model whose configs and SQL take ``target.schema`` at parse time and ``this`` at
#: run time.
PROBE = (
    "{{ config(materialized='table', schema=target.schema ~ '_x', "
    "alias=target.schema ~ '_probe', tags=[target.schema ~ '_tag']) }}\n"
    "select '{{ this }}' as this_name, '{{ target.schema }}' as at_run, 1 as id\n"
)
SNAPSHOT = """{% snapshot probe_snapshot %}
{{ config(target_schema=target.schema ~ '_snaps', unique_key='id', strategy='check',
          check_cols='all') }}
select id, '{{ this }}' as this_name from {{ ref('probe') }}
{% endsnapshot %}
"""


def probed(project: Path) -> Path:
    """Add the probe model and a snapshot whose target schema is rendered from target.schema."""
    (project / "models" / "marts" / "probe.sql").write_text(PROBE)
    (project / "snapshots").mkdir(exist_ok=True)
    (project / "snapshots" / "probe_snapshot.sql").write_text(SNAPSHOT)
    return project


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The adapter the sessions of a test run on; yields the schema prefix of the run."""
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    if request.param == "postgres":
        # A login role of this module's own: these sessions run in this process without a
        # run role (the suite's role may not create roles), so their guard cannot tell what
        # its login role owns from what another test of that role creates or drops meanwhile
        # (a sample schema of test_agents was blamed so).
        for name, value in login_role(PG_ROLE + "_warm").items():
            monkeypatch.setenv(name, value)
        prefix = unique_prefix()
        yield prefix
        drop_pg_schemas(prefix)
    else:
        yield "duckdb"


@contextmanager
def started(
    project: Path, target: str, run_id: str, workdir: Path, warm: bool, **settings: Any
) -> Iterator[DbtSession]:
    """A started session on *project*, torn down afterwards."""
    session = DbtSession(
        SessionSettings(
            project_dir=project,
            profiles_dir=project,
            workdir=workdir,
            run_id=run_id,
            target="dev" if target == "duckdb" else "postgres",
            warm_parse=warm,
            **settings,
        )
    ).start()
    try:
        yield session
    finally:
        session.teardown.run()


def facts(session: DbtSession) -> dict[str, Any]:
    """Where every node and source is, its config, and the SQL dbt compiles for it."""
    manifest = session.manifest
    found: dict[str, Any] = {}
    # dbt's `graph` variable (what macros walk) says where each node is, as the node does
    graph = {**manifest.flat_graph["nodes"], **manifest.flat_graph["sources"]}
    for unique_id, node in [*manifest.nodes.items(), *manifest.sources.items()]:
        seen = graph[unique_id]
        assert (seen["database"], seen["schema"], seen["relation_name"]) == (
            node.database,
            node.schema,
            node.relation_name,
        ), unique_id
        found[unique_id] = {
            "database": node.database,
            "schema": node.schema,
            "alias": getattr(node, "alias", None),
            "identifier": getattr(node, "identifier", None),
            "relation_name": node.relation_name,
            "tags": sorted(node.tags),
            "config": json.dumps(node.config.to_dict(), sort_keys=True, default=str),
        }
    result = session.commands.runner_invoke("compile", [])
    assert result.success, result.describe_failures()
    for node in result.nodes:
        found[node.unique_id]["compiled"] = node.compiled_code
    return found


def assert_same(warm: dict[str, Any], cold: dict[str, Any]) -> None:
    """Node by node, field by field, with the differences named."""
    assert sorted(warm) == sorted(cold)
    differences = [
        f"{unique_id}.{key}: warm {warm[unique_id].get(key)!r} != cold {value!r}"
        for unique_id, fields in cold.items()
        for key, value in fields.items()
        if warm[unique_id].get(key) != value
    ]
    assert not differences, "\n".join(differences)
    assert not any(PARSE_SCHEMA in json.dumps(fields) for fields in warm.values())


def compare(project: Path, target: str, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """Start a warm and a cold session in one namespace; assert their manifests agree."""
    run_id = new_run_id("dbtproof_" if target == "duckdb" else target)
    with started(project, target, run_id, tmp_path / "warm", True, **settings) as session:
        note = session.timings.parse
        warm = facts(session)
    with started(project, target, run_id, tmp_path / "cold", False, **settings) as session:
        cold = facts(session)
    assert note.startswith("warm"), note
    assert_same(warm, cold)
    warm["__note__"] = note
    return warm


@pytest.mark.parametrize("layout", ["shop", "jaffle"])
def test_warm_manifest_is_the_cold_one(target: str, tmp_path: Path, layout: str) -> None:
    project = copy_shop(tmp_path / "project")
    if layout == "jaffle":  # as-is generate_schema_name, seeds in raw, snapshots schema
        jaffle_style(project)
    probed(project)
    first = compare(project, target, tmp_path / "first")
    assert "created" in first["__note__"]
    # The second run reads dbt's partial parse as it is, in another namespace.
    second = compare(project, target, tmp_path / "second")
    assert "reused unchanged" in second["__note__"], second["__note__"]
    probe = second["model.shop.probe"]
    assert re.search(r"_x$", probe["schema"]), probe
    run_ns = probe["tags"][0].removesuffix("_tag")
    assert probe["schema"] in (f"{run_ns}_{run_ns}_x", f"{run_ns}_x")
    # dbt's partial-parse file lives in the project's target path, one folder per key.
    assert list((project_target_path(project) / "dbtproof-parse").glob("*/target/*.msgpack"))


def test_stale_cache_gives_the_right_manifest(target: str, tmp_path: Path) -> None:
    project = probed(copy_shop(tmp_path / "project"))
    compare(project, target, tmp_path / "0")
    # A model changed: its SQL and where it goes.
    model = project / "models" / "marts" / "probe.sql"
    model.write_text(model.read_text().replace("'_x'", "'_y'").replace("1 as id", "2 as id"))
    changed = compare(project, target, tmp_path / "1")
    assert "updated" in changed["__note__"]
    assert changed["model.shop.probe"]["schema"].endswith("_y")
    # A macro changed: the schema every model gets.
    (project / "macros" / "generate_schema_name.sql").write_text(
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
        "  {{ target.schema }}_{{ custom_schema_name or 'base' }}\n"
        "{%- endmacro %}\n"
    )
    changed = compare(project, target, tmp_path / "2")
    assert changed["model.shop.customers"]["schema"].endswith("_marts")
    assert changed["model.shop.stg_orders"]["schema"].endswith("_base")
    # A var of the project changed (read by a model's config at parse time).
    model.write_text("{{ config(schema=var('probe_schema', 'v1')) }}\nselect 1 as id\n")
    project_file = project / "dbt_project.yml"
    project_file.write_text(
        project_file.read_text().replace("vars:\n", "vars:\n  probe_schema: v2\n")
    )
    changed = compare(project, target, tmp_path / "3")
    assert changed["model.shop.probe"]["schema"].endswith("_v2")
    # A var given to the run (--dbt-vars): a cache of its own, right as well.
    changed = compare(project, target, tmp_path / "4", vars={"probe_schema": "v3"})
    assert changed["model.shop.probe"]["schema"].endswith("_v3")
    assert "created" in changed["__note__"]
    # The cache file corrupted: dbt parses in full.
    for cache in (project_target_path(project) / "dbtproof-parse").glob("*/target"):
        (cache / "partial_parse.msgpack").write_bytes(b"\x93not a manifest")
    changed = compare(project, target, tmp_path / "5")
    assert changed["model.shop.probe"]["schema"].endswith("_v2")


def aged(project: Path) -> Path:
    """Date every file of *project* an hour back: a parse that starts now may be kept
    whole (a file modified within seconds of a parse may not be what dbt read)."""
    past = time.time() - 3600
    for path in project.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    return project


def test_kept_parse_is_loaded_only_while_nothing_it_read_changed(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = probed(copy_shop(tmp_path / "project"))
    model = project / "models" / "marts" / "probe.sql"
    model.write_text(
        "{{ config(schema=env_var('DBTPROOF_PROBE_SCHEMA', 'e1')) }}\nselect 1 as id\n"
    )
    aged(project)
    assert "created" in compare(project, target, tmp_path / "0")["__note__"]
    kept = compare(project, target, tmp_path / "1")
    assert "loaded whole" in kept["__note__"], kept["__note__"]
    assert kept["model.shop.probe"]["schema"].endswith("_e1")
    # An env var a model reads at parse time changed: dbt parses, the manifest follows it.
    monkeypatch.setenv("DBTPROOF_PROBE_SCHEMA", "e2")
    changed = compare(project, target, tmp_path / "2")
    assert "loaded whole" not in changed["__note__"], changed["__note__"]
    assert changed["model.shop.probe"]["schema"].endswith("_e2")
    assert "loaded whole" in compare(project, target, tmp_path / "3")["__note__"]
    # A new model: dbt parses, the node is there.
    (project / "models" / "marts" / "probe_two.sql").write_text("select 2 as id\n")
    aged(project)
    changed = compare(project, target, tmp_path / "4")
    assert "loaded whole" not in changed["__note__"], changed["__note__"]
    assert "model.shop.probe_two" in changed
    # The kept parse unreadable: dbt parses, the manifest is right.
    for pickled in (project_target_path(project) / "dbtproof-parse").glob("*/parse.pickle"):
        pickled.write_bytes(b"\x80\x05not a manifest")
    changed = compare(project, target, tmp_path / "5")
    assert "loaded whole" not in changed["__note__"], changed["__note__"]
    assert changed["model.shop.probe"]["schema"].endswith("_e2")


@pytest.mark.parametrize("target", ["postgres"], indirect=True)
def test_the_files_a_parse_is_kept_or_shared_in_hold_no_credentials(
    target: str, tmp_path: Path
) -> None:
    """The kept parse and the parse an xdist controller hands its workers are written
    without the profile's password: neither in the run's config nor in the configs of
    its packages (dbt's own ``dbt`` and adapter packages included), which dbt builds
    from the same profile. The next run binds its own and loads the kept parse whole."""
    from conftest import PG_PASSWORD

    project = aged(copy_shop(tmp_path / "project"))
    shared = tmp_path / "shared.pickle"
    run_id = new_run_id(target)
    with started(project, target, run_id, tmp_path / "0", True, share_parse_to=shared) as session:
        assert "created" in session.timings.parse, session.timings.parse
    kept = list((project_target_path(project) / "dbtproof-parse").glob("*/parse.pickle"))
    assert len(kept) == 1 and shared.is_file()
    for written in (*kept, shared):
        assert PG_PASSWORD.encode() not in written.read_bytes(), written
    with started(project, target, run_id, tmp_path / "1", True) as session:
        assert "loaded whole" in session.timings.parse, session.timings.parse
        assert session.connections.query("select 1 as n") == [{"n": 1}]
        dependencies = session.runtime_config.dependencies
        assert dependencies and all(
            each.credentials is session.runtime_config.credentials for each in dependencies.values()
        )


def integration_tests_layout(package: Path) -> Path:
    """The shop as a package whose ``integration_tests/`` folder is the dbt project that is
    run, with the package installed the way ``dbt deps`` installs a local one:
    ``dbt_packages/shop -> ../..``, a loop (the package holds the project that holds it).
    Returns the project's folder."""
    copy_shop(package)
    project = package / "integration_tests"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: shop_integration_tests\nversion: '1.0.0'\nconfig-version: 2\nprofile: shop\n"
    )
    (project / "packages.yml").write_text("packages:\n  - local: ../\n")
    (project / "profiles.yml").write_text((package / "profiles.yml").read_text())
    (project / "models" / "order_count.sql").write_text(
        "select count(*) as n from {{ ref('orders') }}\n"
    )
    (project / "dbt_packages").mkdir()
    (project / "dbt_packages" / "shop").symlink_to(Path("..") / "..")
    return project


def test_kept_parse_of_an_integration_tests_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package's ``integration_tests/`` project, its package symlinked back to the
    package's root: the kept parse is loaded whole on a repeat run (the run's own target
    folder, seen through the loop, is not what dbt reads), and a model of the package
    changed through the loop still makes dbt parse."""
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    package = tmp_path / "shop"
    project = integration_tests_layout(package)
    aged(package)
    first = compare(project, "duckdb", tmp_path / "0")
    assert "created" in first["__note__"], first["__note__"]
    assert "model.shop.customers" in first and "model.shop_integration_tests.order_count" in first
    kept = compare(project, "duckdb", tmp_path / "1")
    assert "loaded whole" in kept["__note__"], kept["__note__"]
    # A model of the package, saved through the loop: dbt parses, the manifest follows it.
    model = project / "dbt_packages" / "shop" / "models" / "marts" / "customers.sql"
    model.write_text(model.read_text() + "\n-- changed through the loop\n")
    aged(package)
    changed = compare(project, "duckdb", tmp_path / "2")
    assert "loaded whole" not in changed["__note__"], changed["__note__"]
    assert "changed through the loop" in changed["model.shop.customers"]["compiled"]
    again = compare(project, "duckdb", tmp_path / "3")
    assert "loaded whole" in again["__note__"], again["__note__"]
    assert "changed through the loop" in again["model.shop.customers"]["compiled"]


def test_a_parse_that_saw_a_file_change_is_not_kept(tmp_path: Path) -> None:
    project = copy_shop(tmp_path / "project")
    profile = tmp_path / "profiles.yml"
    profile.write_text("p: {}\n")
    folder = tmp_path / "cache"
    folder.mkdir()
    inputs = ParseInputs((ProjectInputs(".", ("models",)),), ())
    (folder / "parse.pickle").write_bytes(b"kept")
    # a model saved after the parse started: not kept
    (project / "models" / "marts" / "customers.sql").touch()
    assert not record(folder, project, profile, inputs, ["v"], time.time_ns() - 10**9)
    assert not (folder / "parse.pickle").exists()
    assert current(folder, project, profile, ["v"]) is None
    aged(project)
    (folder / "parse.pickle").write_bytes(b"kept")
    assert record(folder, project, profile, inputs, ["v"], time.time_ns())
    assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    assert current(folder, project, profile, ["other versions"]) is None
    (project / "models" / "marts" / "customers.sql").write_text("select 1 as changed\n")
    assert current(folder, project, profile, ["v"]) is None


def test_fingerprint_of_a_loop_takes_what_dbt_reads(tmp_path: Path) -> None:
    """The fingerprint of the integration_tests layout: the run's target folder (seen
    directly and through the loop) is not in it; an installed package, a ``.dbtignore``
    and a package's model seen through the loop are."""
    package = tmp_path / "shop"
    project = integration_tests_layout(package)
    profile = tmp_path / "profiles.yml"
    profile.write_text("p: {}\n")
    folder = tmp_path / "cache"
    folder.mkdir()
    extra = project / "dbt_packages" / "extra"  # a package installed as a copy
    (extra / "models").mkdir(parents=True)
    (extra / "dbt_project.yml").write_text("name: extra\n")
    (extra / "models" / "extra.sql").write_text("select 1 as id\n")
    inputs = ParseInputs(
        (
            ProjectInputs(".", ("models", "tests"), ("target", "logs", "dbt_packages")),
            ProjectInputs("dbt_packages/extra", ("models",), ("target",)),
            ProjectInputs("dbt_packages/shop", ("models", "macros", "tests", "tests/generic")),
        ),
        (),
    )
    aged(package)
    (folder / "parse.pickle").write_bytes(b"kept")
    assert record(folder, project, profile, inputs, ["v"], time.time_ns())
    assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    for target in (project / "target", project / "dbt_packages/shop/integration_tests/target"):
        target.mkdir(exist_ok=True)
        (target / f"run{len(list(target.iterdir()))}.log").write_text("every run\n")
        assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    # a package installed: dbt would load it
    (project / "dbt_packages" / "other").mkdir()
    assert current(folder, project, profile, ["v"]) is None
    (project / "dbt_packages" / "other").rmdir()
    assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    # a .dbtignore: dbt would read other files
    (project / ".dbtignore").write_text("models/x\n")
    assert current(folder, project, profile, ["v"]) is None
    (project / ".dbtignore").unlink()
    assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    # a model of the copied package, then one of the package seen through the loop
    (extra / "models" / "extra.sql").write_text("select 2 as id\n")
    assert current(folder, project, profile, ["v"]) is None
    (extra / "models" / "extra.sql").write_text("select 1 as id\n")
    assert current(folder, project, profile, ["v"]) == folder / "parse.pickle"
    model = project / "dbt_packages" / "shop" / "models" / "marts" / "orders.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert current(folder, project, profile, ["v"]) is None


def test_busy_cache_is_not_waited_for_forever(tmp_path: Path) -> None:
    cache = cache_for(tmp_path, "p", "t", "duckdb", {}, "1.0")
    with locked(cache) as held:
        assert held
        with locked(cache, timeout=0.2) as second:
            assert not second
    with locked(cache, timeout=0.2) as again:
        assert again


def test_timings_name_the_steps_and_the_second_run_is_warm(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "pytests" / "test_one.py").write_text("def test_one(dbt):\n    assert dbt.schema\n")
    outputs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dbt-timings")
        outputs.append(result.stdout.str() + result.stderr.str())
        assert result.ret == 0, outputs[-1]
    for output in outputs:
        assert re.search(
            r"dbtproof: start [\d.]+ s: import dbt [\d.]+ s, parse [\d.]+ s, "
            r"relocation \+ isolation check [\d.]+ s, connect [\d.]+ s, grants [\d.]+ s, "
            r"graph variable [\d.]+ s, guard [\d.]+ s",
            output,
        ), output
    assert "parse: warm, partial-parse cache created" in outputs[0], outputs[0]
    assert "parse: warm, partial-parse cache reused unchanged" in outputs[1], outputs[1]


@pytest.mark.parametrize("adapter", ["duckdb", "postgres"])
def test_xdist_workers_load_the_controllers_parse(
    pytester: pytest.Pytester, shop: Path, adapter: str, request: pytest.FixtureRequest
) -> None:
    """Under ``-n 2`` the controller parses once; each worker loads that parse (moved to
    its own namespace) instead of parsing; each node is built once; the verdicts are
    those of a serial run."""
    if adapter == "postgres":
        request.getfixturevalue("shop_pg")
    (shop / "pytests" / "test_one.py").write_text(
        "def test_one(dbt, request):\n"
        "    dbt.build(select='+customers')\n"
        "    assert len(dbt.table('customers')) > 0\n"
        "    worker = getattr(request.config, 'workerinput', {}).get('workerid', '')\n"
        "    assert dbt.schema.endswith(worker)\n"
    )
    args = ["-p", "no:cacheprovider", "--dbt-timings", "pytests", "dbt_project.yml"]
    serial = pytester.runpytest_subprocess(*args)
    assert serial.ret == 0, serial.stdout.str()
    parallel = pytester.runpytest_subprocess(*args, "-n", "2", "-v")
    output = parallel.stdout.str()
    assert parallel.ret == 0, output
    assert parallel.parseoutcomes() == serial.parseoutcomes()
    for worker in ("gw0", "gw1"):
        assert f"{worker}: parse: the xdist controller's warm parse, loaded" in output, output
    assert not list(pytester.path.rglob("*.manifest.pickle*"))
    # the nodes are built once for the run and the dbt items split over both workers
    # (test_build_items and test_shared_build_postgres check the builds)
    dbt_workers = set(re.findall(r"\[(gw\d)\] [\[\] %\d]*PASSED dbt_project\.yml::", output))
    assert len(dbt_workers) == 2, output
