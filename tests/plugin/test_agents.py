"""``dbtproof sample`` and ``dbtproof propose``: a masked, bounded sample, proposals made and
checked only on it, the YAML patch dbt then runs; protected targets refused, nothing
written outside the run and sample namespaces, no credential in any output.

The example project on real DuckDB files and on the PostgreSQL server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import copy_shop, drop_pg_schemas, superuser_connection, unique_prefix

from dbtproof.agents.mutations import Mutation, mutate, mutations_of
from dbtproof.agents.patch import apply_patch, yaml_patch
from dbtproof.agents.place import load_record
from dbtproof.agents.profiling import profile_columns
from dbtproof.agents.proposals import Proposal, propose, run_proposal
from dbtproof.agents.sample import SampleOptions, take_sample
from dbtproof.agents.workspace import open_workspace
from dbtproof.cli.main import main
from dbtproof.errors import DbtproofError
from dbtproof.evidence.verify import verify

CANARY = "canary-agent-pw-3f1c9e"
LITERAL_CANARY = "canary-literal-pw-8d2a71"
#: Values of raw_customers' PII columns (last_name: tag, email: meta) in the seed file.
PII_VALUES = ("Lovelace", "ada@example.com", "Turing", "alan@example.com")


def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ours_outside() -> set[tuple[str, str, str]]:
    """Schemas and relations owned by the superuser or a run role, outside every run's
    namespace and every test's prefix (other suites share the server)."""
    with superuser_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select n.nspname, '', pg_get_userbyid(n.nspowner) from pg_namespace n "
            "union all select n.nspname, c.relname, pg_get_userbyid(c.relowner) "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        )
        rows = cursor.fetchall()
    run = re.compile(r"^(t[a-z0-9]{5}_|dbtproof_\d{12}_)")
    return {
        (schema, name, owner)
        for schema, name, owner in rows
        if (owner == "postgres" or owner.startswith("dbtproof_"))
        and not run.match(schema)
        and not schema.startswith("pg_")
    }


def _sample_rows(project: Path, table: str) -> list[tuple[Any, ...]]:
    path = project / "target" / "dbtproof-sample" / "sample-dev.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(f'select * from "{table}"').fetchall()


# -- DuckDB ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The example on DuckDB: sampled (at most 15 rows a table), then proposed on."""
    project = copy_shop(tmp_path_factory.mktemp("agents") / "shop")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _clean_environment(monkeypatch)
        monkeypatch.chdir(project)
        record, lines = take_sample(
            project,
            project / "target" / "dbtproof-sample",
            profiles_dir=project,
            options=SampleOptions(rows=15),
        )
        sample_file = project / "target" / "dbtproof-sample" / "sample-dev.duckdb"
        before = _sha256(sample_file)
        with open_workspace(project, profiles_dir=project) as ws:
            proposals = propose(ws)
            verdicts = [run_proposal(ws, p.id) for p in proposals]
            profiles = {m: profile_columns(ws, m) for m in ("stg_customers", "customers")}
            small = profile_columns(ws, "customers", min_group_size=1000)
        yield {
            "project": project,
            "record": record,
            "lines": lines,
            "proposals": proposals,
            "verdicts": verdicts,
            "profiles": profiles,
            "small": small,
            "sample_unchanged": before == _sha256(sample_file),
        }


def test_sample_masks_pii_and_stays_bounded(duck: dict[str, Any]) -> None:
    project, record = duck["project"], duck["record"]
    tables = {table.name: table for table in record.tables}
    assert set(tables) == {"seed__raw_customers", "seed__raw_orders", "seed__raw_payments"}
    assert all(0 < table.rows <= 15 for table in tables.values())
    assert tables["seed__raw_payments"].rows == 15  # the seed has 25: cut at the bound
    assert tables["seed__raw_customers"].masked == ["last_name", "email"]
    customers = _sample_rows(project, "seed__raw_customers")
    assert len(customers) == 10
    flat = repr(customers)
    assert not any(value in flat for value in PII_VALUES)
    assert "Ada" in flat  # first_name is not PII
    emails = [row[3] for row in customers]
    assert all(str(e).startswith("pii_") for e in emails) and len(set(emails)) == 10
    sample_file = project / "target" / "dbtproof-sample" / "sample-dev.duckdb"
    assert not any(value.encode() in sample_file.read_bytes() for value in PII_VALUES)


def test_sample_is_recorded_in_an_evidence_chain(duck: dict[str, Any]) -> None:
    project, record = duck["project"], duck["record"]
    evidence = project / "target" / "dbtproof-sample" / "evidence" / f"{record.run_id}.jsonl"
    verdict = verify(evidence)
    assert verdict.ok, verdict.describe()
    tables = [r for r in verdict.records if r["type"] == "sample_table"]
    assert {t["name"]: t["masked"] for t in tables}["seed__raw_customers"] == [
        "last_name",
        "email",
    ]
    assert verdict.records[-1]["sample_file_sha256"] == _sha256(
        project / "target" / "dbtproof-sample" / "sample-dev.duckdb"
    )
    assert load_record(project / "target" / "dbtproof-sample", "dev").run_id == record.run_id


def test_profiles_are_aggregates_without_pii(duck: dict[str, Any]) -> None:
    staging = {p.name: p.to_dict() for p in duck["profiles"]["stg_customers"]}
    assert staging["email"] == {
        "name": "email",
        "data_type": staging["email"]["data_type"],
        "pii": True,
        "row_count": None,
        "null_share": None,
        "distinct_count": None,
        "min": None,
        "max": None,
        "withheld": "pii",
    }
    assert staging["customer_id"]["row_count"] == 10
    assert staging["customer_id"]["distinct_count"] == 10
    assert (staging["customer_id"]["min"], staging["customer_id"]["max"]) == (1, 10)
    assert staging["first_name"]["min"] is None  # text: no min/max
    assert json.dumps(staging)  # JSON-safe: dates as text
    assert all(p.withheld in ("pii", "below minimum group size") for p in duck["small"])
    assert all(p.row_count is None for p in duck["small"])


def test_every_proposal_passes_and_is_scored(duck: dict[str, Any]) -> None:
    proposals: list[Proposal] = duck["proposals"]
    assert proposals and all(p.passes for p in proposals)
    assert all(v.passed and v.failures == 0 for v in duck["verdicts"])
    by_id = {p.id: p for p in proposals}
    unit = by_id["customers.unit_test"]
    assert set(unit.kills) == {"join_type_1", "aggregate_swap_1", "aggregate_swap_2",
                               "aggregate_swap_3"}  # fmt: skip
    revenue = by_id["fct_daily_revenue.unit_test"]
    assert "drop_filter_1" in revenue.kills
    assert by_id["customers.customer_id.relationships"].test is not None
    # existing tests are never proposed again
    assert "customers.customer_id.unique" not in by_id
    assert "orders.order_id.unique" not in by_id
    nothing = [p for p in proposals if p.kills_nothing]
    assert nothing and all(p.to_dict()["kills_nothing"] for p in nothing)
    text = json.dumps([p.to_dict() for p in proposals])
    assert not any(value in text for value in PII_VALUES)


def test_workspace_reads_the_sample_and_leaves_it_unchanged(duck: dict[str, Any]) -> None:
    assert duck["sample_unchanged"]
    # the unit test's given rows come from the sample: 15 payments at most
    unit = {p.id: p for p in duck["proposals"]}["stg_payments.unit_test"]
    assert unit.unit is not None
    [given] = unit.unit["given"]
    assert given["input"] == "source('shop', 'raw_payments')"


def test_patch_applies_once_and_dbt_runs_it(
    duck: dict[str, Any], tmp_path: Path, run_command: Any
) -> None:
    project = copy_shop(tmp_path / "shop")
    proposals = duck["proposals"]
    patch = yaml_patch(project, proposals)
    assert patch.startswith("--- a/models/marts/schema.yml")
    assert "+          - relationships:" in patch
    original = (project / "models" / "marts" / "schema.yml").read_text()
    written = apply_patch(project, proposals)
    assert {p.relative_to(project).as_posix() for p in written} == {
        "models/marts/schema.yml",
        "models/staging/schema.yml",
    }
    after = (project / "models" / "marts" / "schema.yml").read_text()
    assert "# Who may read the mart." in after  # comments kept
    assert after.count("customers_from_sample") == 1
    assert len(after) > len(original)
    assert yaml_patch(project, proposals) == ""  # nothing twice
    assert apply_patch(project, proposals) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "SHOP_"))}
    dbt = str(Path(sys.executable).with_name("dbt"))
    result = run_command([dbt, "build", "--profiles-dir", "."], project, env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "customers_from_sample" in result.stdout
    assert "ERROR=0" in result.stdout


def test_protected_target_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_shop(tmp_path / "shop")
    _clean_environment(monkeypatch)
    monkeypatch.chdir(project)
    for command in (["sample"], ["propose"]):
        code = main([*command, "--profiles-dir", str(project), "--target", "prod"])
        assert code == 2
        assert "target 'prod' of profile 'shop'" in capsys.readouterr().err
    assert not (project / "target" / "dbtproof-sample").exists()
    assert not (project / "prod.duckdb").exists()


def test_propose_without_a_sample_says_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_shop(tmp_path / "shop")
    _clean_environment(monkeypatch)
    monkeypatch.chdir(project)
    opening = open_workspace(project, profiles_dir=project)
    with pytest.raises(DbtproofError, match=r"dbtproof sample --target dev"), opening:
        pass


# -- mutations ------------------------------------------------------------------------


def test_mutations_name_the_same_places_around_fixtures() -> None:
    model = (
        "select c.id, sum(o.amount) as total from c left join o on c.id = o.cid "
        "where o.status <> 'returned' group by c.id"
    )
    names = [m.name for m in mutations_of(model, "duckdb")]
    assert names == ["aggregate_swap_1", "join_type_1", "drop_filter_1"]
    wrapped = (
        "with __dbtproof__model__x__o as (select 1 as cid where true), c as (select 1 as id) "
        + model
    )
    assert [m.name for m in mutations_of(wrapped, "duckdb")] == names
    dropped = mutate(wrapped, Mutation("drop_filter_1", ""), "duckdb")
    assert "WHERE TRUE" in dropped and "returned" not in dropped
    assert "MAX(o.amount)" in mutate(model, Mutation("aggregate_swap_1", ""), "duckdb")
    inner = mutate(model, Mutation("join_type_1", ""), "duckdb")
    assert "LEFT" not in inner and " JOIN o ON" in inner
    with pytest.raises(ValueError):
        mutate(model, Mutation("drop_filter_2", ""), "duckdb")


# -- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def shop_pg_agents(
    tmp_path: Path, pg_role: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    """The example on PostgreSQL as the server's superuser (so that propose works as a
    run role of its own), its password a canary variable; yields the project and a unique
    schema for its sample (dropped afterwards)."""
    project = copy_shop(tmp_path / "shop")
    _clean_environment(monkeypatch)
    monkeypatch.chdir(project)
    for name, value in {**pg_role, "SHOP_PG_USER": "postgres", "SHOP_PG_PASSWORD": CANARY}.items():
        monkeypatch.setenv(name, value)
    prefix = unique_prefix()
    yield project, f"{prefix}sample"
    drop_pg_schemas(prefix)


def test_postgres_sample_and_propose_write_only_their_namespaces(
    shop_pg_agents: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, schema = shop_pg_agents
    outside = _ours_outside()
    base = ["--profiles-dir", str(project), "--target", "postgres"]
    assert main(["sample", *base, "--rows", "12", "--sample-schema", schema]) == 0
    sampled = capsys.readouterr().out
    assert "masked: last_name, email" in sampled
    assert main(["propose", "customers", *base, "--json"]) == 0
    proposals = json.loads(capsys.readouterr().out)
    assert proposals and all(p["passes"] for p in proposals)
    assert {p["model"] for p in proposals} == {"customers"}
    assert "customers.unit_test" in {p["id"] for p in proposals}
    with open_workspace(project, target="postgres", profiles_dir=project) as ws:
        assert ws.session.access.run_role is not None  # the run works as a role of its own
        # which may read the sample's tables, and write nothing there
        assert len(ws.query(f'select * from "{schema}".seed__raw_orders')) == 12
        with pytest.raises(DbtproofError, match="permission denied"):
            ws.session.connections.execute(f'create table "{schema}".planted as select 1 as x')
        with pytest.raises(DbtproofError, match="permission denied"):
            ws.session.connections.execute(f'delete from "{schema}".seed__raw_orders')
    assert _ours_outside() == outside  # the sample's schema is under the test's prefix
    with superuser_connection() as connection, connection.cursor() as cursor:
        table = f'"{schema}".seed__raw_customers'
        cursor.execute(f"select count(*), count(distinct email) from {table}")
        assert cursor.fetchone() == (10, 10)
        cursor.execute(f"select email, last_name from {table}")
        assert not any(value in repr(cursor.fetchall()) for value in PII_VALUES)
        cursor.execute(f'select count(*) from "{schema}".seed__raw_payments')
        assert cursor.fetchone() == (12,)


def test_no_canary_password_in_any_output(
    shop_pg_agents: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, schema = shop_pg_agents
    base = ["--profiles-dir", str(project), "--target", "postgres"]
    outputs = []
    assert main(["sample", *base, "--rows", "8", "--sample-schema", schema]) == 0
    outputs.append(capsys.readouterr())
    assert main(["propose", "customers", *base, "--write"]) == 0
    outputs.append(capsys.readouterr())
    profiles = project / "profiles.yml"
    text = profiles.read_text()
    assert "{{ env_var('SHOP_PG_PASSWORD', '') }}" in text
    profiles.write_text(text.replace("{{ env_var('SHOP_PG_PASSWORD', '') }}", LITERAL_CANARY))
    assert main(["propose", "orders", *base, "--json"]) == 0
    outputs.append(capsys.readouterr())
    assert main(["propose", "no_such_model+", *base]) in (0, 2)
    outputs.append(capsys.readouterr())
    texts = [o.out + o.err for o in outputs]
    for path in (project / "target" / "dbtproof-sample").rglob("*"):
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    for path in project.rglob("*.yml"):
        if path != profiles:  # the literal is written there, by the test
            texts.append(path.read_text())
    assert "customers_from_sample" in "".join(texts)  # --write wrote the proposals
    for text in texts:
        assert CANARY not in text and LITERAL_CANARY not in text


def test_duckdb_sources_are_read_from_a_copy_of_the_target_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_shop(tmp_path / "shop")
    _clean_environment(monkeypatch)
    monkeypatch.chdir(project)
    (project / "models" / "staging" / "legacy.yml").write_text(
        "version: 2\nsources:\n  - name: legacy\n    schema: legacy\n    tables:\n"
        "      - name: visits\n        columns:\n          - name: email\n"
        "            meta: {pii: true}\n"
    )
    target_file = project / "shop.duckdb"  # the dev target's own database
    with duckdb.connect(str(target_file)) as connection:
        connection.execute("create schema legacy")
        connection.execute(
            "create table legacy.visits as select i as id, 'user' || i || '@example.com' "
            "as email from range(50) as t(i)"
        )
    before = _sha256(target_file)
    record, _ = take_sample(
        project,
        project / "target" / "dbtproof-sample",
        profiles_dir=project,
        options=SampleOptions(rows=20),
    )
    visits = record.table_for("source.shop.legacy.visits")
    assert visits is not None and visits.rows == 20 and visits.masked == ["email"]
    rows = _sample_rows(project, "source__legacy__visits")
    assert len(rows) == 20 and all(str(email).startswith("pii_") for _, email in rows)
    assert "@example.com" not in repr(rows)
    assert _sha256(target_file) == before  # read from a copy, never opened by the run
