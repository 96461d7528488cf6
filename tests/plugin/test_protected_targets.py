"""Protected targets: names compared normalised against glob patterns, and targets that
share a protected target's database, schema or DuckDB file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtproof.errors import ProtectedTargetError
from dbtproof.project.discovery import load_profile_target
from dbtproof.project.servers import ServerFacts
from dbtproof.session.settings import SessionSettings, check_protected, check_protected_server

CYRILLIC_PROD = "pr\u043ed"  # "prоd" with a Cyrillic о
SMALL_CAPITAL_PROD = "\u1d18rod"  # "ᴘrod" with LATIN LETTER SMALL CAPITAL P
GREEK_PROD = "\u03c1rod"  # "ρrod" with a Greek rho
BOLD_PROD = "\U0001d429\U0001d42b\U0001d428\U0001d41d"  # mathematical bold "prod"

PROFILES = f"""
p:
  target: dev
  outputs:
    dev: {{type: duckdb, path: dev.duckdb, schema: main}}
    ci: {{type: duckdb, path: ./data/../prod.duckdb, schema: main}}
    prod: {{type: duckdb, path: prod.duckdb, schema: main}}
    production_eu: {{type: duckdb, path: eu.duckdb}}
    prod-eu: {{type: duckdb, path: eu2.duckdb}}
    live_db: {{type: duckdb, path: live.duckdb}}
    " prod": {{type: duckdb, path: p2.duckdb}}
    {CYRILLIC_PROD}: {{type: duckdb, path: p3.duckdb}}
    "ＰＲＯＤ": {{type: duckdb, path: p4.duckdb}}
    {SMALL_CAPITAL_PROD}: {{type: duckdb, path: p7.duckdb}}
    {GREEK_PROD}: {{type: duckdb, path: p8.duckdb}}
    {BOLD_PROD}: {{type: duckdb, path: p9.duckdb}}
    pr0d_eu: {{type: duckdb, path: p10.duckdb}}
    "l\u0131ve": {{type: duckdb, path: p11.duckdb}}
    linear: {{type: duckdb, path: linear.duckdb}}
    eu_prod: {{type: duckdb, path: p5.duckdb}}
    prd_1: {{type: duckdb, path: p6.duckdb}}
    staging: {{type: duckdb, path: staging.duckdb}}
    reproduce: {{type: duckdb, path: reproduce.duckdb}}
    memory: {{type: duckdb, path: ":memory:"}}
    pg_prod: {{type: postgres, host: db.example, dbname: analytics, schema: public}}
    pg_ci: {{type: postgres, host: db.example, dbname: ANALYTICS, schema: dbt_ci}}
    pg_dev: {{type: postgres, host: db.example, dbname: dev, schema: public}}
    pg_other_server: {{type: postgres, host: other.example, dbname: analytics, schema: x}}
    pg_env: {{type: postgres, host: db.example, dbname: "{{{{ env_var('T_DB') }}}}"}}
    live_spark: {{type: spark, host: h, schema: warehouse}}
    prod_loopback: {{type: postgres, host: 127.0.0.1, port: 5432, dbname: warehouse}}
    pg_localhost: {{type: postgres, host: LocalHost, dbname: WAREHOUSE, schema: ci}}
    pg_localhost_port: {{type: postgres, host: localhost, port: "5432", dbname: warehouse}}
    pg_other_port: {{type: postgres, host: localhost, port: 5433, dbname: warehouse}}
    pg_v6_loopback: {{type: postgres, host: "::1", dbname: warehouse}}
    spark_ci: {{type: spark, host: h, schema: warehouse}}
    prod_env_host: {{type: postgres, host: "{{{{ env_var('PROD_HOST') }}}}", port: 5432,
                    dbname: analytics_env}}
    pg_env_host_dev: {{type: postgres, host: localhost, port: 5432, dbname: analytics_env}}
    prod_socket: {{type: postgres, host: /var/run/postgresql, port: 5432, dbname: sockdb}}
    pg_socket_dev: {{type: postgres, host: 127.0.0.1, port: 5432, dbname: sockdb}}
"""


def _check(folder: Path, name: str, patterns: tuple[str, ...] | None = None) -> None:
    target = load_profile_target(folder, "p", name)
    extra = {} if patterns is None else {"protected_targets": patterns}
    settings = SessionSettings(
        project_dir=folder, profiles_dir=folder, workdir=folder, run_id="x", **extra
    )
    check_protected(target, settings)


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "profiles.yml").write_text(PROFILES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("T_DB", "analytics")
    monkeypatch.delenv("PROD_HOST", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "name",
    ["prod", "production_eu", "prod-eu", "live_db", " prod", CYRILLIC_PROD, "ＰＲＯＤ", "eu_prod",
     "prd_1", "pg_prod", "live_spark", SMALL_CAPITAL_PROD, GREEK_PROD, BOLD_PROD, "pr0d_eu",
     "l\u0131ve"],
)  # fmt: skip
def test_protected_names_are_refused(profiles: Path, name: str) -> None:
    with pytest.raises(ProtectedTargetError, match="is protected .its name matches"):
        _check(profiles, name)


@pytest.mark.parametrize(
    ("name", "shared"),
    [
        ("ci", "DuckDB file"),
        ("pg_ci", "database analytics"),
        ("pg_env", "database analytics"),
        ("spark_ci", "schema warehouse"),
        ("pg_localhost", "database warehouse"),
        ("pg_localhost_port", "database warehouse"),
        ("pg_v6_loopback", "database warehouse"),
        ("pg_socket_dev", "database sockdb"),
    ],
)
def test_targets_sharing_a_protected_targets_place_are_refused(
    profiles: Path, name: str, shared: str
) -> None:
    with pytest.raises(ProtectedTargetError, match=f"uses the {shared}.* of protected target"):
        _check(profiles, name)


@pytest.mark.parametrize(
    "name",
    [
        "dev",
        "staging",
        "reproduce",
        "memory",
        "linear",
        "pg_dev",
        "pg_other_server",
        "pg_other_port",
        "pg_env_host_dev",
    ],
)
def test_other_targets_run(profiles: Path, name: str) -> None:
    _check(profiles, name)


def _check_server(folder: Path, name: str, facts: ServerFacts) -> None:
    """The check once connected, with what the server said of itself (*facts*)."""
    from dbtproof import _dbt_compat as compat

    target = load_profile_target(folder, "p", name)
    settings = SessionSettings(project_dir=folder, profiles_dir=folder, workdir=folder, run_id="x")
    check_protected_server(
        target, settings, facts, lambda value: compat.render_profile_value(value, {})
    )


def test_an_unrenderable_protected_host_is_no_server_once_connected(profiles: Path) -> None:
    """``host: "{{ env_var('PROD_HOST') }}"`` unset says nothing of the server: a dev target
    on localhost with the same port and database name is not refused for it."""
    _check_server(
        profiles, "pg_env_host_dev", ServerFacts("127.0.0.1", 5432, "analytics_env", None)
    )


@pytest.mark.parametrize("address", ["127.0.0.1", None])
def test_a_protected_socket_folder_is_this_machine_once_connected(
    profiles: Path, address: str | None
) -> None:
    """``host: /var/run/postgresql`` is this machine: a server that answered on loopback
    or through a socket, same port and database, is the protected one."""
    with pytest.raises(ProtectedTargetError, match="reached the server of protected target "
                                                   "'prod_socket'"):  # fmt: skip
        _check_server(profiles, "pg_socket_dev", ServerFacts(address, 5432, "sockdb", None))


def test_ascii_is_read_as_the_confusables_data_reads_it() -> None:
    """A name of ASCII only is read without loading Unicode's data: the shortcut table
    gives what the data gives, character for character."""
    from dbtproof.project.lookalikes import ASCII_PROTOTYPES, Lookalikes

    lookalikes = Lookalikes()
    from_data = {
        char: lookalikes.from_data(char)
        for char in map(chr, range(32, 127))
        if char == char.casefold() and lookalikes.from_data(char) != char
    }
    assert from_data == dict(ASCII_PROTOTYPES)


def test_the_ini_list_replaces_the_patterns(profiles: Path) -> None:
    _check(profiles, "live_db", ("prod",))
    with pytest.raises(ProtectedTargetError, match="matches 'stag\\*'"):
        _check(profiles, "staging", ("stag*",))


def test_a_protected_name_stops_a_run(pytester: pytest.Pytester, shop: Path) -> None:
    profiles = (shop / "profiles.yml").read_text()
    (shop / "profiles.yml").write_text(profiles.replace("    prod:", "    production_eu:"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dbt-target",
                                           "production_eu")  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*target 'production_eu' of profile 'shop'*is protected*"])


def test_an_empty_protected_list_is_said_loudly(pytester: pytest.Pytester, shop: Path) -> None:
    """``dbt_protected_targets =`` (empty) switches protection off: the run goes on, and its
    header says so, once."""
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\ndbt_protected_targets =\n")
    (shop / "pytests" / "test_one.py").write_text("def test_one(dbt):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--dbt-target", "prod", "pytests/test_one.py"
    )
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    warning = "dbtproof: WARNING: PROTECTION IS OFF: dbt_protected_targets is empty in "
    assert output.count(warning) == 1, output
    assert f"empty in {shop / 'pytest.ini'}, so no target is refused" in output
    assert "to protect prod*, *_prod, *-prod, live*, prd* again" in output
    assert not (shop / "prod.duckdb").exists(), "writes still go to the run's own file"


def _refused_before_anything_exists(pytester: pytest.Pytester, prefix: str, expected: str) -> None:
    """Run the shop's one test against target ``postgres`` (a protected ``prod_pg`` names
    the server as 127.0.0.1:5432, database test); it must stop with *expected* before
    any schema of the run exists."""
    from conftest import superuser_connection

    shop = pytester.path
    profiles = (shop / "profiles.yml").read_text()
    (shop / "profiles.yml").write_text(
        profiles + "    prod_pg:\n      type: postgres\n      host: 127.0.0.1\n      port: 5432\n"
        "      user: nobody\n      password: ''\n      dbname: test\n      schema: analytics\n"
    )
    (shop / "pytests" / "test_one.py").write_text("def test_one(dbt):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "pytests/test_one.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    result.stderr.fnmatch_lines([f"*target 'postgres' of profile 'shop'*{expected}*"])
    assert "Traceback" not in result.stderr.str()
    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select count(*) from pg_namespace where nspname like %s", (f"{prefix}%",)
            )
            assert cursor.fetchone() == (0,), "nothing of the run was created"
    finally:
        connection.close()


def test_another_spelling_of_a_protected_server_is_refused(
    pytester: pytest.Pytester, shop_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test target reaches the PostgreSQL server as ``localhost``; a protected target of
    the profile names it ``127.0.0.1``, same port and database: one server, refused before
    anything connects."""
    monkeypatch.setenv("SHOP_PG_HOST", "localhost")
    _refused_before_anything_exists(
        pytester, shop_pg, "uses the database test of protected target 'prod_pg'"
    )


def test_a_protected_server_reached_through_its_socket_is_refused(
    pytester: pytest.Pytester, shop_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host spelled as the server's Unix socket folder is this machine: with the same
    port and database as the protected ``127.0.0.1``, the run stops before anything
    connects (the socket answer once connected: the ``_once_connected`` tests)."""
    from conftest import superuser_connection

    connection = superuser_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("show unix_socket_directories")
            folders = [f for f in str(cursor.fetchone()[0]).split(",") if f.strip()]
    finally:
        connection.close()
    if not folders:
        pytest.skip("the PostgreSQL server listens on no Unix socket")
    monkeypatch.setenv("SHOP_PG_HOST", folders[0].strip())
    _refused_before_anything_exists(
        pytester, shop_pg, "uses the database test of protected target 'prod_pg'"
    )
