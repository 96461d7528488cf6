"""How the run-level build splits over xdist workers: a trunk first, then unconnected groups.

dbt builds a node after its parents, so two processes may build at the same time only
nodes with no path between them. :func:`split_build` takes the nodes a build needs and
each one's parents among them, and looks for a *trunk* (every node at most some depth
from the roots: the seeds, the models reading only sources) after whose build the rest
falls apart into unconnected parts (weakly connected components). The parts are dealt
into one group per worker, the largest first into the smallest group; each group is then
built by one worker while the others build theirs.

Of every depth it picks the one whose longest path of work (the trunk, then the largest
group) is shortest, counted in nodes; when that is not clearly shorter than building
everything in one place (:data:`GAIN`), or there are not two groups, nothing is split:
the trunk is the whole build. A chain of models never splits; a project whose marts read
each other's staging models splits only past them.

This module does not import dbt: the caller gives the graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: A split is worth its extra dbt invocations only if its longest path is at most this
#: share of the whole build's nodes.
GAIN = 0.8
#: Nor if it saves fewer nodes than this (each group is one more dbt invocation).
MIN_SAVED = 4


@dataclass(frozen=True)
class BuildSplit:
    """The nodes built first (by one worker), then the groups built side by side."""

    trunk: list[str]
    #: No two groups share a node or an edge; empty: no split.
    groups: list[list[str]] = field(default_factory=list)


def split_build(
    nodes: Sequence[str], parents: Mapping[str, Iterable[str]], workers: int
) -> BuildSplit:
    """Split the build of *nodes* (in dbt's order of the caller's choice) over *workers*.

    *parents* gives each node's parents among *nodes* (others are ignored: the caller
    passes what a node reaches through nodes it does not build). Every node of *nodes* is
    in the trunk or in exactly one group, each group in the order of *nodes*.
    """
    order = list(dict.fromkeys(nodes))
    whole = BuildSplit(order)
    if workers < 2 or len(order) < 2:
        return whole
    inside = set(order)
    ups = {uid: {p for p in parents.get(uid, ()) if p in inside and p != uid} for uid in order}
    children: dict[str, list[str]] = {uid: [] for uid in order}
    for uid in order:
        for parent in ups[uid]:
            children[parent].append(uid)
    depth = _depths(order, ups, children)
    if depth is None:  # a cycle: dbt's graph has none, but nothing is split on a guess
        return whole
    by_depth: dict[int, list[str]] = {}
    for uid in order:
        by_depth.setdefault(depth[uid], []).append(uid)
    # From the deepest nodes up: the rest past depth L is the rest past L + 1 and the nodes
    # at depth L + 1, joined to their children (deeper, so already in).
    root = {}
    size: dict[str, int] = {}

    def find(uid: str) -> str:
        while root[uid] != uid:
            root[uid] = root[root[uid]]
            uid = root[uid]
        return uid

    best: tuple[int, int] | None = None  # (longest path, depth of the trunk)
    trunk_size = len(order)
    for level in range(max(depth.values()), -2, -1):
        for uid in by_depth.get(level + 1, ()):
            root[uid], size[uid] = uid, 1
            trunk_size -= 1
            for child in children[uid]:
                a, b = find(uid), find(child)
                if a != b:
                    if size[a] < size[b]:
                        a, b = b, a
                    root[b] = a
                    size[a] += size.pop(b)
        if len(size) < 2:
            continue
        path = trunk_size + max(_deal(list(size.values()), workers))
        if best is None or path <= best[0]:
            best = (path, level)
    if best is None or best[0] > GAIN * len(order) or len(order) - best[0] < MIN_SAVED:
        return whole
    level = best[1]
    trunk = [uid for uid in order if depth[uid] <= level]
    rest = [uid for uid in order if depth[uid] > level]
    return BuildSplit(trunk, _groups(rest, ups, workers))


def _depths(
    order: Sequence[str], ups: Mapping[str, set[str]], children: Mapping[str, list[str]]
) -> dict[str, int] | None:
    """Each node's longest path from a root, in edges (None on a cycle)."""
    waiting = {uid: len(ups[uid]) for uid in order}
    ready = [uid for uid in order if not waiting[uid]]
    depth = dict.fromkeys(ready, 0)
    while ready:
        uid = ready.pop()
        for child in children[uid]:
            depth[child] = max(depth.get(child, 0), depth[uid] + 1)
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    return depth if len(depth) == len(order) else None


def _deal(sizes: list[int], workers: int) -> list[int]:
    """The groups' sizes when parts of *sizes* are dealt, largest first, to the smallest."""
    bins = [0] * min(workers, len(sizes))
    for part in sorted(sizes, reverse=True):
        heapq.heapreplace(bins, bins[0] + part)
    return bins


def _groups(rest: Sequence[str], ups: Mapping[str, set[str]], workers: int) -> list[list[str]]:
    """*rest*'s unconnected parts dealt into at most *workers* groups, as :func:`_deal`
    deals their sizes; each group in the order of *rest*."""
    part_of = {uid: uid for uid in rest}

    def find(uid: str) -> str:
        while part_of[uid] != uid:
            part_of[uid] = part_of[part_of[uid]]
            uid = part_of[uid]
        return uid

    for uid in rest:
        for parent in ups[uid]:
            if parent in part_of:
                part_of[find(parent)] = find(uid)
    parts: dict[str, list[str]] = {}
    for uid in rest:
        parts.setdefault(find(uid), []).append(uid)
    bins: list[tuple[int, int, list[str]]] = [(0, i, []) for i in range(min(workers, len(parts)))]
    for part in sorted(parts.values(), key=len, reverse=True):
        count, index, members = heapq.heappop(bins)
        heapq.heappush(bins, (count + len(part), index, members + part))
    position = {uid: i for i, uid in enumerate(rest)}
    groups = [
        sorted(members, key=position.__getitem__)
        for _, _, members in sorted(bins, key=lambda b: b[1])
    ]
    return [group for group in groups if group]
