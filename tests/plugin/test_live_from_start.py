"""A run is alive for `dbtproof clean` from its first moment, on DuckDB and PostgreSQL.

The run's start is held at two points by a conftest of the inner project (a file appears
when the start gets there; the start goes on once the test touches another): while dbt
parses (the run's folder and derived profile exist, nothing in the warehouse yet) and
after the run role and schemas were made (just before the grants). At each, `clean
--older-than 0m --execute` runs beside it — against the run's database and, on
PostgreSQL, against another database of the same server, where the run's role is
visible too — and must leave the run untouched: it then passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from conftest import unique_prefix
from private_postgres import PrivateCluster, private_postgres
from test_lifecycle_postgres import DBTPROOF, start_pytest, wait_for

from dbtproof.safety.liveness import advisory_key, run_id_of

#: Holds the start of the run at each point until the test says go.
HOLDING_CONFTEST = """
import time
from pathlib import Path

from dbtproof.session.access import SessionAccess
from dbtproof.session.parsing import SessionParsing


def _held(point, method):
    def held(self, *args, **kwargs):
        Path(f"at-{point}").write_text(str(self.host.workdir))
        while not Path(f"go-{point}").exists():
            time.sleep(0.05)
        return method(self, *args, **kwargs)

    return held


SessionParsing.parse = _held("parse", SessionParsing.parse)
SessionAccess.prepare_grants = _held("grants", SessionAccess.prepare_grants)
"""

SEEDING_TEST = """
def test_seeds_and_reads(dbt):
    dbt.seed(select="raw_customers")
    assert len(dbt.table("raw_customers")) > 0
"""

POINTS = ("parse", "grants")
CREATOR = "creator"
#: `clean`'s arguments for the example's PostgreSQL target.
PG = ("--target", "postgres")


def _held_run(shop: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """pytest started in *shop* with *env*, its start held at :data:`POINTS`."""
    (shop / "pytests" / "conftest.py").write_text(HOLDING_CONFTEST)
    (shop / "pytests" / "test_seed.py").write_text(SEEDING_TEST)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return start_pytest(shop, "pytests")


def _clean(
    shop: Path, prefix: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DBTPROOF, "clean", "--older-than", "0m", "--prefix", prefix, "--execute", *args],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _finish(run: subprocess.Popen[str]) -> str:
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 0, output[-4000:]
    return output


def test_a_starting_duckdb_run_is_never_cleaned(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = unique_prefix()
    (shop / "pytest.ini").write_text(f"[pytest]\ndbt_schema_prefix = {prefix}\n")
    (tmp_path / "temproot").mkdir()
    env = {"PYTEST_DEBUG_TEMPROOT": str(tmp_path / "temproot")}
    run = _held_run(shop, env, monkeypatch)
    try:
        for point in POINTS:
            wait_for(shop / f"at-{point}", run)
            workdir = Path((shop / f"at-{point}").read_text())
            for _ in range(2):
                cleaned = _clean(shop, prefix, env)
                assert "dropping" not in cleaned.stdout, f"at {point}:\n{cleaned.stdout}"
                assert f"keeping {workdir.name}" in cleaned.stdout, cleaned.stdout
            assert (workdir / "profile" / "profiles.yml").is_file(), f"at {point}"
            (shop / f"go-{point}").touch()
    finally:
        for point in POINTS:
            (shop / f"go-{point}").touch()
    _finish(run)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private cluster (trust auth): a login role that may create roles (so runs work as
    a run role of their own), and a second database."""
    with private_postgres("trust") as cluster:
        cluster.psql(f"create role {CREATOR} login nosuperuser nocreatedb createrole")
        cluster.psql(f"grant create, temporary on database postgres to {CREATOR}")
        cluster.psql("create database other")
        yield cluster


def _catalog(cluster: PrivateCluster, prefix: str, database: str = "postgres") -> list[str]:
    """The schemas (of *database*) and roles whose names start with *prefix*."""
    connection = psycopg2.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname=database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select nspname from pg_namespace where starts_with(nspname, %s) union all "
                "select rolname from pg_roles where starts_with(rolname, %s)",
                (prefix, prefix),
            )
            return sorted(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


def _point_at(shop: Path, cluster: PrivateCluster, prefix: str, tmp_path: Path) -> dict[str, str]:
    """The environment that points the example's ``postgres`` target at *cluster* as the
    role that may create roles, and pytest's basetemps at a folder of the test."""
    (shop / "pytest.ini").write_text(
        f"[pytest]\ndbt_target = postgres\ndbt_schema_prefix = {prefix}\n"
    )
    (tmp_path / "temproot").mkdir()
    return {
        "SHOP_PG_HOST": "127.0.0.1",
        "SHOP_PG_PORT": str(cluster.port),
        "SHOP_PG_USER": CREATOR,
        "SHOP_PG_DATABASE": "postgres",
        "PYTEST_DEBUG_TEMPROOT": str(tmp_path / "temproot"),
    }


def test_a_starting_postgres_run_is_never_cleaned_from_any_database(
    shop: Path, tmp_path: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = unique_prefix()
    env = _point_at(shop, cluster, prefix, tmp_path)
    run = _held_run(shop, env, monkeypatch)
    try:
        for point in POINTS:
            wait_for(shop / f"at-{point}", run)
            schema = Path((shop / f"at-{point}").read_text()).name
            before = _catalog(cluster, prefix)
            if point == "grants":  # the run role and its schemas exist now
                assert f"{schema}_role" in before and schema in before, before
            for database in ("postgres", "other"):
                cleaned = _clean(shop, prefix, {"SHOP_PG_DATABASE": database}, *PG)
                assert "dropping" not in cleaned.stdout, f"{point}, {database}:\n{cleaned.stdout}"
            assert _catalog(cluster, prefix) == before, f"at {point}"
            (shop / f"go-{point}").touch()
    finally:
        for point in POINTS:
            (shop / f"go-{point}").touch()
    _finish(run)
    assert _catalog(cluster, prefix) == []


def test_clean_drops_all_a_killed_postgres_run_left(
    shop: Path, tmp_path: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = unique_prefix()
    env = _point_at(shop, cluster, prefix, tmp_path)
    (shop / "go-parse").touch()
    run = _held_run(shop, env, monkeypatch)
    wait_for(shop / "at-grants", run)
    workdir = Path((shop / "at-grants").read_text())
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    schema = workdir.name
    left = _catalog(cluster, prefix)
    assert schema in left and f"{schema}_role" in left, left
    assert workdir.is_dir()
    cleaned = _clean(shop, prefix, {}, *PG)
    assert f"dropping role {schema}_role" in cleaned.stdout, cleaned.stdout
    assert f"dropping {schema}" in cleaned.stdout, cleaned.stdout
    assert not workdir.exists(), "the killed run's folder is removed"
    assert _catalog(cluster, prefix) == []


def _advisory_holders(cluster: PrivateCluster, run_id: str) -> int:
    """How many sessions of *cluster* hold the advisory lock of *run_id*."""
    key = advisory_key(run_id)
    connection = psycopg2.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and objsubid = 1 "
                "and classid::bigint = %s and objid::bigint = %s and granted",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            )
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_a_run_outlasting_the_servers_idle_timeout_is_never_cleaned(
    shop: Path, tmp_path: Path, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that ends idle sessions after a second (``idle_session_timeout``, common on
    managed services) must not end the run's advisory lock: its connection sits idle for
    the whole run. And were the lock lost anyway (its backend terminated), `clean` on the
    run's machine still keeps the run: its folder lock says it is alive."""
    prefix = unique_prefix()
    cluster.psql("create database idle")
    cluster.psql(f"grant create, temporary on database idle to {CREATOR}")
    cluster.psql("alter database idle set idle_session_timeout = '1s'")
    env = {**_point_at(shop, cluster, prefix, tmp_path), "SHOP_PG_DATABASE": "idle"}
    (shop / "go-parse").touch()
    run = _held_run(shop, env, monkeypatch)
    try:
        wait_for(shop / "at-grants", run)
        schema = Path((shop / "at-grants").read_text()).name
        run_id = run_id_of(schema, prefix)
        assert run_id is not None, schema
        time.sleep(3)  # the run's idle connections outlive the timeout
        assert _advisory_holders(cluster, run_id) == 1, "the lock outlives idle_session_timeout"
        before = _catalog(cluster, prefix, "idle")
        assert f"{schema}_role" in before and schema in before, before
        cleaned = _clean(shop, prefix, {}, *PG)
        assert "dropping" not in cleaned.stdout, cleaned.stdout
        cluster.psql(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            f"where application_name = 'dbtproof {run_id}'"
        )
        assert _advisory_holders(cluster, run_id) == 0
        cleaned = _clean(shop, prefix, {}, *PG)
        assert "dropping" not in cleaned.stdout, cleaned.stdout
        assert f"keeping {schema}: its run is still alive" in cleaned.stdout, cleaned.stdout
        assert _catalog(cluster, prefix, "idle") == before
    finally:
        (shop / "go-grants").touch()
    _finish(run)
    assert _catalog(cluster, prefix, "idle") == []


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYTEST_DEBUG_TEMPROOT", "SHOP_PG_HOST", "SHOP_PG_PORT", "SHOP_PG_USER",
                 "SHOP_PG_DATABASE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
