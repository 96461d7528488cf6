"""Tests of :mod:`dbtproof.rows`: the Rows sequence, its comparison rules and its diff."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from dbtproof.rows import MAX_DIFF_ROWS, OrderedRows, Rows, diff_rows, explain_comparison


@pytest.fixture
def people() -> Rows:
    return Rows(
        ["id", "name", "score"],
        [(1, "ada", Decimal("9.5")), (2, "bob", 7.0), (3, "cy", None)],
    )


def one(value: Any) -> Rows:
    """A single-cell Rows, to test how one value compares."""
    return Rows(["v"], [(value,)])


# ---------------------------------------------------------------------------
# The sequence
# ---------------------------------------------------------------------------


def test_columns_len_and_iteration(people: Rows) -> None:
    assert people.columns == ("id", "name", "score")
    assert len(people) == 3
    assert bool(people)
    assert not Rows(["id"], [])
    assert list(people) == [
        {"id": 1, "name": "ada", "score": Decimal("9.5")},
        {"id": 2, "name": "bob", "score": 7.0},
        {"id": 3, "name": "cy", "score": None},
    ]
    assert isinstance(people, Sequence)
    assert [row["id"] for row in reversed(people)] == [3, 2, 1]


def test_indexing_returns_a_fresh_dict(people: Rows) -> None:
    row = people[0]
    assert row == {"id": 1, "name": "ada", "score": Decimal("9.5")}
    row["name"] = "changed"
    assert people[0]["name"] == "ada"
    assert people[-1]["id"] == 3
    with pytest.raises(IndexError, match="row index 3 out of range for 3 row"):
        people[3]


def test_slicing_returns_rows(people: Rows) -> None:
    tail = people[1:]
    assert isinstance(tail, Rows)
    assert tail.columns == people.columns
    assert [row["id"] for row in tail] == [2, 3]
    assert len(people[::2]) == 2


def test_rows_are_read_only_and_unhashable(people: Rows) -> None:
    with pytest.raises(TypeError):
        people[0] = {"id": 9}  # type: ignore[index]
    with pytest.raises(AttributeError):
        people.extra = 1  # type: ignore[attr-defined]
    assert Rows.__hash__ is None
    with pytest.raises(TypeError):
        hash(people)
    with pytest.raises(TypeError):
        hash(people.ordered)


def test_constructor_checks_its_input() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 value.* but there are 2 column"):
        Rows(["a", "b"], [(1, 2), (3,)])
    with pytest.raises(ValueError, match="'a' appear.* more than once.*alias"):
        Rows(["a", "b", "a"], [])
    with pytest.raises(TypeError, match="not the string 'ab'"):
        Rows("ab", [])
    with pytest.raises(TypeError, match="column names must be strings"):
        Rows([1], [])  # type: ignore[list-item]


def test_constructor_accepts_any_iterable_of_sequences() -> None:
    rows = Rows(("a", "b"), iter([[1, 2], (3, 4)]))
    assert list(rows) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_from_dicts_takes_columns_from_the_first_dict() -> None:
    rows = Rows.from_dicts([{"b": 1, "a": 2}, {"a": 4, "b": 3}])
    assert rows.columns == ("b", "a")
    assert list(rows) == [{"b": 1, "a": 2}, {"b": 3, "a": 4}]
    assert Rows.from_dicts([]).columns == ()


def test_from_dicts_with_columns_projects() -> None:
    rows = Rows.from_dicts([{"a": 1, "b": 2, "c": 3}], columns=["c", "a"])
    assert rows.columns == ("c", "a")
    assert rows[0] == {"c": 3, "a": 1}
    assert Rows.from_dicts([], columns=["x"]).columns == ("x",)


def test_from_dicts_rejects_inconsistent_dicts() -> None:
    with pytest.raises(ValueError, match="row 1 does not match row 0.*it lacks 'b'"):
        Rows.from_dicts([{"a": 1, "b": 2}, {"a": 3}])
    with pytest.raises(ValueError, match="dict 0 has no value for 'z'"):
        Rows.from_dicts([{"a": 1}], columns=["a", "z"])
    with pytest.raises(TypeError, match="item 1 is a tuple"):
        Rows.from_dicts([{"a": 1}, (2,)])  # type: ignore[list-item]


def test_membership_count_and_index_use_the_comparison_rules(people: Rows) -> None:
    assert {"id": 2} in people
    assert {"id": 2.0, "name": "bob"} in people
    assert {"id": 2, "name": "ada"} not in people
    assert {"nope": 1} not in people
    assert (1, "ada", Decimal("9.5")) not in people
    assert people.count({"score": None}) == 1
    assert Rows(["a"], [(1,), (1.0,), (2,)]).count({"a": Decimal(1)}) == 2
    assert people.index({"name": "cy"}) == 2
    with pytest.raises(ValueError, match="no row matches"):
        people.index({"name": "zed"})


def test_repr_is_a_small_table(people: Rows) -> None:
    assert repr(people).splitlines() == [
        "<Rows: 3 rows, 3 columns>",
        "id | name  | score",
        "---+-------+---------------",
        "1  | 'ada' | Decimal('9.5')",
        "2  | 'bob' | 7.0",
        "3  | 'cy'  | None",
    ]
    assert repr(people.ordered).splitlines()[0] == "<Rows.ordered: 3 rows, 3 columns>"


def test_repr_of_many_and_of_empty_rows() -> None:
    lines = repr(Rows(["n"], [(i,) for i in range(15)])).splitlines()
    assert lines[0] == "<Rows: 15 rows, 1 column>"
    assert lines[-1] == "... 5 more rows"
    assert len(lines) == 3 + 10 + 1
    assert repr(Rows(["a", "b"], [])).splitlines() == [
        "<Rows: 0 rows, 2 columns>",
        "a | b",
        "--+--",
    ]
    assert repr(Rows([], [(), ()])) == "<Rows: 2 rows, 0 columns>"


# ---------------------------------------------------------------------------
# Equality
# ---------------------------------------------------------------------------


def test_equality_ignores_row_order(people: Rows) -> None:
    assert people == [
        {"id": 3, "name": "cy", "score": None},
        {"id": 1, "name": "ada", "score": Decimal("9.5")},
        {"id": 2, "name": "bob", "score": 7},
    ]


def test_equality_counts_duplicates() -> None:
    rows = Rows(["a"], [(1,), (1,), (2,)])
    assert rows == [{"a": 2}, {"a": 1}, {"a": 1}]
    assert rows != [{"a": 1}, {"a": 2}]
    assert rows != [{"a": 1}, {"a": 2}, {"a": 2}]
    assert rows != [{"a": 1}, {"a": 1}, {"a": 2}, {"a": 2}]


def test_equality_compares_only_the_expected_columns(people: Rows) -> None:
    assert people == [{"name": "bob"}, {"name": "cy"}, {"name": "ada"}]
    assert people == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert people != [{"id": 1}, {"id": 2}]


def test_a_column_the_rows_lack_makes_them_unequal(people: Rows) -> None:
    assert people != [{"id": 1, "email": None}, {"id": 2, "email": None}, {"id": 3, "email": None}]


def test_expected_rows_must_name_the_same_columns(people: Rows) -> None:
    with pytest.raises(ValueError, match=r"must all name the same columns.*row 1.*lacks 'name'"):
        _ = people == [{"id": 1, "name": "ada"}, {"id": 2}]
    with pytest.raises(ValueError, match="it adds 'x'"):
        _ = people == [{"id": 1}, {"id": 2, "x": 0}]
    with pytest.raises(ValueError, match="list of dicts.*item 0.*is a tuple"):
        _ = people == [(1, "ada", 9.5)]


def test_comparison_with_other_types_is_plain_inequality(people: Rows) -> None:
    assert people != 3
    assert people != "rows"
    assert people != {"id": 1}
    assert (people == None) is False  # noqa: E711


def test_empty_expected() -> None:
    assert Rows(["a"], []) == []
    assert Rows(["a"], [(1,)]) != []


def test_rows_compare_with_rows() -> None:
    wide = Rows(["id", "name"], [(1, "a"), (2, "b")])
    narrow = Rows(["id"], [(2.0,), (1,)])
    assert wide == narrow  # the right-hand side names the compared columns
    assert narrow != wide  # ... so narrow lacks 'name'


def test_a_list_on_the_left_is_the_expected_side(people: Rows) -> None:
    expected = [{"id": 3}, {"id": 2}, {"id": 1}]
    assert expected == people  # noqa: SIM300  -- the reflected comparison is the point
    assert expected[:1] != people  # noqa: SIM300


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (1, 1.0),
        (1, Decimal("1")),
        (1.0, Decimal("1.000")),
        (Decimal("2.50"), 2.5),
        (0.1 + 0.2, 0.3),
        (0.1 + 0.2, Decimal("0.3")),
        (Decimal("1.66666666666666666667"), 5 / 3),  # a warehouse numeric average
        (12345678901234567, 12345678901234567),
        (1234567890123.0, 1234567890123),  # an integral float stays exact
        (-0.0, 0),
        (Fraction(1, 4), 0.25),
        (float("nan"), float("nan")),
        (float("inf"), Decimal("Infinity")),
    ],
)
def test_numbers_compare_by_value(actual: Any, expected: Any) -> None:
    assert one(actual) == [{"v": expected}]
    assert one(expected) == [{"v": actual}]


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (1, 2),
        (0.3, 0.31),
        (1.0, 1.0001),
        (Decimal("0.1"), Decimal("0.10001")),
        (12345678901234567, 12345678901234568),  # big integers stay exact
        (1, "1"),
        (float("nan"), None),
    ],
)
def test_different_numbers_differ(actual: Any, expected: Any) -> None:
    assert one(actual) != [{"v": expected}]
    assert one(expected) != [{"v": actual}]


@pytest.mark.parametrize(("boolean", "number"), [(True, 1), (False, 0), (True, 1.0), (False, 0.0)])
def test_bool_is_not_a_number(boolean: bool, number: Any) -> None:
    assert one(boolean) != [{"v": number}]
    assert one(number) != [{"v": boolean}]
    assert one(boolean) == [{"v": boolean}]


@pytest.mark.parametrize("other", [0, "", "None", False, float("nan"), []])
def test_none_equals_only_none(other: Any) -> None:
    assert one(None) == [{"v": None}]
    assert one(None) != [{"v": other}]
    assert one(other) != [{"v": None}]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
        (datetime(2024, 1, 2, 3, 4), "2024-01-02 03:04"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000), "2024-01-02 03:04:05.12"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2024-01-02 04:04:05+01:00"),
        (
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
            "2024-01-02 08:04:05+00",
        ),
        (time(3, 4, 5), "03:04:05"),
        (time(3, 4), "03:04"),
    ],
)
def test_dates_and_times_equal_their_iso_strings(value: Any, text: str) -> None:
    assert one(value) == [{"v": text}]
    assert one(text) == [{"v": value}]


@pytest.mark.parametrize(
    ("value", "other"),
    [
        (date(2024, 1, 2), "2024-01-03"),
        (date(2024, 1, 2), datetime(2024, 1, 2)),  # a date is not midnight
        (date(2024, 1, 2), "2024-01-02T00:00:00"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:06"),
        (datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),  # naive is not aware
        (date(2024, 1, 2), "2024-1-2"),
    ],
)
def test_different_dates_differ(value: Any, other: Any) -> None:
    assert one(value) != [{"v": other}]
    assert one(other) != [{"v": value}]


def test_strings_that_are_not_dates_stay_strings() -> None:
    assert one("2024-13-45") == [{"v": "2024-13-45"}]
    assert one("2024-13-45") != [{"v": "2024-13-46"}]
    assert one("12:30 pm") != [{"v": time(12, 30)}]
    assert one("abc") != [{"v": "ABC"}]


def test_aware_datetimes_compare_by_instant() -> None:
    utc = datetime(2024, 1, 2, 12, 0, tzinfo=timezone.utc)
    paris = datetime(2024, 1, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert one(utc) == [{"v": paris}]


def test_other_value_types() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert one(ident) == [{"v": "12345678-1234-5678-1234-567812345678"}]
    assert one(memoryview(b"ab")) == [{"v": b"ab"}]
    assert one(bytearray(b"ab")) != [{"v": b"ba"}]
    assert one([1, 2.0, None]) == [{"v": (1.0, Decimal(2), None)}]
    assert one({"a": [1, True]}) == [{"v": {"a": [1.0, True]}}]
    assert one({"a": [1, True]}) != [{"v": {"a": [1, 1]}}]
    assert one({1, 2}) == [{"v": {2.0, 1}}]


def test_numpy_and_pandas_values() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    assert one(np.int64(3)) == [{"v": 3}]
    assert one(np.float64(0.1) + np.float64(0.2)) == [{"v": Decimal("0.3")}]
    assert one(np.bool_(True)) == [{"v": True}]
    assert one(np.bool_(True)) != [{"v": 1}]
    assert one(pd.Timestamp("2024-01-02 03:04:05")) == [{"v": "2024-01-02 03:04:05"}]
    assert one(pd.NaT) != [{"v": None}]


def test_column_names_fall_back_to_a_unique_case_insensitive_match() -> None:
    assert Rows(["ID", "NAME"], [(1, "a")]) == [{"id": 1, "name": "a"}]
    assert Rows(["Id", "ID"], [(1, 2)]) != [{"id": 1}]  # ambiguous
    assert Rows(["Id", "ID"], [(1, 2)]) == [{"ID": 2}]  # exact match wins


def test_ordered_compares_in_order(people: Rows) -> None:
    in_order = [{"id": 1}, {"id": 2}, {"id": 3}]
    assert isinstance(people.ordered, OrderedRows)
    assert people.ordered == in_order
    assert people.ordered != list(reversed(in_order))
    assert people.ordered != in_order[:2]
    assert people.ordered == [{"id": 1.0}, {"id": Decimal(2)}, {"id": 3}]
    assert people.ordered == people
    assert people.ordered != people[::-1]
    assert people.ordered == people.ordered
    assert people.ordered != [{"id": 1, "x": 0}, {"id": 2, "x": 0}, {"id": 3, "x": 0}]
    assert len(people.ordered) == 3


def test_ordered_counts_duplicates_in_place() -> None:
    rows = Rows(["a"], [(1,), (1,), (2,)])
    assert rows.ordered == [{"a": 1}, {"a": 1}, {"a": 2}]
    assert rows.ordered != [{"a": 1}, {"a": 2}, {"a": 1}]


# ---------------------------------------------------------------------------
# pandas and pyarrow
# ---------------------------------------------------------------------------


def test_to_pandas_round_trip(people: Rows) -> None:
    pytest.importorskip("pandas")
    frame = people.to_pandas()
    assert list(frame.columns) == ["id", "name", "score"]
    assert len(frame) == 3
    assert frame["name"].tolist() == ["ada", "bob", "cy"]
    back = Rows(list(frame.columns), frame.itertuples(index=False))
    assert back.ordered == people
    assert Rows.from_dicts(frame.to_dict("records")) == people


def test_to_pandas_keeps_the_columns_of_empty_rows() -> None:
    pytest.importorskip("pandas")
    frame = Rows(["a", "b"], []).to_pandas()
    assert list(frame.columns) == ["a", "b"]
    assert len(frame) == 0


def test_to_arrow_round_trip() -> None:
    pa = pytest.importorskip("pyarrow")
    rows = Rows(
        ["id", "name", "day", "amount"],
        [(1, "a", date(2024, 1, 2), Decimal("1.50")), (2, None, date(2024, 1, 3), None)],
    )
    table = rows.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column_names == ["id", "name", "day", "amount"]
    assert table.num_rows == 2
    assert pa.types.is_integer(table.schema.field("id").type)
    assert pa.types.is_date(table.schema.field("day").type)
    assert Rows.from_dicts(table.to_pylist()).ordered == rows
    assert Rows.from_dicts(table.to_pylist()) == [
        {"id": 2, "name": None, "day": "2024-01-03", "amount": None},
        {"id": 1, "name": "a", "day": "2024-01-02", "amount": 1.5},
    ]


@pytest.mark.parametrize(("module", "method"), [("pandas", "to_pandas"), ("pyarrow", "to_arrow")])
def test_missing_optional_package_gives_a_clear_error(
    people: Rows, monkeypatch: pytest.MonkeyPatch, module: str, method: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        ImportError, match=rf"Rows.{method}\(\) needs {module}.*pip install {module}"
    ):
        getattr(people, method)()


# ---------------------------------------------------------------------------
# The diff
# ---------------------------------------------------------------------------


@pytest.fixture
def orders() -> Rows:
    return Rows(
        ["order_id", "customer", "status", "amount", "loaded_at"],
        [
            (1, "ada", "shipped", Decimal("10.00"), datetime(2024, 1, 2)),
            (2, "bob", "pending", Decimal("5.50"), datetime(2024, 1, 2)),
            (3, "cy", "shipped", Decimal("7.25"), datetime(2024, 1, 2)),
            (5, "eve", "returned", Decimal("1.00"), datetime(2024, 1, 2)),
        ],
    )


def test_diff_lines_read_well(orders: Rows) -> None:
    expected = [
        {"order_id": 1, "customer": "ada", "status": "shipped", "amount": 10},
        {"order_id": 2, "customer": "bob", "status": "shipped", "amount": 5.5},
        {"order_id": 3, "customer": "cy", "status": "shipped", "amount": 7.25},
        {"order_id": 4, "customer": "dan", "status": "new", "amount": 3},
    ]
    assert diff_rows(orders, expected) == [
        "Rows differ (ignoring order): got 4 rows, expected 4 rows; "
        "1 changed, 1 missing, 1 unexpected",
        "Changed rows (1):",
        "  {order_id: 2, customer: 'bob', status: 'shipped', amount: 5.5}",
        "      status: expected 'shipped', got 'pending'",
        "Missing rows, expected but not found (1):",
        "  {order_id: 4, customer: 'dan', status: 'new', amount: 3}",
        "Unexpected rows, found but not expected (1):",
        "  {order_id: 5, customer: 'eve', status: 'returned', amount: Decimal('1.00')}",
        "Not compared (not named by expected): loaded_at",
    ]


def test_diff_lists_every_differing_cell_of_a_changed_row(orders: Rows) -> None:
    expected = [
        {"order_id": 1, "customer": "ada", "status": "shipped", "amount": 10},
        {"order_id": 2, "customer": "bob", "status": "done", "amount": 6},
        {"order_id": 3, "customer": "cy", "status": "shipped", "amount": 7.25},
        {"order_id": 5, "customer": "eve", "status": "returned", "amount": 1},
    ]
    lines = diff_rows(orders, expected)
    assert lines[0].endswith("; 1 changed")
    assert lines[1:4] == [
        "Changed rows (1):",
        "  {order_id: 2, customer: 'bob', status: 'done', amount: 6}",
        "      status: expected 'done', got 'pending'",
    ]
    assert lines[4] == "      amount: expected 6, got Decimal('5.50')"


def test_diff_pairs_only_rows_that_agree_on_at_least_half_the_columns() -> None:
    rows = Rows(["a", "b", "c"], [(1, 2, 3)])
    # one of three cells agrees: less than half, so not a changed row
    lines = diff_rows(rows, [{"a": 1, "b": 9, "c": 9}])
    assert not any(line.startswith("Changed") for line in lines)
    assert "  {a: 1, b: 9, c: 9}" in lines
    assert "  {a: 1, b: 2, c: 3}" in lines
    # two of three agree
    lines = diff_rows(rows, [{"a": 1, "b": 2, "c": 9}])
    assert lines[1:4] == ["Changed rows (1):", "  {a: 1, b: 2, c: 9}", "      c: expected 9, got 3"]


def test_diff_pairs_the_closest_rows_first() -> None:
    rows = Rows(["k", "x", "y", "z"], [(1, 0, 0, 0), (1, 1, 1, 0)])
    expected = [{"k": 1, "x": 1, "y": 0, "z": 9}, {"k": 1, "x": 1, "y": 1, "z": 9}]
    lines = diff_rows(rows, expected)
    assert lines[:6] == [
        "Rows differ (ignoring order): got 2 rows, expected 2 rows; 2 changed",
        "Changed rows (2):",
        "  {k: 1, x: 1, y: 0, z: 9}",
        "      x: expected 1, got 0",
        "      z: expected 9, got 0",
        "  {k: 1, x: 1, y: 1, z: 9}",
    ]
    assert lines[6:] == ["      z: expected 9, got 0"]


def test_diff_reports_a_missing_column_first(orders: Rows) -> None:
    expected = [{"order_id": i, "email": None} for i in (1, 2, 3, 5)]
    assert diff_rows(orders, expected) == [
        "Rows differ (ignoring order): got 4 rows, expected 4 rows; missing column",
        "Missing column: expected names 'email', but the rows have only "
        "'order_id', 'customer', 'status', 'amount', 'loaded_at'",
        "On the other columns (order_id) the rows match.",
        "Not compared (not named by expected): customer, status, amount, loaded_at",
    ]


def test_diff_with_a_missing_column_still_diffs_the_other_columns(orders: Rows) -> None:
    expected = [{"order_id": i, "email": None} for i in (1, 2, 3, 4)]
    lines = diff_rows(orders, expected)
    assert lines[0].endswith("; missing column, 1 missing, 1 unexpected")
    assert lines[1].startswith("Missing column: expected names 'email'")
    assert "  {order_id: 4, email: None}" in lines
    assert "  {order_id: 5}" in lines


def test_diff_in_order(orders: Rows) -> None:
    expected = [{"order_id": i} for i in (1, 3, 2, 5)]
    assert diff_rows(orders.ordered, expected) == [
        "Rows differ (in order): got 4 rows, expected 4 rows; same rows in a different order",
        "First difference at row 1:",
        "  expected: {order_id: 3}",
        "  got:      {order_id: 2}",
        "Not compared (not named by expected): customer, status, amount, loaded_at",
    ]
    assert diff_rows(orders, expected, ordered=True) == diff_rows(orders.ordered, expected)


def test_diff_in_order_with_different_contents(orders: Rows) -> None:
    expected = [
        {"order_id": 1, "status": "shipped"},
        {"order_id": 2, "status": "shipped"},
        {"order_id": 3, "status": "shipped"},
    ]
    assert diff_rows(orders.ordered, expected)[:9] == [
        "Rows differ (in order): got 4 rows, expected 3 rows; 1 changed, 1 unexpected",
        "First difference at row 1:",
        "  expected: {order_id: 2, status: 'shipped'}",
        "  got:      {order_id: 2, status: 'pending'}",
        "    status: expected 'shipped', got 'pending'",
        "Ignoring order:",
        "Changed rows (1):",
        "  {order_id: 2, status: 'shipped'}",
        "      status: expected 'shipped', got 'pending'",
    ]


def test_diff_in_order_when_one_side_runs_out(orders: Rows) -> None:
    lines = diff_rows(orders.ordered, [{"order_id": i} for i in (1, 2, 3, 5, 6)])
    assert lines[1:4] == [
        "First difference at row 4:",
        "  expected: {order_id: 6}",
        "  got:      no more rows (got 4 rows)",
    ]
    lines = diff_rows(orders.ordered, [{"order_id": i} for i in (1, 2)])
    assert lines[1:4] == [
        "First difference at row 2:",
        "  expected: no more rows (expected has 2 rows)",
        "  got:      {order_id: 3}",
    ]


def test_diff_caps_each_section() -> None:
    rows = Rows(["n"], [(i,) for i in range(50)])
    lines = diff_rows(rows, [{"n": i} for i in range(100, 125)])
    assert (
        lines[0]
        == "Rows differ (ignoring order): got 50 rows, expected 25 rows; 25 missing, 50 unexpected"
    )
    missing_at = lines.index("Missing rows, expected but not found (25):")
    assert lines[missing_at + MAX_DIFF_ROWS + 1] == "  ... and 5 more"
    assert lines[-1] == "  ... and 30 more"
    assert len(lines) == 1 + 2 * (1 + MAX_DIFF_ROWS + 1)


def test_diff_of_equal_rows(people: Rows) -> None:
    assert diff_rows(people, [{"id": 3}, {"id": 2}, {"id": 1}]) == [
        "Rows are equal (ignoring order): 3 rows"
    ]


def test_diff_against_no_rows(people: Rows) -> None:
    assert diff_rows(people, []) == [
        "Rows differ (ignoring order): got 3 rows, expected 0 rows; 3 unexpected",
        "Unexpected rows, found but not expected (3):",
        "  {id: 1, name: 'ada', score: Decimal('9.5')}",
        "  {id: 2, name: 'bob', score: 7.0}",
        "  {id: 3, name: 'cy', score: None}",
    ]


def test_diff_shorten_long_values() -> None:
    rows = Rows(["text"], [("x" * 200,)])
    line = diff_rows(rows, [])[-1]
    assert line.endswith("...}")
    assert len(line) < 80


def test_diff_rejects_what_it_cannot_compare(people: Rows) -> None:
    with pytest.raises(TypeError):
        diff_rows(people, 3)
    with pytest.raises(TypeError):
        diff_rows([{"id": 1}], people)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same columns"):
        diff_rows(people, [{"id": 1}, {"name": "x"}])


def test_explain_comparison(people: Rows) -> None:
    expected = [{"id": 1}, {"id": 2}]
    assert explain_comparison("==", people, expected) == diff_rows(people, expected)
    assert explain_comparison("==", expected, people) == diff_rows(people, expected)
    assert explain_comparison("==", people.ordered, expected) == diff_rows(
        people, expected, ordered=True
    )
    assert explain_comparison("==", people, people[:1]) == diff_rows(people, people[:1])
    assert explain_comparison("==", people[:1], people.ordered) == diff_rows(
        people.ordered, people[:1]
    )
    assert explain_comparison("!=", people, expected) is None
    assert explain_comparison("==", people, 3) is None
    assert explain_comparison("==", [1], [2]) is None
    assert explain_comparison("==", people, [{"id": 1}, {"x": 1}]) is None


def test_the_diff_shows_in_pytest_output(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from dbtproof.rows import explain_comparison

        def pytest_assertrepr_compare(op, left, right):
            return explain_comparison(op, left, right)
        """
    )
    pytester.makepyfile(
        """
        from dbtproof.rows import Rows

        def test_rows():
            rows = Rows(["id", "name"], [(1, "a"), (2, "b")])
            assert rows == [{"id": 1, "name": "a"}, {"id": 2, "name": "B"}]
        """
    )
    result = pytester.runpytest("-p", "no:dbtproof", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       *assert Rows differ (ignoring order): got 2 rows, expected 2 rows; 1 changed",
            "E         Changed rows (1):",
            "E           {id: 2, name: 'B'}",
            "E               name: expected 'B', got 'b'",
        ]
    )


# ---------------------------------------------------------------------------
# Import cost
# ---------------------------------------------------------------------------


def test_importing_rows_does_not_import_dbt_pandas_or_pyarrow() -> None:
    code = (
        "import dbtproof.rows, sys; "
        "assert not any(m == 'dbt' or m.startswith('dbt.') for m in sys.modules), 'dbt'; "
        "assert 'pandas' not in sys.modules, 'pandas'; "
        "assert 'pyarrow' not in sys.modules, 'pyarrow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
