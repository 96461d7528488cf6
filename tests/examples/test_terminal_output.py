"""What a person at the terminal sees, on a real project (the example shop on DuckDB):
a dbtproof error as the test's line and the message, no dbt log line, no warning of dbt's
own making, and the start's time in the summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

MISTAKES = """\
from dbtproof import source

PAYMENTS = source('shop', 'raw_payments')


def test_missing_input(dbt):
    dbt.run_model('stg_payments', given={})


def test_value_of_the_wrong_type(dbt):
    dbt.run_model('stg_payments', given={PAYMENTS: [{'payment_id': 'x', 'amount': 1}]})


def test_value_the_database_refuses(dbt):
    dbt.run_model('stg_payments', given={PAYMENTS: [{'payment_id': 1, 'amount': 10**30}]})
"""


def _failure_sections(output: str) -> dict[str, list[str]]:
    """Each failing test's section of pytest's report (its ``___ name ___`` line to the next
    section), by test name."""
    sections: dict[str, list[str]] = {}
    name = None
    for line in output.splitlines():
        heading = re.fullmatch(r"_{3,} (\S+) _{3,}", line)
        if heading:
            name = heading.group(1)
            sections[name] = [line]
        elif re.match(r"={3,} ", line):
            name = None
        elif name is not None:
            sections[name].append(line)
    return sections


def test_a_run_model_mistake_reads_as_the_tests_line_and_dbtproofs_message(
    pytester: pytest.Pytester, shop: Path
) -> None:
    (shop / "pytests" / "test_mistakes.py").write_text(MISTAKES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(failed=3)
    sections = _failure_sections(result.stdout.str())
    assert set(sections) == {
        "test_missing_input",
        "test_value_of_the_wrong_type",
        "test_value_the_database_refuses",
    }
    for name, lines in sections.items():
        text = "\n".join(lines)
        # the message aside (the database's error and the SQL make the last one longer)
        assert len([line for line in lines if not line.startswith("E ")]) < 10, text
        if name != "test_value_the_database_refuses":
            assert len(lines) < 15, text
        assert "dbtproof/session/session.py" not in text and "dbtproof/engine" not in text, text
        assert "E       dbtproof.errors." in text, text
    assert "> " in "\n".join(sections["test_missing_input"])
    assert "did not give: source('shop', 'raw_payments')" in "\n".join(
        sections["test_missing_input"]
    )
    refused = "\n".join(sections["test_value_the_database_refuses"])
    # the database's own error is quoted in the message; its exception is not chained on
    assert "Could not convert string" in refused
    assert "direct cause" not in refused


@pytest.mark.parametrize("option", ["--tb=long", "--full-trace"])
def test_tb_long_and_full_trace_still_show_dbtproofs_frames_and_the_cause(
    pytester: pytest.Pytester, shop: Path, option: str
) -> None:
    (shop / "pytests" / "test_mistakes.py").write_text(MISTAKES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--no-dbt-tests", option, "-k", "refuses"
    )
    result.assert_outcomes(failed=1, deselected=2)
    output = result.stdout.str()
    assert "dbtproof/session/session.py" in output and "dbtproof/engine/" in output
    assert "The above exception was the direct cause of the following exception" in output


def test_an_error_inside_dbtproof_keeps_every_frame(pytester: pytest.Pytester, shop: Path) -> None:
    """Not a dbtproof error (here a fixture whose rows raise while dbtproof reads them):
    the frames that lead to it are what anyone needs to see, dbtproof's among them."""
    (shop / "pytests" / "test_internal.py").write_text(
        "from dbtproof import source\n\n\n"
        "class Rows(list):\n"
        "    def __iter__(self):\n"
        "        raise RuntimeError('rows that cannot be read')\n\n\n"
        "def test_rows_that_raise(dbt):\n"
        "    dbt.run_model('stg_payments', given={source('shop', 'raw_payments'): Rows([{}])})\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-dbt-tests")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "RuntimeError: rows that cannot be read" in output
    assert "dbtproof/engine/reading.py" in output and "dbtproof/session/session.py" in output


def test_nothing_of_dbts_log_reaches_the_terminal(pytester: pytest.Pytester, shop: Path) -> None:
    """The second run loads the first's parse (no dbt invocation before the adapter is
    registered): dbt's console logger, set up when dbt is imported, would print
    ``Registered adapter: duckdb=...`` with its colour codes."""
    (shop / "pytests" / "test_one.py").write_text(
        "def test_one(dbt):\n    assert dbt.query('select 1 as one') == [{'one': 1}]\n"
    )
    for _ in range(2):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=34)
        output = result.stdout.str() + result.stderr.str()
        assert "Registered adapter" not in output, output
        assert "\x1b[" not in output, output


SQUISH_MACRO = """\
{% macro squish(column_name) -%}
    regexp_replace({{ column_name }}, '{{ "\\s+" }}', ' ', 'g')
{%- endmacro %}
"""


def test_warnings_raised_while_dbt_compiles_are_treated_as_the_dbt_cli_treats_them(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """A ``'\\s'`` in a Jinja string makes jinja2 raise ``DeprecationWarning: invalid escape
    sequence``, which the dbt CLI never shows (Python ignores it in a library). Not shown
    either on a cold parse, a warm one, a build or a ``run_model``; and not an error under
    ``-W error::DeprecationWarning``, where dbt builds the model."""
    (shop / "macros" / "squish.sql").write_text(SQUISH_MACRO)
    model = shop / "models" / "staging" / "stg_customers.sql"
    model.write_text(
        model.read_text().replace(
            "    first_name,", "    {{ squish('first_name') }} as first_name,"
        )
    )
    (shop / "pytests" / "test_squish.py").write_text(
        "from dbtproof import source\n\n\n"
        "def test_squish(dbt):\n"
        "    out = dbt.run_model('stg_customers', given={\n"
        "        source('shop', 'raw_customers'): [{'customer_id': 1, 'first_name': 'A  b'}]})\n"
        "    assert out[0]['first_name'] == 'A b'\n"
    )
    for options in ((), (), ("-W", "error::DeprecationWarning")):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *options)
        output = result.stdout.str() + result.stderr.str()
        result.assert_outcomes(passed=34)
        assert "invalid escape sequence" not in output, output
        assert "warning" not in output.splitlines()[-1], output


def test_the_summary_says_what_the_start_took_before_pytests_clock(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """pytest's "in N s" starts after pytest_sessionstart, where the dbt session starts
    (here made 2 s longer by a conftest's hook there): the summary says so, beside it."""
    (shop / "pytests" / "conftest.py").write_text(
        "import time\n\n\ndef pytest_sessionstart(session):\n    time.sleep(2)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=33)
    lines = result.stdout.lines
    found = re.fullmatch(
        r"dbtproof: ([\d.]+) s before pytest's clock started \(the dbt session's start: "
        r"parse ([\d.]+) s\); the run took ([\d.]+) s in all",
        lines[-2],
    )
    assert found, "\n".join(lines[-5:])
    before, parse, total = (float(value) for value in found.groups())
    pytests_time = float(re.search(r" in ([\d.]+)s", lines[-1]).group(1))  # type: ignore[union-attr]
    assert before >= 2 + parse
    assert total >= before + pytests_time - 0.5  # pytest's clock stops a moment later
