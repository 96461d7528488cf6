"""Tests of Rows and how they compare: rows.py, cells.py, pairing.py, approx.py and diff.py."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dbtproof.compare.approx
from dbtproof.compare.diff import MAX_DIFF_ROWS, diff_rows, explain_comparison
from dbtproof.compare.rows import (
    MAX_VALUE_WIDTH,
    OrderedRows,
    Rows,
    RowsView,
    _short_repr,
    approx_spec,
)
from dbtproof.errors import ComparisonSpecError, DbtproofError


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


def test_rows_compare_with_rows_on_every_column() -> None:
    wide = Rows(["id", "name"], [(1, "a"), (2, "b")])
    narrow = Rows(["id"], [(2.0,), (1,)])
    assert wide != narrow  # a column on one side only: unequal, whichever side
    assert narrow != wide
    assert not wide == narrow  # noqa: SIM201
    assert wide == Rows(["NAME", "id"], [("b", 2), ("a", 1.0)])  # any order, case-folded
    assert Rows(["NAME", "id"], [("b", 2), ("a", 1.0)]) == wide
    assert wide != Rows(["name", "id", "extra"], [("b", 2, 0), ("a", 1, 0)])
    assert wide == [{"id": 1}, {"id": 2}]  # a list of dicts names the columns it compares
    assert [{"id": 1}, {"id": 2}] == wide  # noqa: SIM300
    assert wide.ordered != narrow and narrow != wide.ordered
    assert Rows(["a"], []) != Rows(["b"], [])


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
# Exact numbers, the float tolerance and approx
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (Decimal("1234567890123.45"), Decimal("1234567890123.46")),  # money: a cent apart
        (Decimal("123456789.1231"), Decimal("123456789.1234")),
        (Decimal("1.1231"), Decimal("1.1234")),
        (Decimal("0.1"), Decimal("0.1000000000000000000000000001")),
        (Decimal("1"), Decimal("1.000000000001000000000002")),
        (10**30, 10**30 + 1),
        (Decimal(10**30), 10**30 + 1),
        (Fraction(1, 3), Decimal("0.3333333333333333333333333333")),
        (Decimal("1E-40"), 0),
    ],
)
def test_integers_and_decimals_compare_exactly(actual: Any, expected: Any) -> None:
    assert one(actual) != [{"v": expected}]
    assert one(expected) != [{"v": actual}]
    assert one(actual) != one(expected)
    assert one(actual).ordered != one(expected)
    assert {"v": expected} not in one(actual)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (Decimal("1.00"), 1),
        (Decimal("1.10"), Decimal("1.1")),
        (Decimal("1E+2"), 100),
        (Decimal("-0.000"), 0),
        (Fraction(1, 4), Decimal("0.25")),
        (Decimal("1234567890123.45"), Decimal("1234567890123.450")),
    ],
)
def test_integers_and_decimals_equal_by_value(actual: Any, expected: Any) -> None:
    assert one(actual) == [{"v": expected}]
    assert one(expected) == one(actual)
    assert {"v": expected} in one(actual)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (0.1 + 0.2, 0.3),
        (0.1 + 0.2, Decimal("0.3")),
        (2.675, Decimal("2.675")),  # the float is 2.67499999999999982236431605997495353221893...
        (1 / 3, Decimal("0.3333333333333333333")),  # a warehouse NUMERIC average
        (sum([0.1] * 10), 1),
        (-(0.1 + 0.2), Decimal("-0.3")),
        (1e300 * (1 + 2**-50), 1e300),
        (1e-300 * (1 + 2**-50), Decimal("1e-300")),
        # exactly at the edge: |x - y| = 1e-12 * y * (1 - 1e-24) <= 1e-12 * max(|x|, |y|)
        (1.0, Decimal("1.000000000001000000000001")),
        (1e15, 1e15 + 1),  # whole floats are floats
    ],
)
def test_a_float_allows_a_relative_difference_of_1e_12(actual: Any, expected: Any) -> None:
    assert one(actual) == [{"v": expected}]
    assert one(expected) == [{"v": actual}]
    assert one(actual) == one(expected)
    assert one(expected).ordered == one(actual)
    assert {"v": expected} in one(actual)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (1.0, 1.000000001),  # 1e-9 relative
        (1.0, Decimal("1.000000001")),
        (1e6, 1e6 + 1e-3),
        (1.0, 1.0 + 2e-12),
        (1.0, Decimal("1.000000000001000000000002")),  # just past the edge
        (0.0, 1e-300),  # no absolute tolerance
        (0.0, Decimal("1e-20")),
        (1.7976931348623157e308, float("inf")),
        (0.3, "0.3"),
    ],
)
def test_a_float_differs_beyond_1e_12(actual: Any, expected: Any) -> None:
    assert one(actual) != [{"v": expected}]
    assert one(expected) != [{"v": actual}]
    assert one(actual) != one(expected)
    assert {"v": expected} not in one(actual)


def test_the_float_tolerance_applies_inside_lists_and_dicts() -> None:
    assert one([0.1 + 0.2, 1]) == [{"v": (Decimal("0.3"), 1.0)}]
    assert one({"a": [0.1 + 0.2]}) == [{"v": {"a": [0.3]}}]
    assert one({"a": [0.1 + 0.2]}) != [{"v": {"a": [0.31]}}]
    assert one([Decimal("1.1231")]) != [{"v": [Decimal("1.1234")]}]


def test_multiset_matching_is_a_pairing_not_a_greedy_pass() -> None:
    # Decimal 1 equals both floats; the floats are 1.6e-12 apart, so not each other.
    # Pairing Decimal with Decimal first would leave the two floats unpaired.
    actual = Rows(["v"], [(Decimal(1),), (1.0 + 8e-13,)])
    expected = Rows(["v"], [(Decimal(1),), (1.0 - 8e-13,)])
    assert actual == expected
    assert expected == actual
    assert diff_rows(actual, expected) == ["Rows are equal (ignoring order): 2 rows"]
    assert actual.ordered != expected
    assert diff_rows(actual.ordered, expected)[0].startswith("Rows differ (in order)")


def test_exact_rows_are_compared_by_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtproof.compare import pairing

    def fail(*args: object) -> None:
        raise AssertionError("the pairing of loose rows ran for exact rows")

    monkeypatch.setattr(pairing, "_match_group", fail)
    monkeypatch.setattr(pairing, "_loose_equal", fail)
    n = 20_000
    rows = Rows(["id", "amount"], [(i, Decimal(i) / 100) for i in range(n)])
    expected = [{"id": i, "amount": Decimal(i) / 100} for i in reversed(range(n))]
    assert rows == expected
    expected[0]["amount"] += Decimal("0.001")
    assert rows != expected


def test_float_rows_are_paired_without_trying_every_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtproof.compare import cells

    calls = 0
    numbers_equal = cells._numbers_equal

    def counting(*args: Any) -> bool:
        nonlocal calls
        calls += 1
        return numbers_equal(*args)

    monkeypatch.setattr(cells, "_numbers_equal", counting)
    n = 3_000
    rows = Rows(["v"], [(i * 0.1,) for i in range(n)])  # 0.30000000000000004, ...
    expected = [{"v": Decimal(i) / 10} for i in reversed(range(n))]
    assert rows == expected
    assert calls < 5 * n
    lines = diff_rows(rows, expected[:-1] + [{"v": Decimal("-1")}])
    assert lines[0].endswith("; 1 missing, 1 unexpected")
    assert lines[-1] == "  {v: 0.0}"


def test_membership_uses_the_same_rules() -> None:
    assert {"v": 0.3} in one(0.1 + 0.2)
    assert {"v": Decimal("1.1234")} not in one(Decimal("1.1231"))
    assert Rows(["v"], [(0.1 + 0.2,), (0.3,), (Decimal("0.3"),)]).count({"v": 0.3}) == 3


@pytest.fixture
def trips() -> Rows:
    return Rows(
        ["id", "fare", "ratio"],
        [(1, Decimal("10.004"), Decimal("0.5004")), (2, Decimal("7.50"), Decimal("0.25"))],
    )


TRIPS_EXPECTED = [
    {"id": 1, "fare": Decimal("10.00"), "ratio": Decimal("0.5")},
    {"id": 2, "fare": 7.5, "ratio": 0.25},
]


def test_approx_per_column_and_global(trips: Rows) -> None:
    assert trips != TRIPS_EXPECTED
    assert trips.approx(columns={"fare": {"abs": 0.01}, "ratio": {"rel": 1e-3}}) == TRIPS_EXPECTED
    assert trips.approx(columns={"fare": {"abs": 0.01}}) != TRIPS_EXPECTED  # ratio exact
    assert trips.approx(rel=1e-3, columns={"fare": {"abs": 0.01}}) == TRIPS_EXPECTED
    assert trips.approx(rel=1e-9, columns={"fare": {"abs": 0.01}}) != TRIPS_EXPECTED
    assert trips.approx(abs=0.01) == TRIPS_EXPECTED
    assert trips.approx(abs=0.01, columns={"ratio": {"abs": 0}}) != TRIPS_EXPECTED  # overrides
    assert trips.approx(columns={"FARE": {"abs": 0.01}, "Ratio": True}) != TRIPS_EXPECTED
    assert trips.approx(columns={"FARE": {"abs": 0.01}, "Ratio": {"rel": 1e-3}}) == TRIPS_EXPECTED
    assert TRIPS_EXPECTED == trips.approx(abs=0.01)  # noqa: SIM300
    assert trips.approx(abs=0.01) == Rows.from_dicts(TRIPS_EXPECTED)
    assert Rows.from_dicts(TRIPS_EXPECTED) == trips.approx(abs=0.01)
    assert trips.approx(columns={}) != TRIPS_EXPECTED  # names no column: nothing approximate


def test_approx_has_the_meaning_of_pytest_approx() -> None:
    assert one(100.0).approx() == [{"v": 100.00001}]  # rel 1e-6 of 100
    assert one(100.0).approx() != [{"v": 100.001}]
    assert one(100.0).approx(rel=1e-3) == [{"v": 100.05}]
    assert one(100.0).approx(abs=0.5) == [{"v": 100.5}]  # the edge is in, exactly
    assert one(100.0).approx(abs=0.5) != [{"v": 100.50001}]
    assert one(Decimal("1.0")).approx(abs=0.3) == [{"v": Decimal("1.3")}]  # 0.3 as written
    # abs alone leaves the relative part out (rel 1e-6 of 1e6 would allow 1)
    assert one(Decimal(10**6)).approx() == [{"v": Decimal("1000000.5")}]
    assert one(Decimal(10**6)).approx(abs=Decimal("0.1")) != [{"v": Decimal("1000000.5")}]
    # rel alone keeps abs 1e-12
    assert one(0).approx(rel=1e-3) == [{"v": 1e-13}]
    assert one(0).approx(rel=1e-3) != [{"v": 1e-11}]
    # relative to the expected side, whichever side of == the view is on
    assert 111 != pytest.approx(100, rel=0.1) and 100 == pytest.approx(111, rel=0.1)  # noqa: SIM300
    assert one(111).approx(rel=0.1) != [{"v": 100}]
    assert one(100).approx(rel=0.1) == [{"v": 111}]
    assert [{"v": 100}] != one(111).approx(rel=0.1)  # noqa: SIM300
    assert one(100) != one(111).approx(rel=0.1)
    assert one(111) == one(100).approx(rel=0.1)
    # infinities equal only themselves; NaN still equals NaN
    assert one(float("inf")).approx(rel=0.5) != [{"v": 1e308}]
    assert one(1e308).approx(rel=0.5) != [{"v": float("inf")}]
    assert one(float("nan")).approx() == [{"v": float("nan")}]
    # a tolerance only adds: what a float's tolerance makes equal stays equal
    assert one(0.1 + 0.2).approx(abs=0) == [{"v": 0.3}]
    # it reaches into lists and dicts, not strings or bools
    assert one([1.0, {"a": 2}]).approx(abs=0.1) == [{"v": [1.05, {"a": 2.05}]}]
    assert one("1.0").approx(abs=1) != [{"v": "1.05"}]
    assert one(True).approx(abs=1) != [{"v": 1}]


def test_approx_combines_with_ordered(trips: Rows) -> None:
    spec = {"abs": 0.01}
    reverse = TRIPS_EXPECTED[::-1]
    assert trips.approx(**spec).ordered == TRIPS_EXPECTED
    assert trips.ordered.approx(**spec) == TRIPS_EXPECTED
    assert trips.approx(**spec).ordered != reverse
    assert trips.ordered.approx(**spec) != reverse
    assert trips.approx(**spec) == reverse
    assert trips.ordered != TRIPS_EXPECTED
    assert isinstance(trips.approx().ordered, OrderedRows)
    assert isinstance(trips.ordered.approx(), OrderedRows)
    assert isinstance(trips.approx(), RowsView)
    assert not isinstance(trips.approx(), OrderedRows)
    assert trips.approx(**spec) != Rows.from_dicts(reverse).ordered  # order from the other side
    assert trips.approx(**spec) == Rows.from_dicts(TRIPS_EXPECTED).ordered
    assert trips.ordered.approx(abs=0) != TRIPS_EXPECTED  # replaces the tolerance
    assert len(trips.approx()) == 2


def test_approx_repr(trips: Rows) -> None:
    assert repr(trips.approx()).splitlines()[0] == "<Rows.approx(): 2 rows, 3 columns>"
    view = trips.approx(rel=1e-3, columns={"fare": {"abs": 0.01}}).ordered
    assert repr(view).splitlines()[0] == (
        "<Rows.approx(rel=0.001, columns={'fare': {'abs': 0.01}}).ordered: 2 rows, 3 columns>"
    )
    assert repr(view.rows) == repr(trips)


def test_approx_checks_its_arguments(trips: Rows) -> None:
    with pytest.raises(ComparisonSpecError, match=r"approx 'rel' must be .* -1 is negative"):
        trips.approx(rel=-1)
    with pytest.raises(
        ComparisonSpecError,
        match=r"approx names column 'fair' that the rows do not have; "
        r"the rows have 'id', 'fare', 'ratio'",
    ):
        trips.approx(columns={"fair": {"abs": 1}})
    with pytest.raises(ComparisonSpecError, match=r"column 'fare' has unknown key\(s\) 'tol'"):
        trips.approx(columns={"fare": {"tol": 1}})
    with pytest.raises(ComparisonSpecError, match="both sides of == ask for a tolerance"):
        _ = trips.approx() == trips.approx(abs=1)


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        (True, {}),
        ({}, {}),
        ({"rel": None}, {}),
        ({"rel": 1e-6}, {"rel": 1e-6}),
        ({"rel": 1e-6, "abs": Decimal("0.01")}, {"rel": 1e-6, "abs": Decimal("0.01")}),
        (
            {"fare": {"abs": 0.01}, "ratio": {"rel": 1e-3}},
            {"columns": {"fare": {"abs": 0.01}, "ratio": {"rel": 1e-3}}},
        ),
        ({"rel": 1e-9, "fare": {"abs": 0.01}}, {"rel": 1e-9, "columns": {"fare": {"abs": 0.01}}}),
        ({"fare": True, "ratio": {}}, {"columns": {"fare": {}, "ratio": {}}}),
        ({"columns": {"fare": {"abs": 1}}}, {"columns": {"fare": {"abs": 1}}}),
        ({"columns": {"rel": {"abs": 1}}}, {"columns": {"rel": {"abs": 1}}}),  # a column 'rel'
        ({"rel": {"abs": 1}}, {"columns": {"rel": {"abs": 1}}}),
        ({"columns": {"abs": 1}}, {"columns": {"columns": {"abs": 1}}}),  # a column 'columns'
    ],
)
def test_approx_spec_normalises_approx_arguments(value: Any, spec: dict[str, Any]) -> None:
    assert approx_spec(value) == spec
    assert approx_spec(spec) == spec
    assert dbtproof.compare.approx.approx_spec is approx_spec


def test_rows_approx_applies_an_approx_spec(trips: Rows) -> None:
    value = {"rel": 1e-3, "fare": {"abs": 0.01}}
    assert trips.approx(**approx_spec(value)) == TRIPS_EXPECTED
    assert trips.ordered.approx(**approx_spec(value)) == TRIPS_EXPECTED
    assert trips.ordered.approx(**approx_spec(value)) != TRIPS_EXPECTED[::-1]
    assert trips.approx(**approx_spec({"fare": {"abs": 0.01}})) != TRIPS_EXPECTED
    assert trips.approx(**approx_spec(True)) != TRIPS_EXPECTED  # rel 1e-6 is not enough
    assert trips.approx(**approx_spec({"abs": 0.01})) == TRIPS_EXPECTED


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"approx= takes True, .*, not None \(a NoneType\)"),
        (False, r"not False \(a bool\)"),
        (0.01, r"say which tolerance it is, e.g. \{'rel': 0.01\} or \{'abs': 0.01\}"),
        ("0.01", r"not '0.01' \(a str\)"),
        ({"rel": -1e-3}, r"approx 'rel' must be a finite number >= 0 .*, but -0.001 is negative"),
        ({"abs": "0.01"}, r"approx 'abs' must be .* but '0.01' is a str"),
        ({"rel": True}, "but True is a bool"),
        ({"abs": float("nan")}, "but nan is not finite"),
        ({"rel": Decimal("Infinity")}, "is not finite"),
        ({"fare": {"abs": 0.01, "tol": 1}}, r"column 'fare' has unknown key\(s\) 'tol'.*'rel'"),
        ({"fare": 0.01}, r"approx for column 'fare' must be a dict like .* not 0.01"),
        ({"rell": 0.01}, r"column 'rell' must be a dict .* every column .* 'rel' and 'abs'"),
        ({"fare": {"rel": -1}}, r"approx for column 'fare': 'rel' must be .* -1 is negative"),
        ({1: {"abs": 1}}, r"approx columns are named by strings, not 1 \(a int\)"),
        ({"fare": {"abs": 1}, "columns": {"fare": {"rel": 1}}}, "names column 'fare' twice"),
    ],
)
def test_approx_spec_errors_are_clear(value: Any, message: str) -> None:
    with pytest.raises(ComparisonSpecError, match=message) as info:
        approx_spec(value)
    assert isinstance(info.value, DbtproofError)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("dbtproof: ")


def test_the_cell_and_pairing_building_blocks() -> None:
    from dbtproof.compare.cells import Tolerance, cell_key, cells_equal
    from dbtproof.compare.pairing import match_columns

    assert cell_key(Decimal("1.10")) == cell_key(Decimal("1.1")) == ("num", Decimal("1.1"))
    assert cell_key(Decimal("0.1")) != cell_key(0.1)  # exact values differ ...
    assert cells_equal(cell_key(Decimal("0.1")), cell_key(0.1))  # ... within the float rule
    assert not cells_equal(cell_key(Decimal("1.1231")), cell_key(Decimal("1.1234")))
    assert cells_equal(cell_key(100), cell_key(101), Tolerance(abs=1))
    assert Tolerance(rel=0.1).allows(100, 111) and not Tolerance(rel=0.1).allows(111, 100)
    assert Tolerance().allows(1, 1 + Fraction(1, 10**7))
    assert Tolerance(abs=0.3).allows(Decimal("1.3"), 1)  # 0.3 is taken as written
    assert not Tolerance(abs=1).allows(float("nan"), float("nan"))  # as pytest.approx
    assert Tolerance(rel=1e-3) == Tolerance(rel=Decimal("0.001"))
    assert repr(Tolerance(abs=0.01)) == "Tolerance(abs=0.01)"
    assert match_columns(["a", "B", "c"], ["b", "A", "a"]) == ([(0, 2), (1, 0)], [2], [1])
    assert match_columns(["Id", "ID"], ["id"]) == ([], [0, 1], [0])


# -- properties ---------------------------------------------------------------

#: Property tests build their own data; a loaded CI machine must not fail them for slowness.
PROPERTIES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

EXACT_NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20),
    st.decimals(
        min_value=-(10**15), max_value=10**15, allow_nan=False, allow_infinity=False, places=6
    ),
    st.decimals(min_value=-1, max_value=1, allow_nan=False, allow_infinity=False),
)
TINY_STEPS = st.sampled_from(
    [Decimal(0), Decimal("1e-30"), Decimal("-1e-18"), Decimal("1e-12"), Decimal("0.01"), 1]
)


@settings(PROPERTIES, max_examples=200)
@given(st.lists(st.tuples(EXACT_NUMBERS, TINY_STEPS), min_size=1, max_size=6), st.randoms())
def test_exact_numbers_are_equal_iff_their_values_are(
    items: list[tuple[Any, Any]], random: Any
) -> None:
    """Ints and Decimals, with a float nowhere: equal exactly when the values are equal."""
    values = [value for value, _ in items]
    moved = [value + step for value, step in items]
    random.shuffle(moved)
    same = sorted(values) == sorted(moved)
    rows = Rows(["v"], [(v,) for v in values])
    assert (rows == [{"v": v} for v in moved]) is same
    assert (rows == Rows(["v"], [(v,) for v in moved])) is same
    assert (Rows(["v"], [(v,) for v in moved]) == rows) is same
    assert one(values[0]) == [{"v": Decimal(values[0])}]


CELLS = st.one_of(
    st.sampled_from(
        [
            1,
            Decimal("1.0"),
            1.0,
            1.0 + 8e-13,
            1.0 - 8e-13,
            Decimal("1.0000000000008"),
            Decimal("1.1231"),
            Decimal("1.1234"),
            0.1 + 0.2,
            0.3,
            Decimal("0.3"),
            None,
            "a",
            "A",
            date(2024, 1, 2),
            "2024-01-02",
            True,
            float("nan"),
        ]
    ),
    st.floats(allow_nan=False, min_value=-10, max_value=10),
)
NAMES = st.lists(st.sampled_from(["id", "ID", "v", "w"]), min_size=1, max_size=3, unique=True)


@st.composite
def rows_pairs(draw: Any) -> tuple[Rows, Rows]:
    """Two Rows, often alike: the same columns (or not), the same cells (or close ones)."""
    left_names = draw(NAMES)
    right_names = draw(st.one_of(st.just(left_names), NAMES, st.permutations(left_names)))
    n = draw(st.integers(0, 4))
    left = [[draw(CELLS) for _ in left_names] for _ in range(n)]
    if draw(st.booleans()) and right_names == left_names:
        right = [list(row) for row in draw(st.permutations(left))]
        for row in right:
            for i in range(len(row)):
                if draw(st.integers(0, 4)) == 0:
                    row[i] = draw(CELLS)
    else:
        right = [[draw(CELLS) for _ in right_names] for _ in range(draw(st.integers(0, 4)))]
    return Rows(left_names, left), Rows(right_names, right)


@settings(PROPERTIES, max_examples=250)
@given(rows_pairs())
def test_rows_equality_is_symmetric(pair: tuple[Rows, Rows]) -> None:
    a, b = pair
    assert (a == b) is (b == a)
    assert (a != b) is (b != a) is (not a == b)  # noqa: SIM201
    assert (a.ordered == b) is (b == a.ordered) is (b.ordered == a) is (a == b.ordered)
    assert (a.approx(abs=0.5) == b) is (b == a.approx(abs=0.5))
    assert (a.ordered.approx(abs=0.5) == b) is (b == a.approx(abs=0.5).ordered)
    assert (a == list(b)) is (list(b) == a)
    if a == b:
        assert diff_rows(a, b)[0].startswith("Rows are equal")
        assert a.approx(abs=0.5) == b  # a tolerance only adds
    else:
        assert diff_rows(a, b)[0].startswith("Rows differ")


@pytest.mark.parametrize("pairwise_limit", [0, 256])
@settings(PROPERTIES, max_examples=150)
@given(
    st.lists(st.tuples(CELLS, st.sampled_from(["x", "y"])), max_size=5),
    st.lists(st.tuples(CELLS, st.sampled_from(["x", "y"])), max_size=5),
)
def test_multiset_equality_is_a_perfect_pairing(
    pairwise_limit: int, left: list[tuple[Any, str]], right: list[tuple[Any, str]]
) -> None:
    """Equal as multisets exactly when some one-to-one pairing pairs equal rows only."""
    from itertools import permutations

    from dbtproof.compare import cells, pairing

    a, b = Rows(["v", "k"], left), Rows(["v", "k"], right)
    keys_a = [tuple(cells.cell_key(v) for v in row) for row in left]
    keys_b = [tuple(cells.cell_key(v) for v in row) for row in right]
    pairable = len(left) == len(right) and any(
        all(cells.rows_equal(x, y) for x, y in zip(keys_a, order, strict=True))
        for order in permutations(keys_b)
    )
    original = pairing._PAIRWISE_LIMIT
    pairing._PAIRWISE_LIMIT = pairwise_limit  # 0: always the sorted-window search
    try:
        assert (a == b) is pairable
        missing, unexpected = pairing.unmatched_rows(keys_a, keys_b, [None, None])
    finally:
        pairing._PAIRWISE_LIMIT = original
    assert len(missing) == len(unexpected) + len(right) - len(left)
    assert (not missing and not unexpected) is pairable


FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
TOLERANCE = st.one_of(st.none(), st.sampled_from([0, 1e-9, 1e-6, 1e-3, 0.1, 1.0]))


@settings(PROPERTIES, max_examples=300)
@given(FINITE, FINITE, st.integers(0, 3), TOLERANCE, TOLERANCE)
def test_approx_agrees_with_pytest_approx(
    expected: float, actual: float, near: int, rel: float | None, abs_: float | None
) -> None:
    if near:  # bring the numbers close, where tolerances matter
        actual = expected * (1 + (actual % 1) * 10.0 ** -(3 * near))
    bound = max(
        (1e-6 if rel is None else rel) * abs(expected) if rel is not None or abs_ is None else 0,
        1e-12 if abs_ is None else abs_,
    )
    distance = abs(actual - expected)
    assume(abs(distance - bound) > 1e-9 * bound + 1e-300)
    float_rule = math.isclose(actual, expected, rel_tol=1e-12)
    assume(abs(distance - 1e-12 * max(abs(actual), abs(expected))) > 1e-9 * distance + 1e-300)
    want = actual == pytest.approx(expected, rel=rel, abs=abs_) or float_rule
    assert (one(actual).approx(rel=rel, abs=abs_) == [{"v": expected}]) is want
    assert (one(actual).approx(columns={"v": {"rel": rel, "abs": abs_}}) == one(expected)) is want


@settings(PROPERTIES, max_examples=300)
@given(st.one_of(CELLS, EXACT_NUMBERS), st.one_of(CELLS, EXACT_NUMBERS), TOLERANCE)
def test_the_diff_shows_a_cell_exactly_when_it_differs(
    actual: Any, expected: Any, rel: Any
) -> None:
    rows = Rows(["k", "v"], [("key", actual)])
    view = rows if rel is None else rows.approx(rel=rel)
    lines = diff_rows(view, [{"k": "key", "v": expected}])
    if view == [{"k": "key", "v": expected}]:
        assert lines[0].startswith("Rows are equal")
    else:
        # A diff shortens long values (MAX_VALUE_WIDTH) as it shows them.
        want, got = _short_repr(expected, MAX_VALUE_WIDTH), _short_repr(actual, MAX_VALUE_WIDTH)
        assert lines[1:4] == [
            "Changed rows (1):",
            f"  {{k: 'key', v: {want}}}",
            f"      v: expected {want}, got {got}",
        ]


def test_the_diff_agrees_with_the_numeric_rules() -> None:
    rows = Rows(
        ["id", "name", "amount", "ratio"],
        [
            (1, "a", Decimal("1234567890123.45"), 0.1 + 0.2),
            (2, "b", Decimal("123456789.1231"), 1.0),
            (3, "c", Decimal("5.00"), 2.0),
        ],
    )
    expected = [
        {"id": 1, "name": "a", "amount": Decimal("1234567890123.46"), "ratio": Decimal("0.3")},
        {"id": 2, "name": "b", "amount": Decimal("123456789.1234"), "ratio": 1.000000001},
        {"id": 3, "name": "c", "amount": 5, "ratio": 2},
    ]
    assert diff_rows(rows, expected) == [
        "Rows differ (ignoring order): got 3 rows, expected 3 rows; 2 changed",
        "Changed rows (2):",
        "  {id: 1, name: 'a', amount: Decimal('1234567890123.46'), ratio: Decimal('0.3')}",
        "      amount: expected Decimal('1234567890123.46'), got Decimal('1234567890123.45')",
        "  {id: 2, name: 'b', amount: Decimal('123456789.1234'), ratio: 1.000000001}",
        "      amount: expected Decimal('123456789.1234'), got Decimal('123456789.1231')",
        "      ratio: expected 1.000000001, got 1.0",
    ]
    view = rows.approx(columns={"amount": {"abs": Decimal("0.01")}})
    assert diff_rows(view, expected) == [
        "Rows differ (ignoring order, approx(columns={'amount': {'abs': Decimal('0.01')}})): "
        "got 3 rows, expected 3 rows; 1 changed",
        "Changed rows (1):",
        "  {id: 2, name: 'b', amount: Decimal('123456789.1234'), ratio: 1.000000001}",
        "      ratio: expected 1.000000001, got 1.0",
    ]
    assert diff_rows(rows.approx(abs=0.01), expected)[0] == (
        "Rows are equal (ignoring order, approx(abs=0.01)): 3 rows"
    )
    assert explain_comparison("==", expected, view) == diff_rows(view, expected)
    assert explain_comparison("==", Rows.from_dicts(expected), view) == diff_rows(
        view, Rows.from_dicts(expected)
    )


def test_the_diff_of_rows_with_other_columns(orders: Rows) -> None:
    other = Rows(
        ["order_id", "customer", "status", "amount", "note"],
        [(i, c, s, a, None) for i, c, s, a, _ in orders._data],
    )
    assert diff_rows(orders, other) == [
        "Rows differ (ignoring order): got 4 rows, expected 4 rows; missing column, extra column",
        "Missing column: expected names 'note', but the rows have only "
        "'order_id', 'customer', 'status', 'amount', 'loaded_at'",
        "Extra column: the rows have 'loaded_at', which the expected Rows lack (Rows compare "
        "on every column; compare with a list of dicts to check only some)",
        "On the other columns (order_id, customer, status, amount) the rows match.",
    ]
    assert orders != other and other != orders
    assert explain_comparison("==", other, orders)[0] == diff_rows(other, orders)[0]


def test_column_names_pair_up_symmetrically() -> None:
    assert Rows(["Id", "ID"], [(1, 2)]) == [{"ID": 2, "id": 1}]  # 'id' pairs with the one left
    assert Rows(["ID", "x"], [(1, 2)]) != [{"ID": 1, "id": 1}]  # two names for one column
    assert Rows(["ID", "x"], [(1, 2)]) == Rows(["X", "id"], [(2, 1)])
    assert Rows(["ID", "Id"], [(1, 2)]) != Rows(["id"], [(1,)])


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
        from dbtproof.compare.diff import explain_comparison

        def pytest_assertrepr_compare(op, left, right):
            return explain_comparison(op, left, right)
        """
    )
    pytester.makepyfile(
        """
        from dbtproof.compare.rows import Rows

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
        "import dbtproof.compare.rows, sys; "
        "assert not any(m == 'dbt' or m.startswith('dbt.') for m in sys.modules), 'dbt'; "
        "assert 'pandas' not in sys.modules, 'pandas'; "
        "assert 'pyarrow' not in sys.modules, 'pyarrow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
