"""Which column goes with which, and which row goes with which, under the cell policy.

:func:`match_columns` pairs the column names of two sides (exactly, then
case-insensitively where that is unambiguous). :func:`rows_match` and
:func:`unmatched_rows` pair rows of cell keys (see :mod:`dbtproof.compare.cells`).

**Row pairing.** With tolerances equality is no longer transitive, so comparing rows as
multisets means finding a one-to-one pairing of the rows in which every pair is equal
(a maximum bipartite matching):

* when no compared cell holds a float and no tolerance applies, rows are compared by
  hashing their keys (a :class:`~collections.Counter`), in O(n);
* otherwise rows are grouped by a hashable *token* (the exact key of each cell that
  cannot be loose, and only the shape of a loose one), so only rows in the same group
  can be equal; within a group, rows with identical keys form one class, candidate
  pairs of classes are found by sorting on a numeric column and looking in a window
  that the tolerance bounds, and a maximum flow between the classes (greedy, then
  augmenting paths) decides. This is O(n log n) unless many distinct rows lie within
  the tolerance of each other.

This module does not import dbt, pandas or pyarrow.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from dbtproof.compare.cells import (
    _FLOAT_REL_F,
    _HUGE,
    _TINY,
    RowKey,
    Tolerance,
    TolNumber,
    _finite,
    _has_float,
    _has_number,
    _loose_equal,
    rows_equal,
)

__all__ = ["match_columns", "rows_match", "unmatched_rows"]


# ---------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------


def match_columns(
    left: Sequence[Any], right: Sequence[Any]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair the column names of two sides: exact matches, then case-insensitive ones.

    A name pairs with the same name on the other side. Of the names left over, two
    pair when they are equal case-insensitively and no other left-over name on either
    side folds to the same. The rule is symmetric. Returns the pairs ``(left index,
    right index)`` in left order and the unpaired indexes of each side.
    """
    right_at = {name: i for i, name in enumerate(right)}
    paired: dict[int, int] = {}
    for i, name in enumerate(left):
        j = right_at.get(name)
        if j is not None:
            paired[i] = j
    taken = set(paired.values())

    def folded(names: Sequence[Any], indexes: Iterable[int]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i in indexes:
            if isinstance(names[i], str):
                groups.setdefault(names[i].casefold(), []).append(i)
        return groups

    left_rest = folded(left, (i for i in range(len(left)) if i not in paired))
    right_rest = folded(right, (j for j in range(len(right)) if j not in taken))
    for fold, lefts in left_rest.items():
        rights = right_rest.get(fold)
        if len(lefts) == 1 and rights is not None and len(rights) == 1:
            paired[lefts[0]] = rights[0]
    taken = set(paired.values())
    pairs = sorted(paired.items())
    return (
        pairs,
        [i for i in range(len(left)) if i not in paired],
        [j for j in range(len(right)) if j not in taken],
    )


# ---------------------------------------------------------------------------
# Rows as multisets
# ---------------------------------------------------------------------------


def rows_match(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    *,
    ordered: bool = False,
    scale_on_actual: bool = False,
) -> bool:
    """Whether rows of keys are equal: in order, or as multisets (a perfect pairing exists).

    *tolerances* has one entry per column. A tolerance is relative to the expected
    value, or to the actual one if *scale_on_actual*.
    """
    if len(actual) != len(expected):
        return False
    if scale_on_actual:
        actual, expected = expected, actual
    if ordered:
        return all(rows_equal(a, e, tolerances) for a, e in zip(actual, expected, strict=True))
    return _unmatched(actual, expected, tolerances, stop_early=True) is not None


def unmatched_rows(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    *,
    scale_on_actual: bool = False,
) -> tuple[list[int], list[int]]:
    """Indexes of the expected rows left unpaired and of the actual rows left unpaired.

    The pairing is a largest one-to-one pairing of equal rows, so the number of
    unpaired rows is the least possible; rows with equal keys are paired first-come.
    """
    if scale_on_actual:
        found = _unmatched(expected, actual, tolerances, stop_early=False)
        assert found is not None
        return found[1], found[0]
    found = _unmatched(actual, expected, tolerances, stop_early=False)
    assert found is not None
    return found


def _unmatched_exact(
    actual: Sequence[RowKey], expected: Sequence[RowKey]
) -> tuple[list[int], list[int]]:
    available = Counter(actual)
    missing = []
    for index, key in enumerate(expected):
        if available[key]:
            available[key] -= 1
        else:
            missing.append(index)
    wanted = Counter(expected)
    unexpected = []
    for index, key in enumerate(actual):
        if wanted[key]:
            wanted[key] -= 1
        else:
            unexpected.append(index)
    return missing, unexpected


def _loose_columns(
    actual: Sequence[RowKey], expected: Sequence[RowKey], tolerances: Sequence[Tolerance | None]
) -> list[bool]:
    """For each column, whether some pair of its cells could be equal without equal keys."""
    loose = []
    for column, tolerance in enumerate(tolerances):
        holds = _has_number if tolerance is not None else _has_float
        loose.append(
            any(holds(row[column]) for row in actual) or any(holds(row[column]) for row in expected)
        )
    return loose


_NUM_TOKEN = ("num?",)


def _token(key: Hashable) -> Hashable:
    """What two keys of a loose column must share to be equal cells: finite numbers blur."""
    if key.__class__ is tuple and key:
        tag = key[0]  # type: ignore[index]
        if tag == "num":
            return _NUM_TOKEN if _finite(key[1]) else key  # type: ignore[index]
        if tag == "seq":
            return ("seq", tuple(_token(item) for item in key[1]))  # type: ignore[index]
        if tag == "map":
            return ("map", frozenset((k, _token(v)) for k, v in key[1]))  # type: ignore[index]
    return key


def _typed(key: Hashable) -> Hashable:
    """*key* with each number marked float or not: keys alike here have the same matches."""
    if key.__class__ is tuple and key:
        tag = key[0]  # type: ignore[index]
        if tag == "num":
            return ("num", key[1], key[1].__class__ is float)  # type: ignore[index]
        if tag == "seq":
            return ("seq", tuple(_typed(item) for item in key[1]))  # type: ignore[index]
        if tag == "map":
            return ("map", frozenset((k, _typed(v)) for k, v in key[1]))  # type: ignore[index]
    return key


def _unmatched(
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    stop_early: bool,
) -> tuple[list[int], list[int]] | None:
    """(missing, unexpected) of a largest pairing; None if *stop_early* and some row is unpaired."""
    loose = _loose_columns(actual, expected, tolerances)
    if not any(loose):
        if stop_early:
            return ([], []) if Counter(actual) == Counter(expected) else None
        return _unmatched_exact(actual, expected)

    groups: dict[Hashable, tuple[list[int], list[int]]] = {}
    every_column = all(loose)
    for side, rows in ((0, actual), (1, expected)):
        for index, row in enumerate(rows):
            if every_column:
                token = tuple(map(_token, row))
            else:
                token = tuple(
                    [_token(key) if blur else key for key, blur in zip(row, loose, strict=True)]
                )
            entry = groups.get(token)
            if entry is None:
                entry = groups[token] = ([], [])
            entry[side].append(index)
    if stop_early and any(len(a) != len(e) for a, e in groups.values()):
        return None

    loose_columns = [column for column, blur in enumerate(loose) if blur]
    missing: list[int] = []
    unexpected: list[int] = []
    for token, (a_indexes, e_indexes) in groups.items():
        if not a_indexes or not e_indexes:
            unexpected.extend(a_indexes)
            missing.extend(e_indexes)
            continue
        if len(a_indexes) == 1 and len(e_indexes) == 1:  # the common case: a shortcut
            a_row, e_row = actual[a_indexes[0]], expected[e_indexes[0]]
            if not all(
                a_row[c] == e_row[c] or _loose_equal(a_row[c], e_row[c], tolerances[c])
                for c in loose_columns
            ):
                if stop_early:
                    return None
                unexpected.extend(a_indexes)
                missing.extend(e_indexes)
            continue
        group_missing, group_unexpected = _match_group(
            token, a_indexes, e_indexes, actual, expected, tolerances, loose_columns
        )
        if stop_early and (group_missing or group_unexpected):
            return None
        missing.extend(group_missing)
        unexpected.extend(group_unexpected)
    missing.sort()
    unexpected.sort()
    return missing, unexpected


def _classes(
    indexes: list[int], rows: Sequence[RowKey], loose_columns: list[int]
) -> list[tuple[RowKey, list[int]]]:
    """Rows of one group with the same typed keys, as (a row key, its row indexes)."""
    classes: dict[Hashable, tuple[RowKey, list[int]]] = {}
    for index in indexes:
        row = rows[index]
        typed = tuple(_typed(row[column]) for column in loose_columns)
        entry = classes.get(typed)
        if entry is None:
            classes[typed] = (row, [index])
        else:
            entry[1].append(index)
    return list(classes.values())


#: Groups with at most this many pairs of classes are compared pair by pair.
_PAIRWISE_LIMIT = 256


def _match_group(
    token: Hashable,
    a_indexes: list[int],
    e_indexes: list[int],
    actual: Sequence[RowKey],
    expected: Sequence[RowKey],
    tolerances: Sequence[Tolerance | None],
    loose_columns: list[int],
) -> tuple[list[int], list[int]]:
    """(missing, unexpected) of a largest pairing within one group of rows."""
    a_classes = _classes(a_indexes, actual, loose_columns)
    e_classes = _classes(e_indexes, expected, loose_columns)

    def equal(i: int, j: int) -> bool:
        a_row, e_row = a_classes[i][0], e_classes[j][0]
        return all(
            a_row[c] == e_row[c] or _loose_equal(a_row[c], e_row[c], tolerances[c])
            for c in loose_columns
        )

    edges = _candidate_edges(token, a_classes, e_classes, tolerances, loose_columns, equal)
    flows = _max_flow([len(ix) for _, ix in a_classes], [len(ix) for _, ix in e_classes], edges)
    a_used = [0] * len(a_classes)
    e_used = [0] * len(e_classes)
    for (i, j), amount in flows.items():
        a_used[i] += amount
        e_used[j] += amount
    unexpected = [ix for (_, ixs), used in zip(a_classes, a_used, strict=True) for ix in ixs[used:]]
    missing = [ix for (_, ixs), used in zip(e_classes, e_used, strict=True) for ix in ixs[used:]]
    return missing, unexpected


def _pivot_float(value: TolNumber) -> float | None:
    """*value* as a float to sort on, or None if that float would not be trustworthy."""
    try:
        number = float(value)
    except OverflowError:
        return None
    magnitude = abs(number)
    if magnitude > _HUGE or (magnitude < _TINY and value != 0):
        return None
    return number


def _window(value: float, tolerance: Tolerance | None) -> float:
    """A bound on ``|x - y|`` for every number y that could equal a number x near *value*."""
    magnitude = abs(value)
    # float rule: |x-y| <= r*max(|x|,|y|) <= r*(|x|+|x-y|)  =>  |x-y| <= r*|x| / (1-r)
    width = _FLOAT_REL_F * magnitude / (1 - _FLOAT_REL_F)
    if tolerance is not None:
        rel = tolerance._rel_f
        if rel >= 0.5:
            return math.inf
        # |x-y| <= max(r*|y|, a) <= r*(|x|+|x-y|) + a  =>  |x-y| <= (r*|x| + a) / (1-r)
        width = max(width, (rel * magnitude + tolerance._abs_f) / (1 - rel))
    # room for the floats' rounding of x, y and of this computation
    return width * (1 + 1e-6) + (magnitude + width) * 1e-15 + _TINY


def _candidate_edges(
    token: Hashable,
    a_classes: list[tuple[RowKey, list[int]]],
    e_classes: list[tuple[RowKey, list[int]]],
    tolerances: Sequence[Tolerance | None],
    loose_columns: list[int],
    equal: Callable[[int, int], bool],
) -> list[list[int]]:
    """For each actual class, the expected classes it equals."""
    n_actual, n_expected = len(a_classes), len(e_classes)
    pivot = next((c for c in loose_columns if token[c] == _NUM_TOKEN), None)  # type: ignore[index]
    if pivot is None or n_actual * n_expected <= _PAIRWISE_LIMIT:
        return [[j for j in range(n_expected) if equal(i, j)] for i in range(n_actual)]
    sortable: list[tuple[float, int]] = []
    elsewhere: list[int] = []
    for j, (row, _) in enumerate(e_classes):
        number = _pivot_float(row[pivot][1])  # type: ignore[index]
        if number is None:
            elsewhere.append(j)
        else:
            sortable.append((number, j))
    sortable.sort()
    numbers_ = [number for number, _ in sortable]
    tolerance = tolerances[pivot]
    edges = []
    for i, (row, _) in enumerate(a_classes):
        number = _pivot_float(row[pivot][1])  # type: ignore[index]
        if number is None:
            candidates: Iterable[int] = range(n_expected)
        else:
            width = _window(number, tolerance)
            low = bisect_left(numbers_, number - width)
            high = bisect_right(numbers_, number + width)
            candidates = [j for _, j in sortable[low:high]] + elsewhere
        edges.append([j for j in candidates if equal(i, j)])
    return edges


def _max_flow(
    a_capacity: list[int], e_capacity: list[int], edges: list[list[int]]
) -> dict[tuple[int, int], int]:
    """A largest pairing of actual with expected rows, by class: flow[(i, j)] = rows paired.

    Class i holds ``a_capacity[i]`` actual rows, class j ``e_capacity[j]`` expected
    rows; ``edges[i]`` lists the j whose rows equal those of i. Greedy first, then
    augmenting paths (Ford-Fulkerson) until none is left, which makes it largest.
    """
    flow: dict[tuple[int, int], int] = {}
    a_left = list(a_capacity)
    e_left = list(e_capacity)
    for i, targets in enumerate(edges):
        for j in targets:
            if not a_left[i]:
                break
            amount = min(a_left[i], e_left[j])
            if amount:
                flow[(i, j)] = flow.get((i, j), 0) + amount
                a_left[i] -= amount
                e_left[j] -= amount
    sources_of: list[list[int]] = [[] for _ in e_capacity]
    for i, targets in enumerate(edges):
        for j in targets:
            sources_of[j].append(i)
    while any(a_left) and any(e_left):
        # Breadth-first from every actual class with rows left, over forward edges and
        # backwards over edges that carry flow, to an expected class with rows left.
        came_from_e: dict[int, int] = {}  # expected class -> the actual class that reached it
        came_from_a: dict[int, int | None] = {i: None for i, left in enumerate(a_left) if left}
        queue = deque(came_from_a)
        end = None
        while queue and end is None:
            i = queue.popleft()
            for j in edges[i]:
                if j in came_from_e:
                    continue
                came_from_e[j] = i
                if e_left[j]:
                    end = j
                    break
                for back in sources_of[j]:
                    if back not in came_from_a and flow.get((back, j), 0) > 0:
                        came_from_a[back] = j
                        queue.append(back)
        if end is None:
            break
        forward: list[tuple[int, int]] = []
        backward: list[tuple[int, int]] = []
        j = end
        while True:
            i = came_from_e[j]
            forward.append((i, j))
            previous = came_from_a[i]
            if previous is None:
                break
            backward.append((i, previous))
            j = previous
        amount = min([a_left[i], e_left[end]] + [flow[edge] for edge in backward])
        for edge in forward:
            flow[edge] = flow.get(edge, 0) + amount
        for edge in backward:
            flow[edge] -= amount
        a_left[i] -= amount
        e_left[end] -= amount
    return {edge: amount for edge, amount in flow.items() if amount}
