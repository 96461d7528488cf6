"""dbt's native unit tests (``unit_tests:`` in YAML), run through dbtproof's model engine.

A unit test keeps dbt's meaning: ``given`` inputs (``format: dict | csv | sql``, inline
or ``fixture:`` files), ``expect`` rows compared on the columns they name, and
``overrides`` of macros, vars and env vars (``is_incremental: true`` runs the
incremental branch against the ``this`` input). Nothing upstream is built.

As in dbt, the ``expect`` rows are cast to the column types of the model's output
before they are compared. One deliberate difference: dbt then compares values as
text, so on PostgreSQL it fails ``1.5`` against ``1.5000000000000000``; dbtproof
compares them by value.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtproof.compare.diff import diff_rows
from dbtproof.compare.rows import Rows
from dbtproof.engine.keys import Ref, Source, ref, source
from dbtproof.engine.request import ModelRunRequest
from dbtproof.errors import UnitTestDefinitionError

if TYPE_CHECKING:
    from dbtproof.session.session import DbtSession

_CALL = re.compile(r"^\s*(ref|source)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass
class UnitTestResult:
    """The outcome of one native unit test: pass/fail and, on failure, the row diff."""

    passed: bool
    actual: Rows
    expected: list[dict[str, Any]]
    diff: list[str]


def parse_input(text: str, where: str) -> Ref | Source | None:
    """``ref('x')``, ``ref('x', v=2)``, ``source('a', 'b')`` as a key; ``this`` as None."""
    if text.strip() == "this":
        return None
    match = _CALL.match(text)
    if not match:
        raise UnitTestDefinitionError(
            f"dbtproof: {where}: cannot read the input {text!r}; write ref('model'), "
            f"source('source', 'table') or this."
        )
    call = ast.parse(f"f({match.group(2)})", mode="eval").body
    assert isinstance(call, ast.Call)
    args = [ast.literal_eval(arg) for arg in call.args]
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    if match.group(1) == "source":
        return source(*args)
    unknown = sorted(set(kwargs) - {"v", "version"})
    if unknown:
        raise UnitTestDefinitionError(
            f"dbtproof: {where}: the input {text.strip()} passes "
            f"{', '.join(f'{name}=' for name in unknown)}, which only a project's own `ref` "
            "macro reads (dbt-core 1.12's support_custom_ref_kwargs flag); dbtproof reads "
            "inputs as dbt's built-in ref does: write ref('model', v=N)."
        )
    version = kwargs.get("v", kwargs.get("version"))
    if len(args) == 2:  # ref('package', 'model')
        return ref(args[1], version=version, package=args[0])
    return ref(args[0], version=version)


def _format(fixture: Any) -> str:
    return str(getattr(fixture.format, "value", fixture.format))


def _fixture_file(session: DbtSession, name: str, where: str) -> tuple[Any, Path]:
    for candidate in (getattr(session.manifest, "fixtures", {}) or {}).values():
        if candidate.name == name:
            return candidate.rows, session.project.root / candidate.original_file_path
    raise UnitTestDefinitionError(
        f"dbtproof: {where}: fixture '{name}' not found; put {name}.csv or {name}.sql in a "
        f"`fixtures` folder under the project's test-paths."
    )


def _data(session: DbtSession, fixture: Any, where: str) -> Any:
    """What a given/expect fixture holds, as a value ``run_model`` reads (dicts, CSV, Rows)."""
    rows = fixture.rows
    path: Path | None = None
    if getattr(fixture, "fixture", None):
        rows, path = _fixture_file(session, fixture.fixture, where)
    fmt = _format(fixture)
    if fmt == "sql":
        sql = rows if isinstance(rows, str) else path.read_text() if path else ""
        return session.connections.query(sql)
    if fmt == "csv":
        if isinstance(rows, str):
            return rows
        if path is not None and rows is None:
            return path.read_text()
        return _as_csv_text(rows) if rows else []
    return list(rows or [])


def _as_csv_text(rows: list[dict[str, Any]]) -> str:
    """dbt parses ``format: csv`` rows into dicts of strings; write them back as CSV text,
    so the engine types them as CSV (as dbt does), not as the strings they now are."""
    import csv
    import io

    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_native_unit_test(session: DbtSession, unit_test: Any) -> UnitTestResult:
    """Run one ``unit_tests:`` entry of the manifest through the engine and compare."""
    where = f"unit test '{unit_test.name}' ({unit_test.original_file_path})"
    given: dict[Any, Any] = {}
    this: Any = None
    for fixture in unit_test.given:
        key = parse_input(fixture.input, where)
        value = _data(session, fixture, where)
        if key is None:
            this = value
        else:
            given[key] = value
    overrides = unit_test.overrides
    macros = dict(overrides.macros) if overrides else {}
    is_incremental = bool(macros.pop("is_incremental", False))
    version = getattr(unit_test, "version", None)
    expect = _data(session, unit_test.expect, where)
    actual, typed = session.connections.retried_read(
        f"unit test {where}",
        lambda: session.engine.run_unit_test(
            ModelRunRequest(
                ref(unit_test.model, version=version),
                given,
                vars=dict(overrides.vars) if overrides else None,
                env={k: str(v) for k, v in overrides.env_vars.items()} if overrides else None,
                macros=macros,
                is_incremental=is_incremental,
                this=this if is_incremental else None,
                search_dirs=(session.project.root,),
            ),
            expect,
            label=f"expect of {where}",
        ),
    )
    expected = [dict(row) for row in typed]
    passed = actual == expected if expected else len(actual) == 0
    diff = [] if passed else diff_rows(actual, expected)
    return UnitTestResult(passed=passed, actual=actual, expected=expected, diff=diff)
