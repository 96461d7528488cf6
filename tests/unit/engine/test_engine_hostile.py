"""Hostile and odd fixtures for ``run_model``: each is a correct result or a clear dbtproof error.

What issue 12 found a hostile user could feed ``run_model`` (numpy and pandas values,
numbers no exact type of the warehouse holds, numbers in CSV text, a typo in every
column of a fixture, broken CSV, data frames without names, keys that are no names, a
selector that names nothing), each on DuckDB and on PostgreSQL; then a property-based
test of random fixtures (names, values, ragged CSV) whose every outcome is the right
rows or a :class:`dbtproof.DbtproofError`, with nothing executed as SQL.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from conftest import engine_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_columns import _fold, lake_project, relation_count

from dbtproof import DbtproofError, DbtRunError, Rows, ref, source
from dbtproof.errors import (
    FixtureColumnError,
    FixtureFormatError,
    FixtureValueError,
    InputKeyError,
)

TRIPS = source("lake", "trips")  # nothing declared, no table: typed by the fixture
FARES = source("lake", "fares")  # fare_id integer, paid_at timestamp declared
ZONES = source("lake", "zones")  # nothing declared; zone_report reads three columns
BLOBS = source("vault", "blobs")  # payload bytea (DuckDB: an alias of blob), ratio double
VAULT_YML = """
version: 2
sources:
  - name: vault
    schema: "{{ target.schema }}"
    tables:
      - name: blobs
        columns:
          - {name: id, data_type: integer}
          - {name: payload, data_type: bytea}
          - {name: ratio, data_type: double precision}
"""


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def dbt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A started dbt session on the lake project (see test_engine_columns), one per target."""
    project = lake_project(tmp_path_factory.mktemp(f"hostile_{request.param}"))
    (project / "models" / "lake" / "vault.yml").write_text(VAULT_YML)
    (project / "models" / "lake" / "vault_copy.sql").write_text(
        "select id, payload, ratio from {{ source('vault', 'blobs') }}\n"
    )
    with engine_session(request, tmp_path_factory, project, request.param) as session:
        yield session


# -- values from numpy and pandas -----------------------------------------------------


def test_numpy_and_pandas_values_are_their_python_values(dbt) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    out = dbt.run_model("trip_log", given={FARES: [{"fare_id": np.int64(5)}, {"fare_id": pd.NA}]})
    assert out == [{"trip_id": 5}, {"trip_id": None}]
    nested = {"n": np.int64(5), "b": np.bool_(True), "f": np.float64(0.5), "x": pd.NA}
    rows = [{"j": nested, "t": np.datetime64("2024-01-01T10:00:00.123456789")}]
    out = dbt.run_model("passthrough", given={TRIPS: rows})
    assert out == [
        {
            "j": '{"n": 5, "b": true, "f": 0.5, "x": null}',
            "t": datetime(2024, 1, 1, 10, 0, 0, 123456),
        }
    ]


# -- numbers ----------------------------------------------------------------------------


def test_numbers_beyond_an_exact_type_are_refused_where_the_warehouse_cannot_hold_them(
    dbt,
) -> None:
    forty = Decimal("1234567890123456789012345678901234567890")
    split = Decimal("12345678901234567890.12345678901234567890")
    huge = 2**70  # beyond bigint: an exact number, not a cast error
    assert dbt.run_model("passthrough", given={TRIPS: [{"i": huge}, {"i": 1}]}) == [
        {"i": huge},
        {"i": 1},
    ]
    for fixture in ([{"d": forty}], [{"d": split}], f"d\n{forty}\n"):
        if dbt.adapter_type == "duckdb":  # decimals of 38 digits at most
            with pytest.raises(FixtureValueError, match=r"column 'd'.*40 digits.*at most 38"):
                dbt.run_model("passthrough", given={TRIPS: fixture})
        else:
            out = dbt.run_model("passthrough", given={TRIPS: fixture})
            assert out == [{"d": split if fixture == [{"d": split}] else forty}]
            assert isinstance(out[0]["d"], Decimal)


def test_csv_text_is_text_until_its_column_types_it(dbt) -> None:
    # Not numbers every warehouse reads alike: they stay text in an untyped column ...
    text = "a,b,c\n1_000,-inf,0x10\n"
    assert dbt.run_model("passthrough", given={TRIPS: text}) == [
        {"a": "1_000", "b": "-inf", "c": "0x10"}
    ]
    # ... are refused by a typed one, and numbers too wide for bigint are exact numbers.
    inf = float("inf")
    given = [{"x": 0}, {"x": Decimal("Infinity")}, {"x": -inf}, {"x": Decimal("-NaN")}]
    out = list(dbt.run_model("passthrough", given={TRIPS: given}))
    assert out[:3] == [{"x": 0.0}, {"x": inf}, {"x": -inf}] and out[3]["x"] != out[3]["x"]
    with pytest.raises(FixtureValueError, match=r"'1_000' cannot be cast to integer"):
        dbt.run_model("trip_log", given={FARES: "fare_id\n1_000\n"})
    wide = str(2**70)
    out = dbt.run_model("passthrough", given={TRIPS: f"n\n{wide}\n-2.50\n"})
    assert out == [{"n": Decimal(wide)}, {"n": Decimal("-2.5")}]


# -- NaN and bytes ----------------------------------------------------------------------


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value


def test_nan_stays_nan_and_bytes_stay_bytes(dbt) -> None:
    nan = float("nan")
    rows = [
        {"id": 1, "ratio": nan, "payload": b"ab\x00"},
        {"id": 2, "ratio": 1.5, "payload": b"\\x41'\n\xff"},
        {"id": 3, "ratio": None, "payload": b""},
        {"id": 4, "ratio": -0.25, "payload": None},
    ]
    for key, model in ((TRIPS, "passthrough"), (BLOBS, "vault_copy")):  # untyped, declared
        for fixture in (rows, rows * (LARGE // len(rows))):  # SQL text, the bulk path
            out = list(dbt.run_model(model, given={key: fixture}))
            assert len(out) == len(fixture)
            assert _is_nan(out[0]["ratio"]) and out[2]["ratio"] is None  # NaN, not NULL
            assert [type(row["payload"]) for row in out[:4]] == [bytes, bytes, bytes, type(None)]
            assert [row["payload"] for row in out[:4]] == [r["payload"] for r in rows]
            assert dbt.run_model(model, given={key: fixture}) == fixture  # NaN equals NaN
    # bytearray and memoryview (psycopg2's bytea, in a Rows given back) are bytes too.
    views = Rows(["b"], [(memoryview(b"\x00v"),), (bytearray(b"a"),)])
    for fixture in (views, [dict(row) for row in views]):
        out = dbt.run_model("passthrough", given={TRIPS: fixture})
        assert sorted(row["b"] for row in out) == [b"\x00v", b"a"]
    # A NaN is a value, not a missing one: it does not equal NULL in an expectation.
    assert dbt.run_model("passthrough", given={TRIPS: [{"r": nan}]}) != [{"r": None}]
    # A numpy float keeps its NaN too (in a DataFrame, NaN is pandas' missing value).
    np = pytest.importorskip("numpy")
    out = dbt.run_model("passthrough", given={TRIPS: [{"r": np.float64("nan")}, {"r": 2.0}]})
    assert _is_nan(list(out)[0]["r"])


def test_bytes_where_no_binary_type_holds_them_is_a_clear_error(dbt) -> None:
    with pytest.raises(
        FixtureValueError, match=r"row 1, column 'fare_id': b'\\x01' cannot be cast"
    ):
        dbt.run_model("trip_log", given={FARES: [{"fare_id": b"\x01"}]})
    with pytest.raises(FixtureValueError, match=r"column 'v' cannot be typed: it mixes bytes and"):
        dbt.run_model("passthrough", given={TRIPS: [{"v": b"a"}, {"v": "a"}]})


_ONE_KIND = st.one_of(
    st.lists(st.integers(-(2**64), 2**64) | st.none(), min_size=1),
    st.lists(st.decimals(allow_nan=True, allow_infinity=True) | st.none(), min_size=1),
    st.lists(st.sampled_from([Decimal("0"), Decimal("0E-40"), Decimal("-0.00")]), min_size=1),
    st.lists(st.datetimes(timezones=st.none() | st.timezones()) | st.none(), min_size=1),
    st.lists(st.floats() | st.none(), min_size=1),
    st.lists(st.text() | st.none(), min_size=1),
    st.lists(st.binary() | st.none(), min_size=1),
    st.lists(st.booleans() | st.dates() | st.times(), min_size=1),
)


@settings(max_examples=300, deadline=None)
@given(values=_ONE_KIND, duckdb=st.booleans())
def test_a_column_of_one_kind_is_typed_as_value_by_value(values, duckdb) -> None:
    from dbtproof.engine.inputs import Dialect, _implied_type, _implied_type_by_value

    dialect = Dialect(
        cast=lambda v, t: f"cast({v} as {t})",
        quote=lambda n: f'"{n}"',
        decimal_scaled="decimal(38, {scale})" if duckdb else "",
        binary="blob",
        binary_style="escaped",
    )

    def typed(typer):
        try:
            return typer(values, dialect)
        except ValueError as exc:
            return str(exc)

    assert typed(_implied_type) == typed(_implied_type_by_value)


# -- columns and formats ----------------------------------------------------------------


def test_a_fixture_of_unknown_columns_only_is_a_typo(dbt) -> None:
    # Nothing declares zones' columns, but zone_report's SQL reads zone_id, zone_name, area.
    with pytest.raises(FixtureColumnError, match=r"'zone_idd'.*zone_id, zone_name, area"):
        dbt.run_model("zone_report", given={ZONES: [{"zone_idd": 1}]})
    with pytest.raises(FixtureColumnError, match=r"'fare_idd'.*fare_id, paid_at, amount"):
        dbt.run_model("trip_log", given={FARES: [{"fare_idd": 1}]})
    # A column the model does not read, beside one it does, is no typo; nor anything a
    # `select *` passes on (those columns are not known).
    out = dbt.run_model("zone_report", given={ZONES: [{"zone_id": 1, "note": "x"}]})
    assert out == [{"zone_id": 1, "zone_name": None, "double_area": None}]
    assert dbt.run_model("passthrough", given={TRIPS: [{"anything": 1}]}) == [{"anything": 1}]


def test_broken_csv_and_unnamed_frame_columns_are_refused(dbt) -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(FixtureFormatError, match=r"not valid CSV.*line 3.*never closed"):
        dbt.run_model("passthrough", given={TRIPS: 'a,b\n1,"x\n2,y\n'})
    with pytest.raises(FixtureFormatError, match=r"not valid CSV.*'\"' "):
        dbt.run_model("passthrough", given={TRIPS: 'a,b\n1,"x"y\n'})
    with pytest.raises(FixtureFormatError, match=r"not strings \(0, 1\)"):
        dbt.run_model("passthrough", given={TRIPS: pd.DataFrame([[1, 2]])})
    columns = pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
    with pytest.raises(FixtureFormatError, match="MultiIndex"):
        dbt.run_model("passthrough", given={TRIPS: pd.DataFrame([[1, 2]], columns=columns)})


def test_keys_that_are_no_names_are_dbtproof_errors(dbt) -> None:
    with pytest.raises(InputKeyError, match=r"keys of given=.*got 42 \(int\)"):
        dbt.run_model("passthrough", given={42: []})
    with pytest.raises(InputKeyError, match=r"ref\(\) takes a model name.*got None"):
        ref(None)  # type: ignore[arg-type]
    with pytest.raises(InputKeyError, match=r"source\(\) takes a table name"):
        source("lake", "")
    assert issubclass(InputKeyError, DbtproofError)


def test_a_selector_that_names_nothing_is_an_error(dbt) -> None:
    if dbt.adapter_type != "duckdb":
        pytest.skip("dbt's selection is the same on every adapter")
    with pytest.raises(DbtRunError, match=r"selected nothing: 'trip_statz' matches no node"):
        dbt.build(select="trip_statz")
    # A node the command has nothing to do for is no typo: nothing runs, as in dbt.
    assert dbt.test(select="passthrough").nodes == []


# -- large fixtures: the driver's bulk path ----------------------------------------------

LARGE = 1200  # above the bulk path's threshold (engine/staging.py: BULK_ROWS)
ODD_TEXTS = ["", "\\N", "tab\there", "line\nbreak\r\n", "back\\slash\\", "'); drop table t; --",
             'double "quotes"', "ünïcødé ✓", " padded ", "\\.", "$$"]  # fmt: skip


def staged_relations(dbt) -> int:
    """How many relations the bulk path left on the run_model connection."""
    if dbt.adapter_type == "postgres":
        sql = (
            "select count(*) as n from pg_class where relnamespace = pg_my_temp_schema() "
            "and relname like 'dbtproof_fixture%'"
        )
    else:
        sql = "select count(*) as n from duckdb_views() where view_name like 'dbtproof_fixture%'"
    return dbt.query(sql)[0]["n"]


def test_large_fixtures_load_as_data_with_the_types_of_the_small_path(dbt) -> None:
    before = relation_count(dbt)
    rows = [
        {"id": i, "text": ODD_TEXTS[i % len(ODD_TEXTS)] if i % 13 else None,
         "amount": Decimal(i) / 8, "at": datetime(2024, 1, 1, i % 24, i % 60),
         "flag": i % 3 == 0, "ratio": i / 7}
        for i in range(LARGE)
    ]  # fmt: skip
    out = dbt.run_model("passthrough", given={TRIPS: rows})
    assert out == rows
    small = dbt.run_model("passthrough", given={TRIPS: rows[:5]})
    assert [type(v) for v in small[0].values()] == [type(v) for v in out[0].values()]
    # Typed by the YAML (fare_id integer, paid_at timestamp) from strings, as small ones are.
    fares = [{"fare_id": str(i), "paid_at": f"2024-03-01 10:{i % 60:02d}:00"} for i in range(LARGE)]
    out = dbt.run_model("trip_log", given={FARES: fares})
    assert out == [
        {"trip_id": i, "started_at": datetime(2024, 3, 1, 10, i % 60), "fare": None}
        for i in range(LARGE)
    ]
    assert isinstance(out[0]["trip_id"], int)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["ratio"].where(frame["id"] % 5 > 0)  # NaN: missing
    frame["at"] = frame["at"].where(frame["id"] % 7 > 0)  # NaT: missing
    out = dbt.run_model("passthrough", given={TRIPS: frame})
    assert out == [
        {**row, "ratio": row["ratio"] if row["id"] % 5 else None,
         "at": row["at"] if row["id"] % 7 else None}
        for row in rows
    ]  # fmt: skip
    csv_text = "n,label\n" + "".join(f"{i},x{i}\n" for i in range(LARGE))
    out = dbt.run_model("passthrough", given={TRIPS: csv_text})
    assert out == [{"n": i, "label": f"x{i}"} for i in range(LARGE)]
    assert isinstance(out[7]["n"], int)
    assert relation_count(dbt) == before
    assert staged_relations(dbt) == 0


def test_a_bad_value_in_a_large_fixture_is_found_by_row(dbt) -> None:
    fares = [{"fare_id": i, "paid_at": "2024-03-01 10:00:00"} for i in range(LARGE)]
    fares[1033]["paid_at"] = "2024-02-30 10:00:00"  # spelled as a timestamp, but no day
    with pytest.raises(FixtureValueError, match=r"row 1034 cannot be typed") as caught:
        dbt.run_model("trip_log", given={FARES: fares})
    assert len(str(caught.value)) < 2000  # one row's SQL, not 1,200
    fares[1033]["paid_at"] = "soon"  # clearly no timestamp: refused before any SQL runs
    with pytest.raises(FixtureValueError, match=r"row 1034, column 'paid_at': 'soon'"):
        dbt.run_model("trip_log", given={FARES: fares})
    rows = [{"v": "ok"}] * LARGE
    rows = [*rows[:500], {"v": "x\x00y"}, *rows[500:]]
    with pytest.raises(FixtureValueError, match=r"row 501, column 'v'.*NUL"):
        dbt.run_model("passthrough", given={TRIPS: rows})
    rows[500] = {"v": "lone \ud800 surrogate"}  # no UTF-8 for it: the driver refuses it
    with pytest.raises(FixtureValueError, match=r"(?s)row 501 cannot be typed.*surrogate"):
        dbt.run_model("passthrough", given={TRIPS: rows})
    assert staged_relations(dbt) == 0


def test_a_model_failing_on_a_large_fixture_shows_sql_without_its_rows(dbt) -> None:
    zones = [{"zone_id": i, "zone_name": "n", "area": "wide"} for i in range(LARGE)]
    # area is text here (nothing types it), and zone_report multiplies it. A column of
    # NULLs only that nothing types is no reason to leave the bulk path either.
    for fixture in (zones, [{**zone, "note": None} for zone in zones]):
        with pytest.raises(DbtproofError, match="dbtproof_fixture_1") as caught:
            dbt.run_model("zone_report", given={ZONES: fixture})
        assert "wide" not in str(caught.value)


def test_apply_on_a_large_this(dbt) -> None:
    this = [{"trip_id": i, "started_at": datetime(2024, 1, 1), "fare": i} for i in range(LARGE)]
    fares = [{"fare_id": LARGE + 1, "paid_at": "2024-03-02 09:00:00", "amount": 5}]
    after = dbt.run_model("trip_log", given={FARES: fares}, this=this, apply=True)
    assert len(after) == LARGE + 1
    assert {"trip_id": LARGE + 1, "started_at": datetime(2024, 3, 2, 9), "fare": 5} in list(after)
    assert staged_relations(dbt) == 0


# -- random hostile fixtures (hypothesis) ------------------------------------------------
# test_engine_columns.py feeds odd names and one kind of value per column; these add mixed
# and wrong kinds, extreme numbers, long strings, typed upstreams and ragged CSV text.

_PIECES = ["a", "Z", " ", ",", '"', "'", "\\", ";", "\n", "\t", "\r", "-", "(", "ü", "✓", "$$",
           "\\N", "\\.", "'); drop schema lake cascade; --", "select", "null"]  # fmt: skip
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
_ODD = st.one_of(
    st.none(),
    _TEXT,
    st.just("x" * 5000),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(width=64),
    st.decimals(places=None, allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(-3, 3), max_size=2),
    st.dictionaries(st.sampled_from(["k", "'"]), _TEXT, max_size=2),
)
_NAMES = st.sampled_from(["id", "Label", "with space", 'q"uote', "sélect", "order", "x'y"])


def _outcome(dbt, model: str, key: object, fixture: object):
    """The rows, or the DbtproofError; any other exception fails the test (an internal
    traceback)."""
    try:
        return dbt.run_model(model, given={key: fixture})
    except DbtproofError as exc:
        return exc


@settings(
    max_examples=int(os.environ.get("DBTPROOF_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    columns=st.dictionaries(_NAMES, st.lists(_ODD, min_size=1, max_size=4), min_size=1, max_size=3),
    typed=st.booleans(),
)
def test_mixed_wrong_and_extreme_values_are_data_or_a_clear_error(dbt, columns, typed) -> None:
    depth = max(len(values) for values in columns.values())
    rows = [{name: (vs[i] if i < len(vs) else None) for name, vs in columns.items()}
            for i in range(depth)]  # fmt: skip
    if typed:  # fare_id is an integer and paid_at a timestamp there: wrong kinds meet types
        rows = [{"fare_id": r.get("id"), "paid_at": r.get("Label"), **r} for r in rows]
    before = relation_count(dbt)
    out = _outcome(dbt, "trip_log" if typed else "passthrough", FARES if typed else TRIPS, rows)
    if isinstance(out, DbtproofError):
        assert isinstance(out, (FixtureValueError, FixtureColumnError)), out
        assert str(out).startswith("dbtproof: ")
    else:
        assert len(out) == depth
        if not typed:  # a column of text only comes back as it was given
            text = [n for n, vs in columns.items() if all(isinstance(v, str) for v in vs)]
            text = [n for n in text if len(columns[n]) == depth]
            assert out == [{_fold(n): row[n] for n in text} for row in rows]
    assert relation_count(dbt) == before


@settings(
    max_examples=int(os.environ.get("DBTPROOF_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cells=st.lists(st.tuples(st.integers(-(2**62), 2**62), _TEXT), min_size=1, max_size=5),
    damage=st.sampled_from(["none", "ragged", "unclosed"]),
    at=st.integers(0, 4),
)
def test_csv_text_is_rows_or_a_clear_format_error(dbt, cells, damage, at) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # lines end in \r\n: a \r or \n in a field is quoted
    writer.writerow(["n", "label"])
    lines = []
    for number, label in cells:
        line = io.StringIO()
        csv.writer(line).writerow([number, "t" + label])
        lines.append(line.getvalue())
    at %= len(lines)
    if damage == "ragged":
        lines[at] = lines[at].rstrip("\r\n") + ",extra\r\n"
    elif damage == "unclosed":
        lines[at] = '"' + lines[at].replace('"', "")
    text = buffer.getvalue() + "".join(lines)
    before = relation_count(dbt)
    out = _outcome(dbt, "passthrough", TRIPS, text)
    if damage == "ragged":
        assert isinstance(out, FixtureFormatError) and "ragged" in str(out), out
    elif damage == "unclosed":
        assert isinstance(out, FixtureFormatError) and "not valid CSV" in str(out), out
    else:
        expected = [{"n": n, "label": "t" + label} for n, label in cells]
        assert out == expected
    assert relation_count(dbt) == before
