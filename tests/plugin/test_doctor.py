"""``dbtproof doctor``, run as users run it (a subprocess), on DuckDB and PostgreSQL.

It names the profiles.yml that won and why, the target and adapter, the variables the
target reads (never their values), what a credential provider would mint (never the
token), and connects: identity, schema creation, warnings for a superuser or a
production schema it owns. Exit code 0 only when tests could run; ``--json`` too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from conftest import PG_DATABASE, PG_HOST, PG_PORT, PG_ROLE, unique_prefix
from credential_endpoints import GitHubTokenEndpoint, endpoint  # noqa: F401 (a fixture)

CANARY = "canary-secret-5b9e31d7"


def doctor(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    """Run ``dbtproof doctor`` in *cwd*; its stdout and stderr, and its exit code."""
    done = subprocess.run(
        [sys.executable, "-m", "dbtproof.cli.main", "doctor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    return done.stdout + done.stderr, done.returncode


def doctor_json(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict, int]:
    """``dbtproof doctor --json``: the parsed report and the exit code."""
    output, code = doctor(cwd, "--json", *args, env=env)
    return json.loads(output), code


def messages(report: dict, section: str, status: str | None = None) -> list[str]:
    """The messages of one section of a JSON report (of one status)."""
    return [
        finding["message"]
        for finding in report["sections"][section]
        if status is None or finding["status"] == status
    ]


# -- DuckDB ---------------------------------------------------------------------------


def test_duckdb_ready(shop: Path) -> None:
    output, code = doctor(shop)
    assert code == 0, output
    assert f"the current directory: {shop} (holds profiles.yml) <- used" in output
    assert "DBT_PROFILES_DIR: unset" in output
    assert "profile 'shop', target 'dev' (chosen by the profile's `target:`" in output
    assert "adapter duckdb (dbt-duckdb " in output
    assert "SHOP_DUCKDB_PATH: read by path, not secret, unset (its default is used)" in output
    assert "may create a schema in database shop (created and dropped dbtproof_" in output
    assert output.rstrip().endswith("dbtproof doctor: tests can run.")
    assert not (shop / "shop.duckdb").exists(), "the user's database file is never touched"


def test_the_profiles_search_names_the_winner_and_why(shop: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "profiles"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text((shop / "profiles.yml").read_text())
    report, code = doctor_json(shop, env={"DBT_PROFILES_DIR": str(elsewhere)})
    assert code == 0
    steps = {f["source"]: f for f in report["sections"]["profiles"]}
    assert steps["DBT_PROFILES_DIR"]["chosen"] and steps["DBT_PROFILES_DIR"]["has_profiles_yml"]
    assert steps["the current directory"]["has_profiles_yml"]  # checked, but not used
    assert not steps["the current directory"]["chosen"]
    output, code = doctor(shop, "--profiles-dir", str(tmp_path / "nowhere"))
    assert code == 1
    assert f"--profiles-dir: {tmp_path / 'nowhere'} (no profiles.yml there) <- used" in output
    assert "tests cannot run" in output


def test_a_protected_target_is_not_connected_to(shop: Path) -> None:
    output, code = doctor(shop, "--target", "prod")
    assert code == 1
    assert "target 'prod' of profile 'shop'" in output and "is protected" in output
    assert "--dbt-" not in output  # the command's own option names
    assert "connected to target" not in output


def test_an_unset_secret_is_an_error_and_its_fix_is_named(shop: Path) -> None:
    text = (shop / "profiles.yml").read_text()
    (shop / "profiles.yml").write_text(
        text.replace("threads: 1", "threads: 1\n      settings:\n        home_directory: "
                     "\"{{ env_var('DBT_ENV_SECRET_OIDC_TOKEN') }}\"", 1)
    )  # fmt: skip
    report, code = doctor_json(shop)
    assert code == 1 and report["ok"] is False
    [error] = messages(report, "environment", "error")
    assert "DBT_ENV_SECRET_OIDC_TOKEN: read by settings, secret, unset and without default" in error
    assert "mint it with --credentials PROVIDER" in error
    assert messages(report, "connection") == ["not tested: fix the errors above first"]


# -- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def pg_env(shop: Path, pg_role: dict[str, str]) -> dict[str, str]:
    """The example's ``postgres`` target as the suite's role, its password a canary."""
    return {**pg_role, "SHOP_PG_PASSWORD": CANARY}


def test_postgres_superuser_is_a_warning(shop: Path, pg_env: dict[str, str]) -> None:
    report, code = doctor_json(
        shop, "--target", "postgres", env={**pg_env, "SHOP_PG_USER": "postgres"}
    )
    assert code == 0, report
    [identity] = [f for f in report["sections"]["connection"] if "identity" in f]
    assert identity["identity"]["current_user"] == "postgres"
    [warning] = messages(report, "connection", "warning")
    assert "postgres is a superuser" in warning


def test_postgres_least_privileged_role_has_no_warning(shop: Path, pg_env: dict[str, str]) -> None:
    output, code = doctor(shop, "--target", "postgres", env=pg_env)
    assert code == 0, output
    assert f"identity: current_user {PG_ROLE}, session_user {PG_ROLE}, superuser False" in output
    assert "WARNING" not in output
    assert "may create a schema in database test (created and dropped dbtproof_" in output
    assert "SHOP_PG_PASSWORD: read by password, secret" in output
    assert CANARY not in output


def test_a_protected_server_under_another_spelling_gets_nothing(
    shop: Path, pg_env: dict[str, str]
) -> None:
    """The target reaches the server through its Unix socket; a protected target names it
    127.0.0.1: a socket folder is this machine, so the doctor refuses before connecting and
    creates no schema there."""
    import psycopg2

    with (
        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user="postgres"
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("show unix_socket_directories")
        folders = [f.strip() for f in str(cursor.fetchone()[0]).split(",") if f.strip()]
    connection.close()
    if not folders:
        pytest.skip("the PostgreSQL server listens on no Unix socket")
    profiles = (shop / "profiles.yml").read_text()
    (shop / "profiles.yml").write_text(
        profiles + f"    prod_pg: {{type: postgres, host: {PG_HOST}, port: {PG_PORT}, "
        f"user: nobody, password: '', dbname: {PG_DATABASE}, schema: analytics}}\n"
    )
    report, code = doctor_json(
        shop, "--target", "postgres", env={**pg_env, "SHOP_PG_HOST": folders[0]}
    )
    assert code != 0, report
    # a socket folder is this machine: refused before anything connects
    [error] = messages(report, "target", "error")
    assert f"uses the database {PG_DATABASE} of protected target 'prod_pg'" in error
    assert not [m for m in messages(report, "connection") if "may create a schema" in m]


@pytest.fixture
def production_schema(pg_role: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A database of its own holding a schema the suite's role owns, which a protected
    target of the profile names: ``(database, schema)``.

    Not in the suite's database: a schema the suite's role creates and drops there outside
    a namespace would be seen by the isolation guard of every run going on at once as the
    same role (``pytest -n 2``).
    """
    prefix = unique_prefix()
    database, schema = f"{prefix}doctor", f"{prefix}analytics"

    def run(dbname: str, *statements: str) -> None:
        connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, dbname=dbname, user="postgres")
        connection.autocommit = True  # create/drop database refuse a transaction
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    run(
        PG_DATABASE,
        f'create database "{database}"',
        f'grant connect, create, temporary on database "{database}" to {PG_ROLE}',
    )
    run(database, f'create schema "{schema}" authorization {PG_ROLE}')
    yield database, schema
    run(PG_DATABASE, f'drop database if exists "{database}" with (force)')


def test_owning_a_production_schema_is_a_warning(
    shop: Path, pg_env: dict[str, str], production_schema: tuple[str, str]
) -> None:
    database, schema = production_schema
    pg_env = {**pg_env, "SHOP_PG_DATABASE": database}
    with (shop / "profiles.yml").open("a") as profiles:
        profiles.write(
            f"    prod_pg:\n      type: postgres\n      host: {PG_HOST}\n      port: {PG_PORT}\n"
            f"      user: deployer\n      password: x\n      dbname: {database}\n"
            f"      schema: {schema}\n      threads: 1\n"
        )
    report, code = doctor_json(shop, "--target", "postgres", env=pg_env)
    assert code == 1  # it shares prod_pg's database: protected
    [error] = messages(report, "target", "error")
    assert f"uses the database {database} of protected target 'prod_pg'" in error
    assert "--allow-protected-target" in json.dumps(report)
    report, code = doctor_json(shop, "--target", "postgres", "--allow-protected-target", env=pg_env)
    assert code == 0
    [allowed] = messages(report, "target", "warning")
    assert "(allowed by --allow-protected-target)" in allowed
    reached, owns = messages(report, "connection", "warning")
    assert "reached the server of protected target 'prod_pg'" in reached
    assert "(allowed by --allow-protected-target)" in reached
    assert f"owns schema {schema} of protected target 'prod_pg'" in owns


def test_a_dotenv_file_is_read_as_dbt_reads_it_and_reported(
    shop: Path, pg_role: dict[str, str]
) -> None:
    """dbt-core 1.12 reads ``.env``: doctor reads it the same way before rendering the
    profile (the password the target reads is set by it), names what it sets, warns of the
    secrets it holds and of the protected target it names, and shows no value."""
    from dbtproof import _dbt_compat as compat

    if not compat.dbt_reads_env_file():
        pytest.skip(f"dbt-core {compat.dbt_version()} reads no .env file (1.12 does)")
    extra = "canary-dotenv-7c41e0aa93"
    (shop / ".env").write_text(
        f"SHOP_PG_PASSWORD={CANARY}\nDBT_ENV_SECRET_EXTRA={extra}\nDBT_TARGET=prod\n"
    )
    env = {name: value for name, value in pg_role.items() if name != "SHOP_PG_PASSWORD"}
    assert "SHOP_PG_PASSWORD" not in os.environ
    report, code = doctor_json(shop, "--target", "postgres", env=env)
    assert code == 0, report
    found = messages(report, "environment")
    assert f"{shop / '.env'}: dbt reads it into the environment; it sets DBT_ENV_SECRET_EXTRA, " \
        "DBT_TARGET, SHOP_PG_PASSWORD" in found, found  # fmt: skip
    [password] = [m for m in found if m.startswith("SHOP_PG_PASSWORD: read by password, secret")]
    assert password.endswith(", set by the .env file"), password
    warnings = messages(report, "environment", "warning")
    assert any(
        "holds secrets (DBT_ENV_SECRET_EXTRA): keep it out of version" in w for w in warnings
    )
    assert any("sets DBT_TARGET=prod, a protected target (matches 'prod*')" in w for w in warnings)
    text, code = doctor(shop, "--target", "postgres", env=env)
    assert code == 0, text
    assert CANARY not in text and extra not in text, text
    assert CANARY not in json.dumps(report) and extra not in json.dumps(report)


def test_a_failing_connection_exits_non_zero(shop: Path, pg_env: dict[str, str]) -> None:
    port = free_port()
    output, code = doctor(shop, "--target", "postgres", env={**pg_env, "SHOP_PG_PORT": str(port)})
    assert code == 1
    assert "cannot connect to target 'postgres'" in output or "could not" in output
    assert "tests cannot run" in output
    assert CANARY not in output


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- credentials and secrets ----------------------------------------------------------


def test_doctor_shows_what_a_provider_mints_and_no_secret(
    shop: Path,
    pg_env: dict[str, str],
    endpoint: GitHubTokenEndpoint,  # noqa: F811
) -> None:
    text = (shop / "profiles.yml").read_text()
    (shop / "profiles.yml").write_text(
        text.replace(
            "password: \"{{ env_var('SHOP_PG_PASSWORD', '') }}\"",
            "password: \"{{ env_var('DBT_ENV_SECRET_OIDC_TOKEN') }}\"",
        )
    )
    env = {**pg_env, "DBT_ENV_SECRET_PLANTED": CANARY}
    spec = "github-oidc:audience=sts.amazonaws.com"
    output, code = doctor(shop, "--target", "postgres", "--credentials", spec, env=env)
    report, json_code = doctor_json(shop, "--target", "postgres", "--credentials", spec, env=env)
    assert code == json_code == 0, output
    assert (
        "github-oidc mints DBT_ENV_SECRET_OIDC_TOKEN: issuer "
        "https://token.actions.githubusercontent.com, audience sts.amazonaws.com, subject "
        "repo:acme/shop:ref:refs/heads/main, expires " in output
    )
    assert "DBT_ENV_SECRET_OIDC_TOKEN: read by password, secret, minted by a credential" in output
    [minted] = report["sections"]["credentials"]
    assert minted["audience"] == "sts.amazonaws.com" and minted["expires"].endswith("Z")
    assert len(endpoint.issued) >= 2
    everything = output + json.dumps(report)
    for secret in [*endpoint.issued, CANARY, "request-token-7c1d2e"]:
        assert secret not in everything
    for token in endpoint.issued:  # nor any piece of it
        assert all(part not in everything for part in token.split("."))


def test_doctor_refuses_to_mint_for_untrusted_code(
    shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811
) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target"}
    output, code = doctor(shop, "--credentials", "github-oidc:audience=a", env=env)
    assert code == 1
    assert "refusing to mint credentials" in output
    assert "--allow-untrusted-credentials" in output and "--dbt-" not in output
    assert endpoint.issued == []


def test_a_password_that_is_the_user_is_a_warning(shop: Path, pg_env: dict[str, str]) -> None:
    output, code = doctor(
        shop,
        "--target",
        "postgres",
        env={**pg_env, "SHOP_PG_USER": "postgres", "SHOP_PG_PASSWORD": "postgres"},
    )
    assert code == 0, output
    assert (
        "WARNING the password of target 'postgres' equals its type and user: anyone reading the "
        "profile or a run's output can guess it" in output
    ), output
    assert "postgres is a superuser" in output
    assert "*****" not in output, "the user, the adapter and the database stay readable"


def test_a_user_read_from_a_dbt_env_secret_variable_stays_masked(
    shop: Path, pg_env: dict[str, str]
) -> None:
    """The profile declares the user a secret (``DBT_ENV_SECRET_PG_USER``): doctor's
    identity line masks it, though the rendered target shows it as the user."""
    profiles = shop / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace(
            "env_var('SHOP_PG_USER', 'postgres')", "env_var('DBT_ENV_SECRET_PG_USER')"
        )
    )
    output, code = doctor(
        shop, "--target", "postgres", env={**pg_env, "DBT_ENV_SECRET_PG_USER": PG_ROLE}
    )
    assert code == 0, output
    assert "identity" in output and "*****" in output, output
    assert PG_ROLE not in output, output
