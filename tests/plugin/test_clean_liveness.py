"""`dbtproof clean` never drops a live run, works on DuckDB, and fails in one line.

A live run is a real pytest process blocked inside a test (waiting for a file); a dead
one is a run killed with SIGKILL. Both run side by side; `clean --older-than 0m
--execute` must drop only the dead one's namespace.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import copy_shop, duckdb_query, pg_namespaces, pg_schemas, unique_prefix
from test_lifecycle_postgres import DBTPROOF, start_pytest, wait_for

WAITING_TEST = """
import time
from pathlib import Path

def test_waits_for_release(dbt):
    dbt.seed(select="raw_customers")
    Path("seeded").write_text(dbt.schema)
    while not Path("release").exists():
        time.sleep(0.2)
"""


def _run_until_seeded(folder: Path, ini: str, env: dict[str, str] | None = None) -> tuple:
    copy_shop(folder)
    (folder / "pytest.ini").write_text(ini)
    (folder / "pytests" / "test_wait.py").write_text(WAITING_TEST)
    if env:
        os.environ.update(env)
    run = start_pytest(folder, "pytests")
    wait_for(folder / "seeded", run)
    return run, (folder / "seeded").read_text()


def _clean(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBTPROOF, "clean", "--older-than", "0m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def _kill(run: subprocess.Popen[str]) -> None:
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)


def test_clean_keeps_a_live_postgres_run_and_drops_a_dead_one(shop: Path, shop_pg: str) -> None:
    ini = (shop / "pytest.ini").read_text()
    dead, dead_schema = _run_until_seeded(shop / "dead", ini)
    _kill(dead)
    live, live_schema = _run_until_seeded(shop / "live", ini)
    try:
        assert pg_namespaces(shop_pg) == sorted([dead_schema, live_schema])
        # both are younger than 24h: only the dead run's schema is counted as not listed
        young = _clean(shop, "--target", "postgres", "--prefix", shop_pg, "--older-than", "24h")
        assert young.returncode == 0, young.stderr
        dead_schemas = len([s for s in pg_schemas(shop_pg) if s.startswith(dead_schema)])
        not_listed = f"{dead_schemas} namespace schema(s) younger than --older-than 24h not listed"
        assert dead_schemas and not_listed in young.stdout, young.stdout
        cleaned = _clean(shop, "--target", "postgres", "--prefix", shop_pg, "--execute")
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"keeping {live_schema}: its run is still alive" in cleaned.stdout
        assert f"dropping {dead_schema}" in cleaned.stdout
        assert pg_namespaces(shop_pg) == [live_schema], "the live run's namespace survives"
    finally:
        (shop / "live" / "release").touch()
        output = live.communicate(timeout=180)[0]
    assert live.returncode == 0, output
    assert pg_schemas(shop_pg) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_clean_connection_failure_is_one_line(shop: Path, shop_pg: str) -> None:
    result = _clean(
        shop, "--target", "postgres", "--prefix", shop_pg, env={"SHOP_PG_PORT": str(_free_port())}
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dbtproof clean: cannot connect to target 'postgres'"), lines[0]


def test_clean_messages_name_its_own_options(shop: Path, tmp_path: Path) -> None:
    (shop / "profiles.yml").unlink()
    result = _clean(shop, env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "pass --profiles-dir" in result.stderr and "--dbt-" not in result.stderr


def test_clean_on_duckdb_removes_dead_run_folders_only(shop: Path, tmp_path: Path) -> None:
    prefix = unique_prefix()
    ini = f"[pytest]\ndbt_schema_prefix = {prefix}\n"
    temproot = {"PYTEST_DEBUG_TEMPROOT": str(tmp_path / "temproot")}
    (tmp_path / "temproot").mkdir()
    saved = os.environ.get("PYTEST_DEBUG_TEMPROOT")
    try:
        dead, dead_schema = _run_until_seeded(shop / "dead", ini, temproot)
        _kill(dead)
        live, live_schema = _run_until_seeded(shop / "live", ini, temproot)
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DEBUG_TEMPROOT", None)
        else:
            os.environ["PYTEST_DEBUG_TEMPROOT"] = saved
    try:
        folders = {p.name: p for p in (tmp_path / "temproot").rglob(f"{prefix}*") if p.is_dir()}
        assert set(folders) == {dead_schema, live_schema}
        cleaned = _clean(shop, "--prefix", prefix, "--execute", env=temproot)
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"keeping {live_schema}: its run is still alive" in cleaned.stdout
        assert f"dropping {dead_schema}" in cleaned.stdout
        assert not folders[dead_schema].exists()
        assert folders[live_schema].exists()
        assert not (shop / "shop.duckdb").exists(), "clean creates no database file"
    finally:
        (shop / "live" / "release").touch()
        output = live.communicate(timeout=180)[0]
    assert live.returncode == 0, output


def test_clean_on_duckdb_drops_namespaces_in_existing_files_only(shop: Path) -> None:
    old = "dbtproof_202001010000_abc123"
    for name in ("main.duckdb", "lake.duckdb"):
        duckdb_query(
            shop / name,
            f"create schema {old}; create schema {old}_marts; create schema keepme; "
            f"create table {old}_marts.t as select 1 as a; select 1",
        )
    (shop / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: main.duckdb\n      schema: main\n      attach:\n"
        "        - {path: lake.duckdb, alias: lake}\n"
        "        - {path: missing.duckdb, alias: missing}\n"
    )
    listed = _clean(shop)
    assert listed.returncode == 0, listed.stderr
    assert f"would drop {old}_marts" in listed.stdout
    dropped = _clean(shop, "--execute")
    assert dropped.returncode == 0, dropped.stderr
    schemas = "select schema_name from information_schema.schemata order by 1"
    for name in ("main.duckdb", "lake.duckdb"):
        names = [row[0] for row in duckdb_query(shop / name, schemas)]
        assert old not in names and f"{old}_marts" not in names and "keepme" in names
    assert not (shop / "missing.duckdb").exists(), "clean creates no database file"


@pytest.fixture(autouse=True)
def _no_stray_temproot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_DEBUG_TEMPROOT", raising=False)


def test_clean_without_file_marks_removes_no_run_folder(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without fcntl (Windows) a run holds no file mark, so no folder says its run is alive:
    `clean --execute` leaves every run folder alone, and says so. With fcntl, the same
    mark-less folder is a dead run's, removed."""
    from dbtproof.cli import main as cli
    from dbtproof.safety import liveness

    prefix = unique_prefix()
    workdir = tmp_path / "base" / "dbtproof" / f"{prefix}202001010000_abc123"
    workdir.mkdir(parents=True)
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", str(tmp_path / "temproot"))
    argv = ["clean", "--older-than", "0m", "--prefix", prefix, "--basetemp", str(tmp_path / "base")]
    fcntl = liveness.fcntl
    monkeypatch.setattr(liveness, "fcntl", None)
    assert cli.main([*argv, "--execute"]) == 0
    assert "run folders left alone: without fcntl" in capsys.readouterr().out
    assert workdir.is_dir(), "a folder whose run may be alive is kept"
    monkeypatch.setattr(liveness, "fcntl", fcntl)
    assert cli.main([*argv, "--execute"]) == 0
    assert f"dropping {workdir.name}" in capsys.readouterr().out
    assert not workdir.exists()


def test_clean_says_how_many_younger_dead_runs_it_did_not_list(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed run's folder younger than the default ``--older-than`` is counted, with the
    way to list it; ``--help`` shows the default."""
    from dbtproof.cli import main as cli
    from dbtproof.safety.namespace import new_run_id

    prefix = unique_prefix()
    workdir = tmp_path / "base" / "dbtproof" / new_run_id(prefix)  # a minute old: no live lock
    workdir.mkdir(parents=True)
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", str(tmp_path / "temproot"))
    argv = ["clean", "--prefix", prefix, "--basetemp", str(tmp_path / "base")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "0 leftover run folder(s)" in out
    assert (
        "1 run folder(s) of dead runs younger than --older-than 24h not listed; --older-than 0m "
        "lists them too." in out
    ), out
    assert cli.main([*argv, "--older-than", "0m"]) == 0
    out = capsys.readouterr().out
    assert f"would drop {workdir.name}" in out and "not listed" not in out
    with pytest.raises(SystemExit):
        cli.main(["clean", "--help"])
    assert "(default: 24h;" in " ".join(capsys.readouterr().out.split())
