"""Stray ``DBT_*`` flag variables cannot change a verdict.

dbt reads its flags from the environment too (``DBT_EMPTY``, ``DBT_DEFER``, ``DBT_STATE``,
``DBT_FAIL_FAST``, ...). The example project gets a duplicated customer, so exactly the two
``unique`` tests of the customer id fail; with any of those variables set, the run must still
report exactly that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Command

#: With the duplicated customer: both unique tests of customer_id fail, nothing else.
FAILING = {
    "dbt_project.yml::stg_customers::unique_stg_customers_customer_id",
    "dbt_project.yml::customers::unique_customers_customer_id",
}
#: The run: every item about customers (builds, data tests, unit tests; not the mart's grants,
#: skipped on DuckDB), enough for dbt to build several nodes and run several tests in one batch.
RUN = ("dbt_project.yml", "-rf", "-k", "customer and not grants")
ITEMS = 12


def duplicate_a_customer(shop: Path) -> None:
    """Customer 1 twice in the seed: the unique tests of customer_id must fail."""
    seed = shop / "seeds" / "raw_customers.csv"
    lines = seed.read_text().splitlines()
    seed.write_text("\n".join([*lines, lines[1]]) + "\n")


def state_dir(run_command: Command, shop: Path) -> Path:
    """A dbt state folder (``manifest.json``) of the project as its ``prod`` target builds it."""
    folder = shop.parent / "prod_state"
    dbt = Path(sys.executable).parent / "dbt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    done = run_command(
        [dbt, "parse", "--project-dir", shop, "--profiles-dir", shop,
         "--target", "prod", "--target-path", folder, "--log-path", folder / "logs"],
        shop, env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "manifest.json").exists()
    return folder


def assert_dbt_verdicts(result: pytest.RunResult) -> None:
    """The two unique tests failed; every other item passed; the run did not stop early."""
    output = result.stdout.str()
    failed = {line.split()[1] for line in result.stdout.lines if line.startswith("FAILED ")}
    assert failed == FAILING, output
    assert "INTERNALERROR" not in output
    result.assert_outcomes(passed=ITEMS - len(FAILING), failed=len(FAILING))


# Each case: variables set in the environment of the run ("{state}" is a prod state folder).
# Every one but the last four flipped a verdict before dbtproof hid them; the next test sets
# every flag variable dbt declares at once.
CASES = {
    "empty": {"DBT_EMPTY": "1"},
    "engine-empty": {"DBT_ENGINE_EMPTY": "1"},
    "defer-state": {"DBT_DEFER": "1", "DBT_STATE": "{state}", "DBT_FAVOR_STATE": "1"},
    "warn-error": {"DBT_WARN_ERROR": "1"},
    "resource-types": {"DBT_RESOURCE_TYPES": "seed"},
    "recorder-replay": {"DBT_RECORDER_MODE": "replay", "DBT_RECORDER_FILE_PATH": "{state}/no"},
    "full-refresh": {"DBT_FULL_REFRESH": "1"},
    "fail-fast": {"DBT_FAIL_FAST": "1"},
    "indirect-selection": {"DBT_INDIRECT_SELECTION": "empty"},
    "target-path": {"DBT_TARGET_PATH": "{state}/elsewhere"},
}


# Prints the variables dbt's click commands declare (in a fresh process: importing dbt inside
# a test that uses pytester has confused importlib.metadata's later lookups).
DECLARED = """
import json
from dbt.cli.main import cli

declared = set()
for command in [cli, *cli.commands.values()]:
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        declared.update([envvar] if isinstance(envvar, str) else envvar or [])
print(json.dumps(sorted(declared)))
"""


@pytest.mark.parametrize("variables", CASES.values(), ids=CASES.keys())
def test_dbt_flag_variables_do_not_change_verdicts(
    pytester: pytest.Pytester,
    shop: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    run_command: Command,
) -> None:
    duplicate_a_customer(shop)
    needs_state = any("{state}" in value for value in variables.values())
    state = state_dir(run_command, shop) if needs_state else None
    for name, value in variables.items():
        monkeypatch.setenv(name, value.replace("{state}", str(state)))
    assert_dbt_verdicts(pytester.runpytest_subprocess(*RUN))


def test_dbt_flag_variables_in_a_dotenv_file_do_not_change_verdicts(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """dbt-core 1.12 reads the ``.env`` file into the environment at every invocation (a
    variable already set keeps its value): flag variables there are hidden like the
    shell's, and stay so while dbt runs."""
    from dbtproof import _dbt_compat as compat

    if not compat.dbt_reads_env_file():
        pytest.skip(f"dbt-core {compat.dbt_version()} reads no .env file (1.12 does)")
    duplicate_a_customer(shop)
    (shop / ".env").write_text("DBT_EMPTY=1\nDBT_FAIL_FAST=1\nDBT_RESOURCE_TYPES=seed\n")
    assert_dbt_verdicts(pytester.runpytest_subprocess(*RUN))


def test_every_flag_variable_dbt_declares_is_ignored(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every variable dbt's command-line options read, set to nonsense at once."""
    duplicate_a_customer(shop)
    declared = set(json.loads(subprocess.check_output([sys.executable, "-c", DECLARED])))
    # dbtproof finds profiles.yml as dbt does, through these two: not nonsense, then.
    declared -= {"DBT_PROFILES_DIR", "DBT_ENGINE_PROFILES_DIR"}
    assert {"DBT_EMPTY", "DBT_DEFER", "DBT_STATE", "DBT_FAIL_FAST"} <= declared
    for name in declared:
        monkeypatch.setenv(name, "dbtproof-nonsense")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(shop))
    assert_dbt_verdicts(pytester.runpytest_subprocess(*RUN))


def test_flag_variables_are_back_after_each_invocation_and_others_stay(
    pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's own variables (custom env, a model's ``env_var()``) still reach dbt; the flag
    variables are hidden only while dbt runs."""
    monkeypatch.setenv("DBT_EMPTY", "1")
    monkeypatch.setenv("DBT_ENV_CUSTOM_ENV_TEAM", "data")
    monkeypatch.setenv("DBT_SHOP_REGION", "eu")
    (shop / "models" / "env_probe.sql").write_text(
        "select '{{ env_var('DBT_SHOP_REGION') }}' as region,"
        " '{{ env_var('DBT_ENV_CUSTOM_ENV_TEAM') }}' as team\n"
    )
    pytester.makepyfile(
        test_probe="""
        import os

        def test_probe(dbt):
            dbt.build(select="env_probe")
            assert dbt.table("env_probe") == [{"region": "eu", "team": "data"}]
            assert os.environ["DBT_EMPTY"] == "1"
        """
    )
    pytester.runpytest_subprocess("test_probe.py", "-p", "no:cacheprovider").assert_outcomes(
        passed=1
    )


def test_only_flag_variables_of_options_not_given_are_hidden() -> None:
    from dbtproof.session.runner import FlagVariables

    environ = {
        name: "1"
        for name in ("DBT_EMPTY", "DBT_FAIL_FAST", "DBT_RECORDER_MODE", "DBT_TARGET",
                     "DBT_WRITE_JSON", "DBT_ENV_SECRET_TOKEN", "DBT_ENV_CUSTOM_ENV_TEAM",
                     "DBT_USER", "DBT_PASSWORD", "DBT_HOST")
    }  # fmt: skip
    # --full-refresh is an option of `dbt build` alone, given: its variable stays; --target is
    # also one of dbt's group, which reads its variable whatever the command's options say.
    args = ["build", "--target", "dev", "--full-refresh"]
    environ["DBT_FULL_REFRESH"] = "1"
    # DBT_HOST is an option of `dbt docs serve` only: a profile's host stays readable.
    assert sorted(FlagVariables().hidden(args, environ)) == [
        "DBT_EMPTY", "DBT_FAIL_FAST", "DBT_RECORDER_MODE", "DBT_TARGET", "DBT_WRITE_JSON"
    ]  # fmt: skip


def test_dbt_empty_does_not_change_verdicts_on_postgres(
    pytester: pytest.Pytester, shop: Path, shop_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    duplicate_a_customer(shop)
    monkeypatch.setenv("DBT_EMPTY", "1")
    assert_dbt_verdicts(pytester.runpytest_subprocess(*RUN))
