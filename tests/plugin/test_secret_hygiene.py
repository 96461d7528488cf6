"""No secret in any output: a canary planted through every route, every stream and file grepped.

Secrets are the values of ``DBT_ENV_SECRET_*`` variables, what a credential provider
minted (registered with ``state.secrets.add``), and the password/token/key fields of the
resolved target, whether written in profiles.yml, read from a plain variable, or from a
``DBT_ENV_SECRET_`` one. The end-to-end test runs the example project on DuckDB and on
PostgreSQL with ``--showlocals -vv --junitxml --dbt-keep -rA`` and ``junit_logging=all``,
with a canary in each route (a model that logs it and fails with it, tests that print,
log and assert on it, failing ``dbt.query``/``dbt.run_model``/``dbt.run`` whose locals
hold dbt's connection), and then looks for each canary's two runs of letters and digits
(every escaped, quoted or JSON form of the value holds them, and pprint's wrapping of a
long string at a space leaves one on each line) in the terminal output, stderr, the
JUnit XML and every file the run left (basetemp, workdir, dbt's logs and target/, the
``--dbt-evidence`` file and the run_results.json / manifest.json it keeps, the
``--dbt-report`` page).
On GitHub Actions, each value is also masked with ``::add-mask::`` on the real output.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from conftest import PG_DATABASE, PG_HOST, PG_PORT, PG_ROLE

from dbtproof import _dbt_compat as compat

#: Characters that every printed form escapes differently: quotes, a backslash, a space
#: (pprint wraps long strings there), URL and XML specials, a non-ASCII letter.
SPECIALS = "'q\"b\\s p%&<>/é"

#: How the target's secret field gets its value (``dotenv``: a plain variable set only in
#: the ``.env`` file dbt-core 1.12 reads).
ROUTES = ("literal", "plain_env", "dbt_env_secret", "dotenv")


class Canary(NamedTuple):
    """A secret value holding the special characters, and its two unique runs of letters
    and digits (one each side of its space), which every printed form of the value holds."""

    pieces: list[str]
    value: str


def canary(kind: str, specials: str = SPECIALS) -> Canary:
    """A new canary, named after *kind*."""
    head, tail = f"cnry{kind}{secrets.token_hex(6)}", f"tail{secrets.token_hex(6)}"
    quotes, rest = specials.split(" ")
    return Canary([head, tail], f"{head}{quotes} {tail}{rest}")


# -- the project's side: a provider, a leaky model, tests that print and fail ------------

#: A credential provider's part, as a conftest plugin: it registers what it "minted".
PROVIDER_CONFTEST = """
import os

import pytest

import dbtproof


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    dbtproof.register_secret(config, os.environ["CANARY_MINTED"], "minted by the canary provider")


@pytest.fixture
def minted():
    return os.environ["CANARY_MINTED"]
"""

#: A model that logs a secret and fails with it in its error (dbt reads it at parse time too).
LEAKY_MODEL = """
{% set token = env_var('CANARY_MINTED') %}
{% if execute %}
{{ log("leaky model logs " ~ token, info=True) }}
{{ exceptions.raise_compiler_error("leaky model refuses: " ~ token) }}
{% endif %}
select 1 as id
"""

TESTS = """
import logging
import os
import sys

from dbtproof import source

PROFILE = os.environ["CANARY_PROFILE"]


def test_passing_test_prints_and_logs(dbt, minted):
    print("stdout", PROFILE, minted)
    print("stderr", PROFILE, minted, file=sys.stderr)
    logging.getLogger("canary").warning("log %s %s", PROFILE, minted)
    assert dbt.query("select 1 as ok") == [{"ok": 1}]


def test_failing_assert_prints_it(minted):
    print("stdout before failing", minted)
    assert minted == "something else"


def test_failing_assert_message_holds_it():
    assert not PROFILE, f"the password is {PROFILE!r}"


def test_a_dbt_env_secret_set_by_the_test(monkeypatch):
    monkeypatch.setenv("DBT_ENV_SECRET_SET_IN_TEST", os.environ["CANARY_IN_TEST"])
    print("set in test", os.environ["CANARY_IN_TEST"])
    assert False


def test_failing_query_shows_the_connection(dbt):
    fixture = dbt
    session = dbt._session
    config = dbt._session.runtime_config
    target = dbt._session.profile_target
    dbt.query("select * from no_such_relation_anywhere")


def test_failing_run_model_shows_the_connection(dbt):
    dbt.run_model(
        "stg_orders",
        given={source("shop", "raw_orders"): [{"order_id": "not a number"}]},
    )


def test_leaky_model_error(dbt):
    dbt.run(select="leaky")
"""


def plant(
    shop: Path, monkeypatch: pytest.MonkeyPatch, adapter: str, route: str
) -> dict[str, Canary]:
    """Write the project's canary routes; return each canary by what carries it."""
    # dbt-duckdb 1.8 writes a secret's settings into CREATE SECRET unescaped: no quote there
    specials = SPECIALS.replace("'", "") if adapter == "duckdb" else SPECIALS
    canaries = {"profile": canary(route.replace("_", ""), specials), "minted": canary("minted"),
                "in test": canary("intest")}  # fmt: skip
    profile_value = canaries["profile"].value
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("CANARY_PROFILE", profile_value)
    monkeypatch.setenv("CANARY_MINTED", canaries["minted"].value)
    monkeypatch.setenv("CANARY_IN_TEST", canaries["in test"].value)
    field = {
        "literal": profile_value,
        "plain_env": "{{ env_var('CANARY_PLAIN_PASSWORD') }}",
        "dbt_env_secret": "{{ env_var('DBT_ENV_SECRET_CANARY') }}",
        "dotenv": "{{ env_var('CANARY_PLAIN_PASSWORD') }}",
    }[route]
    if route == "dotenv":
        monkeypatch.delenv("CANARY_PLAIN_PASSWORD", raising=False)
        escaped = profile_value.replace("\\", "\\\\").replace('"', '\\"')
        (shop / ".env").write_text(f'CANARY_PLAIN_PASSWORD="{escaped}"\n')
        from dotenv import dotenv_values

        assert dotenv_values(shop / ".env") == {"CANARY_PLAIN_PASSWORD": profile_value}
    if route == "plain_env":
        monkeypatch.setenv("CANARY_PLAIN_PASSWORD", profile_value)
    if route == "dbt_env_secret":
        monkeypatch.setenv("DBT_ENV_SECRET_CANARY", profile_value)
    if adapter == "postgres":
        output: dict[str, object] = {
            "type": "postgres", "host": PG_HOST, "port": PG_PORT, "user": PG_ROLE,
            "password": field, "dbname": PG_DATABASE, "schema": "shop_dev", "threads": 1,
        }  # fmt: skip
    else:
        output = {
            "type": "duckdb", "path": "shop.duckdb", "schema": "main", "threads": 1,
            "secrets": [{"type": "http", "bearer_token": field}],
        }  # fmt: skip
    profiles = {"shop": {"target": "canary", "outputs": {"canary": output}}}
    (shop / "profiles.yml").write_text(yaml.safe_dump(profiles, allow_unicode=True))
    (shop / "models" / "leaky.sql").write_text(LEAKY_MODEL)
    (shop / "conftest.py").write_text(PROVIDER_CONFTEST)
    (shop / "pytests" / "test_canary.py").write_text(TESTS)
    return canaries


def hits(canaries: dict[str, Canary], text: str) -> list[str]:
    """The canaries (by route) a piece of which is in *text*."""
    return [route for route, c in canaries.items() if any(p in text for p in c.pieces)]


def leaks_in_files(
    folder: Path, canaries: dict[str, Canary], but: tuple[Path, ...]
) -> dict[str, list[str]]:
    """The files under *folder* (those in *but* aside) that hold a piece of a canary, and
    which."""
    leaks = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path not in but:
            found = hits(canaries, path.read_bytes().decode("utf-8", "replace"))
            if found:
                leaks[str(path.relative_to(folder))] = found
    return leaks


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("adapter", ["duckdb", "postgres"])
def test_no_canary_in_any_output(
    request: pytest.FixtureRequest,
    pytester: pytest.Pytester,
    shop: Path,
    monkeypatch: pytest.MonkeyPatch,
    adapter: str,
    route: str,
) -> None:
    if route == "dotenv" and not compat.dbt_reads_env_file():
        pytest.skip(f"dbt-core {compat.dbt_version()} reads no .env file (1.12 does)")
    ini = "[pytest]\ntestpaths = pytests\n"
    if adapter == "postgres":
        prefix = request.getfixturevalue("shop_pg")  # the suite's role; dropped afterwards
        ini += f"dbt_schema_prefix = {prefix}\n"
    (shop / "pytest.ini").write_text(ini)
    canaries = plant(shop, monkeypatch, adapter, route)
    junit = pytester.path / "junit.xml"
    evidence = pytester.path / "evidence" / "run.jsonl"
    result = pytester.runpytest_subprocess(
        # --tb=long: dbtproof's frames (and their locals) too, which a dbtproof error's
        # report leaves out by default
        "-p", "no:cacheprovider", "--showlocals", "--tb=long", "-vv", "-rA", f"--junitxml={junit}",
        "-o", "junit_logging=all", "--dbt-keep", "--dbt-select", "leaky",
        f"--dbt-evidence={evidence}", f"--dbt-report={evidence.with_suffix('.html')}",
        "pytests", "dbt_project.yml",
    )  # fmt: skip
    stdout, stderr = result.stdout.str(), result.stderr.str()

    # Every route fired: the run got as far as printing what would leak.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and outcomes.get("failed", 0) >= 6, stdout[-3000:]
    assert "_credentials=" in stdout, "--showlocals shows dbt's connection"
    assert "leaky model refuses: " in stdout
    assert junit.is_file()
    # the evidence file and the artifacts it keeps are grepped with every other file
    evidence_text = evidence.read_text()
    assert "leaky model refuses: " in evidence_text and "pytests/test_canary.py::" in evidence_text
    assert list(evidence.parent.glob("run-artifacts/*/run_results.json"))
    assert "leaky model refuses: " in evidence.with_suffix(".html").read_text()
    dbt_logs = list(pytester.path.rglob("dbt.log"))
    assert dbt_logs and any("leaky model logs" in p.read_text() for p in dbt_logs)

    leaks = {
        "stdout": hits(canaries, stdout),
        "stderr": hits(canaries, stderr),
        "junit": hits(canaries, junit.read_text()),
        # the user's own profiles.yml and .env hold the password
        **leaks_in_files(pytester.path, canaries, but=(shop / "profiles.yml", shop / ".env")),
    }
    assert {where: found for where, found in leaks.items() if found} == {}


#: On GitHub: a test that registers a value it "minted" while it runs, and prints it.
GITHUB_TESTS = """
import os

import dbtproof


def test_mints_while_it_runs(request, minted):
    late = os.environ["CANARY_IN_TEST"]
    dbtproof.register_secret(request.config, late, "minted during the test")
    print("late", late, "minted", minted, "profile", os.environ["CANARY_PROFILE"])


def test_uses_dbt(dbt):
    assert dbt.query("select 1 as ok") == [{"ok": 1}]
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_on_github_each_secret_is_masked_on_the_real_output(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    (shop / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\n")
    canaries = plant(shop, monkeypatch, "duckdb", "dbt_env_secret")
    (shop / "pytests" / "test_canary.py").write_text(GITHUB_TESTS)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    xdist = ["-n", str(workers)] if workers else []
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *xdist, "pytests")
    result.assert_outcomes(passed=2)
    stdout, stderr = result.stdout.str(), result.stderr.str()
    # xdist workers write to stderr: their stdout is /dev/null
    lines = (stdout + "\n" + stderr).splitlines()
    for name, planted in canaries.items():
        command = "::add-mask::" + planted.value.replace("%", "%25")
        assert command in lines, name
        if not workers:  # once per value and process
            assert stdout.splitlines().count(command) == 1, name
    shown = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    assert hits(canaries, shown) == []
    assert "late *****" in shown and "dbtproof: project" in shown


def test_a_usage_error_shows_no_secret(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt's own message on a password written as a number quotes the value
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    password = 10**11 + secrets.randbelow(10**11)
    profiles = {"shop": {"target": "pg", "outputs": {"pg": {
        "type": "postgres", "host": PG_HOST, "port": PG_PORT, "user": PG_ROLE,
        "password": password, "dbname": PG_DATABASE, "schema": "shop_dev", "threads": 1,
    }}}}  # fmt: skip
    (shop / "profiles.yml").write_text(yaml.safe_dump(profiles))
    (shop / "pytests" / "test_one.py").write_text("def test_one(dbt):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "pytests")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "invalid: ***** is not of type 'string'" in output
    assert str(password) not in output


# -- the registry itself ------------------------------------------------------------------


REGISTERING_PLUGIN = """
import pytest

import dbtproof


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.registered = dbtproof.register_secret(config, "plugin-token-5f2c9a", "a plugin's")
"""

LEAKING_TEST = """
def test_leak(request):
    print("registered:", request.config.registered)
    assert "plugin-token-5f2c9a" == "other", "plugin-token-5f2c9a"
"""


def test_a_plugin_registers_its_secret_through_the_public_api(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """dbtproof.register_secret: what a plugin registers never shows in a dbtproof run;
    where dbtproof runs no dbt project, nothing is registered, and the call says so."""
    (shop / "pytests" / "conftest.py").write_text(REGISTERING_PLUGIN)
    (shop / "pytests" / "test_leak.py").write_text(LEAKING_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "pytests")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "registered: True" in output
    assert "5f2c9a" not in output
    off = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:dbtproof", "pytests")
    assert "registered: False" in off.stdout.str()


def test_every_printed_form_is_scrubbed() -> None:
    from urllib.parse import quote, quote_plus

    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    value = f"pw{SPECIALS}\n"
    registry.add(value, "a test")
    forms = [
        value,
        repr(value),
        ascii(value),
        json.dumps(value),
        json.dumps(value, ensure_ascii=False),
        quote(value, safe=""),
        quote_plus(value),
        repr(repr(value)),
        json.dumps(repr(value)),
        repr(json.dumps(value)),
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
    ]
    for form in forms:
        scrubbed = registry.scrub(f"before {form} after")
        assert "pw" not in scrubbed, (form, scrubbed)
        assert scrubbed.startswith("before ") and scrubbed.endswith(" after")


def test_short_values_are_not_registered_and_scrub_leaves_text_alone() -> None:
    from dbtproof.safety.redaction import MIN_SECRET_LENGTH, SecretRegistry

    registry = SecretRegistry()
    assert not registry.add("a" * (MIN_SECRET_LENGTH - 1), "too short")
    assert registry.scrub("a" * 20) == "a" * 20
    assert registry.add("s3cr3t-value", "long enough")
    assert registry.scrub("x s3cr3t-value y") == "x ***** y"
    assert len(registry) == 1


def test_values_of_dbt_env_secret_variables_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    monkeypatch.setenv("DBT_ENV_SECRET_LATE", "set-after-the-registry")
    assert registry.add_environment() == 1  # the plugin looks again at every report
    assert registry.scrub("got set-after-the-registry") == "got *****"
    monkeypatch.delenv("DBT_ENV_SECRET_LATE")
    assert registry.scrub("still set-after-the-registry") == "still *****", "once seen, kept"


def test_a_truncated_repr_does_not_show_the_secret_s_ends() -> None:
    from _pytest._io.saferepr import saferepr

    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    value = "tok-" + secrets.token_hex(200)
    registry.add(value, "a long token")
    shown = saferepr({"token": value, "other": "x" * 10}, maxsize=240)
    assert "..." in shown
    scrubbed = registry.scrub(shown)
    assert value[:12] not in scrubbed and value[-12:] not in scrubbed, scrubbed


def test_secret_repr_and_str_are_redacted() -> None:
    from dbtproof.safety.redaction import Secret

    secret = Secret("hunter2-hunter2", "a test")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "hunter2-hunter2"


def test_binary_files_keep_their_length(tmp_path: Path) -> None:
    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("binary-secret", "a test")
    data = b"\x00\x93\xadbinary-secret\xff"
    path = tmp_path / "state.msgpack"
    path.write_bytes(data)
    text = tmp_path / "dbt.log"
    text.write_text("line binary-secret\n")
    registry.scrub_tree(tmp_path)
    assert path.read_bytes() == data.replace(b"binary-secret", b"*" * len("binary-secret"))
    assert text.read_text() == "line *****\n"
    assert os.stat(path).st_size == len(data)


def test_the_target_s_secret_settings_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from dbtproof.safety.redaction import SecretRegistry

    monkeypatch.setenv("PLAIN_PASSWORD", "from-a-plain-variable")
    registry = SecretRegistry()
    registry.add_target(
        {
            "type": "postgres",
            "user": "someone-long",
            "password": "{{ env_var('PLAIN_PASSWORD') }}",
            "private_key_path": "/keys/rsa_key.p8",
            "keyfile_json": {"private_key": "-----KEY-----", "token_uri": "https://x/token"},
            "secrets": [{"type": "s3", "secret": "s3-secret-key"}],
        },
        "target dev",
    )
    registry.add_credentials(SimpleNamespace(password="as-dbt-resolved", port=5432), "dev")
    shown = registry.scrub(
        "someone-long from-a-plain-variable /keys/rsa_key.p8 -----KEY----- https://x/token "
        "s3-secret-key as-dbt-resolved"
    )
    assert shown == "someone-long ***** /keys/rsa_key.p8 ***** https://x/token ***** *****"
    assert "PLAIN_PASSWORD" in " ".join(registry.sources()), "sources name where, not what"


# -- a secret that is also a value anyone sees (issue 27) ---------------------------------


def test_a_secret_equal_to_a_plain_setting_is_masked_only_where_shown_as_a_secret() -> None:
    from types import SimpleNamespace

    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("someone-long", "DBT_ENV_SECRET_PW")  # seen before the target is
    registry.add_target({"type": "postgres", "user": "someone-long"}, "target dev")
    registry.add_credentials(SimpleNamespace(password="warehouse-db", database="warehouse-db"), "t")
    registry.add("unrelated-9f3c", "a token")
    registry.add("ci-target-7", "DBT_ENV_SECRET_X")
    registry.add_public({}, "shop", "ci-target-7")  # the profile's and the target's names
    assert (
        registry.scrub("target ci-target-7, token=ci-target-7") == "target ci-target-7, token=*****"
    )
    shown = registry.scrub(
        "user someone-long, database warehouse-db; dsn password=someone-long "
        "postgresql://someone-long:warehouse-db@host/db {'password': 'warehouse-db'} "
        'PGPASSWORD="someone-long" unrelated-9f3c'
    )
    assert shown == (
        "user someone-long, database warehouse-db; dsn password=***** "
        "postgresql://someone-long:*****@host/db {'password': '*****'} "
        'PGPASSWORD="*****" *****'
    )
    assert registry.public_sources() == ["DBT_ENV_SECRET_PW", "t password", "DBT_ENV_SECRET_X"]


def test_a_secret_that_is_a_common_word_is_masked_only_where_shown_as_a_secret() -> None:
    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("Postgres", "DBT_ENV_SECRET_PW")
    registry.add("changeme", "a password")
    text = "adapter Postgres, default changeme; secret: Postgres token=changeme"
    assert registry.scrub(text) == "adapter Postgres, default changeme; secret: ***** token=*****"
    data = b"\x00Postgres\x00password=Postgres"
    assert registry.scrub_bytes(data) == b"\x00Postgres\x00password=********"


def test_a_password_that_is_the_user_leaves_the_run_s_output_readable(
    pytester: pytest.Pytester, shop_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``user: postgres, password: postgres``: the header and the superuser warning name
    the adapter and the identity; the password is still masked where shown as one."""
    monkeypatch.setenv("SHOP_PG_USER", "postgres")
    monkeypatch.setenv("SHOP_PG_PASSWORD", "postgres")
    (pytester.path / "pytests" / "test_dsn.py").write_text(
        "def test_dsn(dbt):\n"
        "    print('dsn password=postgres')\n"
        "    assert dbt.query('select 1 as one') == [{'one': 1}]\n"
        "    assert False, 'logged in as user postgres'\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "pytests")
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1)
    assert "adapter postgres, namespace" in output, output
    assert "the test identity postgres is a superuser" in output
    assert "AssertionError: logged in as user postgres" in output
    assert "dsn password=*****" in output and "password=postgres" not in output


def test_a_plain_setting_read_from_a_dbt_env_secret_variable_stays_masked() -> None:
    """``user: "{{ env_var('DBT_ENV_SECRET_USER') }}"``: the user declared the value a secret
    (dbt masks it everywhere), so the rendered user does not make it public, while a
    password equal to a literal setting of the profile still is."""
    from types import SimpleNamespace

    from dbtproof.safety.redaction import SecretRegistry

    environ = {"DBT_ENV_SECRET_USER": "analyst-7731", "DBT_ENV_SECRET_HOST": "db-4f2a.internal"}
    registry = SecretRegistry(environ=environ)
    registry.add_environment()
    registry.add_target(
        {
            "type": "postgres",
            "user": "{{ env_var('DBT_ENV_SECRET_USER') }}",
            "host": "{{ env_var('DBT_ENV_SECRET_HOST') }}",
            "database": "shop-db-01",
            "password": "shop-db-01",
        },
        "target dev",
    )
    registry.add_credentials(
        SimpleNamespace(
            user="analyst-7731",
            host="db-4f2a.internal",
            database="shop-db-01",
            password="shop-db-01",
        ),
        "target dev",
    )
    shown = registry.scrub(
        "the test identity analyst-7731 on db-4f2a.internal, database shop-db-01"
    )
    assert shown == "the test identity ***** on *****, database shop-db-01"


@pytest.mark.parametrize(
    "text",
    [
        "psql --password pgadmin1",
        "PGPASSWORD pgadmin1",
        "password => 'pgadmin1'",
        "<password>pgadmin1</password>",
        "&lt;password&gt;pgadmin1&lt;/password&gt;",
        "password: |\n  pgadmin1",
        "password: >-\n  pgadmin1",
    ],
)
def test_a_public_secret_is_masked_in_every_way_text_shows_it_as_a_password(text: str) -> None:
    """A password equal to the user is shown where the text is the user, never where it
    is the password: a command's option, an XML element, a YAML block, ``=>``."""
    from dbtproof.safety.redaction import SecretRegistry

    registry = SecretRegistry(environ={})
    registry.add_target({"type": "postgres", "user": "pgadmin1", "password": "pgadmin1"}, "t")
    assert registry.scrub(f"user pgadmin1; {text}") == "user pgadmin1; " + text.replace(
        "pgadmin1", "*****"
    )
