"""The row diff: how actual rows differ from expected rows, line by line.

:func:`diff_rows` explains a failed comparison of :class:`~dbtproof.compare.rows.Rows` (or a
view of them) with expected rows; :func:`explain_comparison` is what the dbtproof
pytest plugin shows after a failed ``assert rows == expected``. Both read the same
:class:`~dbtproof.compare.rows.Comparison` that ``==`` decides with, so the verdict is always
that of ``==`` and a cell is shown as differing exactly when it compares unequal.

This module does not import dbt, pandas or pyarrow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbtproof.compare.rows import (
    MAX_VALUE_WIDTH,
    Comparison,
    Rows,
    RowsView,
    _join_names,
    _plural,
    _plural_word,
    _short_repr,
)

__all__ = ["MAX_DIFF_ROWS", "diff_rows", "explain_comparison"]

#: Rows shown per section of a diff before "... and N more".
MAX_DIFF_ROWS = 20
#: Missing and unexpected rows considered (per side) when pairing them as changed rows.
MAX_PAIRING_ROWS = 250


def diff_rows(actual: Rows | RowsView, expected: Any, ordered: bool = False) -> list[str]:
    """Explain, line by line, how *actual* differs from *expected*.

    *expected* is a list of dicts, a :class:`Rows` or a view of one; a view (such as
    ``rows.ordered`` or ``rows.approx(...)``) on either side brings its order and its
    tolerance, as it does for ``==``, and ``ordered=True`` also compares in order.
    The verdict is always that of ``==``, and a cell is shown as differing exactly
    when it compares unequal.

    The first line sums up the difference (this is what pytest prints after
    ``assert``). Then come: columns that one side has and the other lacks; for an
    ordered comparison, the first position where the rows differ; then, comparing as
    multisets, the **changed** rows (a missing and an unexpected row that agree on at
    least half the compared columns, with each differing cell as ``column: expected
    X, got Y``), the **missing** rows (expected but not found) and the
    **unexpected** rows (found but not expected), each section capped at
    :data:`MAX_DIFF_ROWS` rows. Rows are written ``{column: value, ...}`` with the
    ``repr`` of each value. Missing and unexpected rows are what is left of a largest
    one-to-one pairing of equal rows.

    If the rows are equal, the single line says so.

    :raises TypeError: if *actual* is not rows or *expected* is not a list or rows.
    :raises ValueError: if *expected* is a list whose items are not all dicts naming
        the same columns.
    :raises ComparisonSpecError: if both sides carry a tolerance.
    """
    if not isinstance(actual, (Rows, RowsView)):
        raise TypeError(f"diff_rows() compares Rows, not {type(actual).__name__}")
    cmp = Comparison.between(actual, expected, ordered)
    if cmp is None:
        raise TypeError(
            f"diff_rows() compares with a list of dicts or Rows, not {type(expected).__name__}"
        )
    mode = _mode(cmp)
    if cmp.equal():
        return [f"Rows are equal ({mode}): {_plural(len(cmp.actual), 'row')}"]

    rows = _row_differences(cmp)
    lines = [_summary(cmp, mode, rows)]
    lines.extend(_column_lines(cmp))
    if cmp.ordered:
        lines.extend(_first_difference(cmp))
        if rows.any:
            lines.append("Ignoring order:")
    lines.extend(_row_sections(cmp, rows))
    lines.extend(_not_compared(cmp))
    return lines


def explain_comparison(op: str, left: object, right: object) -> list[str] | None:
    """The lines explaining a failed ``left == right`` between rows and expected rows.

    This is what the dbtproof plugin's ``pytest_assertrepr_compare`` hook returns. It
    applies when *op* is ``"=="`` and one side is a :class:`Rows` or a view of one
    (``rows.ordered``, ``rows.approx(...)``) and the other a list or rows. The
    expected side is the right one, unless only the left one is a list or only the
    right one is a view, in which case the sides are swapped, as Python's ``==``
    does. Otherwise, or when the expected side is malformed, it returns None so
    pytest explains as usual.
    """
    if op != "==":
        return None
    comparable = (list, tuple, Rows, RowsView)
    if isinstance(left, (Rows, RowsView)) and isinstance(right, comparable):
        actual, expected = left, right
        if isinstance(right, RowsView) and not isinstance(left, RowsView):
            actual, expected = right, left
    elif isinstance(right, (Rows, RowsView)) and isinstance(left, comparable):
        actual, expected = right, left
    else:
        return None
    try:
        return diff_rows(actual, expected)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Which rows differ
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowDifferences:
    """The rows that differ, comparing as multisets (indexes into each side)."""

    #: (expected index, actual index, positions in ``cmp.pairs`` of the differing cells)
    #: of a missing and an unexpected row shown as one changed row, in expected order.
    changed: list[tuple[int, int, list[int]]]
    #: Expected rows not found (and not shown as changed).
    missing: list[int]
    #: Actual rows not expected (and not shown as changed).
    unexpected: list[int]

    @property
    def any(self) -> bool:
        """Whether some row differs (else only the order or the columns do)."""
        return bool(self.changed or self.missing or self.unexpected)


def _row_differences(cmp: Comparison) -> _RowDifferences:
    """What is left of a largest pairing of equal rows, near misses paired as changed rows."""
    missing, unexpected = cmp.unmatched()
    changed = _pair_changed(cmp, missing, unexpected)
    paired_e = {e for e, _, _ in changed}
    paired_a = {a for _, a, _ in changed}
    return _RowDifferences(
        changed,
        [e for e in missing if e not in paired_e],
        [a for a in unexpected if a not in paired_a],
    )


def _pair_changed(
    cmp: Comparison, missing: list[int], unexpected: list[int]
) -> list[tuple[int, int, list[int]]]:
    """Pair missing with unexpected rows that agree on at least half the compared columns.

    Greedy, most agreeing cells first. Returns (expected index, actual index,
    positions in ``cmp.pairs`` of the differing cells), in expected order.
    """
    width = len(cmp.pairs)
    if not width:
        return []
    candidates = []
    for mi, e in enumerate(missing[:MAX_PAIRING_ROWS]):
        for ui, a in enumerate(unexpected[:MAX_PAIRING_ROWS]):
            score = width - len(cmp.differing(e, a))
            if 2 * score >= width:
                candidates.append((-score, mi, ui))
    candidates.sort()
    used_m: set[int] = set()
    used_u: set[int] = set()
    changed = []
    for _, mi, ui in candidates:
        if mi in used_m or ui in used_u:
            continue
        used_m.add(mi)
        used_u.add(ui)
        e, a = missing[mi], unexpected[ui]
        changed.append((e, a, cmp.differing(e, a)))
    changed.sort()
    return changed


# ---------------------------------------------------------------------------
# The parts of a diff, in the order they are shown
# ---------------------------------------------------------------------------


def _mode(cmp: Comparison) -> str:
    """How the rows were compared: ``in order`` or ``ignoring order``, and any tolerance."""
    mode = "in order" if cmp.ordered else "ignoring order"
    if cmp.approx is not None:
        mode += f", {cmp.approx!r}"
    return mode


def _summary(cmp: Comparison, mode: str, rows: _RowDifferences) -> str:
    """The first line: the row counts and what differs (what pytest prints after assert)."""
    parts = []
    if cmp.missing_columns:
        parts.append(f"missing {_plural_word(len(cmp.missing_columns), 'column')}")
    if cmp.extra_columns:
        parts.append(f"extra {_plural_word(len(cmp.extra_columns), 'column')}")
    if rows.changed:
        parts.append(f"{len(rows.changed)} changed")
    if rows.missing:
        parts.append(f"{len(rows.missing)} missing")
    if rows.unexpected:
        parts.append(f"{len(rows.unexpected)} unexpected")
    columns_differ = bool(cmp.missing_columns or cmp.extra_columns)
    if cmp.ordered and not rows.any and not columns_differ:
        parts.append("same rows in a different order")
    n_actual, n_expected = len(cmp.actual), len(cmp.expected.data)
    return (
        f"Rows differ ({mode}): got {_plural(n_actual, 'row')}, expected "
        f"{_plural(n_expected, 'row')}" + (f"; {', '.join(parts)}" if parts else "")
    )


def _column_lines(cmp: Comparison) -> list[str]:
    """Columns one side has and the other lacks, and whether the rest of the rows match."""
    lines = []
    if cmp.missing_columns:
        have = _join_names(cmp.actual.columns) if cmp.actual.columns else "no columns"
        lines.append(
            f"Missing {_plural_word(len(cmp.missing_columns), 'column')}: expected names "
            f"{_join_names(cmp.missing_columns)}, but the rows have only {have}"
        )
    if cmp.extra_columns:
        lines.append(
            f"Extra {_plural_word(len(cmp.extra_columns), 'column')}: the rows have "
            f"{_join_names(cmp.extra_columns)}, which the expected Rows lack (Rows compare "
            "on every column; compare with a list of dicts to check only some)"
        )
    columns_differ = bool(cmp.missing_columns or cmp.extra_columns)
    if columns_differ and cmp.pairs and cmp.same_rows():
        compared = [cmp.expected.columns[e] for e, _ in cmp.pairs]
        lines.append(f"On the other columns ({', '.join(compared)}) the rows match.")
    return lines


def _first_difference(cmp: Comparison) -> list[str]:
    """Lines locating the first position where an ordered comparison differs."""
    n_actual, n_expected = len(cmp.actual_keys), len(cmp.expected_keys)
    common = min(n_actual, n_expected)
    index = next((i for i in range(common) if not cmp.row_equal(i, i)), common)
    if index == common and n_actual == n_expected:
        return []  # only the columns differ
    lines = [f"First difference at row {index}:"]
    if index < n_expected:
        lines.append(f"  expected: {_expected_row(cmp, index)}")
    else:
        lines.append(f"  expected: no more rows (expected has {_plural(n_expected, 'row')})")
    if index < n_actual:
        lines.append(f"  got:      {_actual_row(cmp, index)}")
    else:
        lines.append(f"  got:      no more rows (got {_plural(n_actual, 'row')})")
    if index < common:
        differing = cmp.differing(index, index)
        if 2 * (len(cmp.pairs) - len(differing)) >= len(cmp.pairs):
            lines.extend(_cell_lines(cmp, index, index, differing, "    "))
    return lines


def _row_sections(cmp: Comparison, rows: _RowDifferences) -> list[str]:
    """The changed, missing and unexpected rows, each section capped at MAX_DIFF_ROWS."""
    lines = []
    if rows.changed:
        lines.append(f"Changed rows ({len(rows.changed)}):")
        for e, a, differing in rows.changed[:MAX_DIFF_ROWS]:
            lines.append(f"  {_expected_row(cmp, e)}")
            lines.extend(_cell_lines(cmp, e, a, differing, "      "))
        lines.extend(_more(len(rows.changed)))
    if rows.missing:
        lines.append(f"Missing rows, expected but not found ({len(rows.missing)}):")
        lines.extend(f"  {_expected_row(cmp, e)}" for e in rows.missing[:MAX_DIFF_ROWS])
        lines.extend(_more(len(rows.missing)))
    if rows.unexpected:
        lines.append(f"Unexpected rows, found but not expected ({len(rows.unexpected)}):")
        lines.extend(f"  {_actual_row(cmp, a)}" for a in rows.unexpected[:MAX_DIFF_ROWS])
        lines.extend(_more(len(rows.unexpected)))
    return lines


def _not_compared(cmp: Comparison) -> list[str]:
    """The actual columns a list of dicts did not name (so they were not compared)."""
    if not cmp.expected.columns or cmp.expected.strict:
        return []
    used = {a for _, a in cmp.pairs}
    ignored = [name for i, name in enumerate(cmp.actual.columns) if i not in used]
    if not ignored:
        return []
    return [f"Not compared (not named by expected): {', '.join(ignored)}"]


# ---------------------------------------------------------------------------
# Writing rows and cells
# ---------------------------------------------------------------------------


def _expected_row(cmp: Comparison, index: int) -> str:
    """Expected row *index*, every column: ``{column: value, ...}``."""
    return _format_row(zip(cmp.expected.columns, cmp.expected.data[index], strict=True))


def _actual_row(cmp: Comparison, index: int) -> str:
    """Actual row *index*: the compared columns against a list of dicts, else every column."""
    row = cmp.actual_data[index]
    names = cmp.actual.columns
    if cmp.pairs and not cmp.expected.strict:
        return _format_row((names[a], row[a]) for _, a in cmp.pairs)
    return _format_row(zip(names, row, strict=True))


def _cell_lines(cmp: Comparison, e: int, a: int, differing: list[int], indent: str) -> list[str]:
    """``column: expected X, got Y`` for each differing cell of expected row *e*, actual *a*."""
    lines = []
    for k in differing:
        ecol, acol = cmp.pairs[k]
        name = cmp.expected.columns[ecol]
        want = _short_repr(cmp.expected.data[e][ecol], MAX_VALUE_WIDTH)
        got = _short_repr(cmp.actual_data[a][acol], MAX_VALUE_WIDTH)
        lines.append(f"{indent}{name}: expected {want}, got {got}")
    return lines


def _format_row(cells: Iterable[tuple[str, Any]]) -> str:
    inner = ", ".join(f"{name}: {_short_repr(value, MAX_VALUE_WIDTH)}" for name, value in cells)
    return "{" + inner + "}"


def _more(total: int) -> list[str]:
    return [f"  ... and {total - MAX_DIFF_ROWS} more"] if total > MAX_DIFF_ROWS else []
