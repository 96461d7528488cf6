"""How the run-level build splits over xdist workers (:mod:`dbtproof.project.build_split`)."""

from __future__ import annotations

from dbtproof.project.build_split import split_build


def chains(count: int, length: int) -> tuple[list[str], dict[str, list[str]]]:
    """A seed feeding *count* chains of *length* models (the benchmark's project)."""
    nodes = ["seed"] + [f"m_{i}" for i in range(count * length)]
    parents = {
        f"m_{i}": ["seed"] if i < count else [f"m_{i - count}"] for i in range(count * length)
    }
    return nodes, parents


def test_chains_from_one_seed_split_after_the_seed_into_even_groups() -> None:
    nodes, parents = chains(10, 100)
    split = split_build(nodes, parents, workers=2)
    assert split.trunk == ["seed"]
    assert [len(group) for group in split.groups] == [500, 500]
    assert sorted(node for group in split.groups for node in group) == sorted(nodes[1:])
    # whole chains stay in one group, in the given order
    first = set(split.groups[0])
    for i in range(10, 1000):
        assert (f"m_{i}" in first) == (f"m_{i - 10}" in first)
    assert split.groups[0] == [n for n in nodes if n in first]


def test_every_edge_leaves_the_trunk_or_stays_in_its_group() -> None:
    # staging models read two seeds; marts read across staging; a chain of reports
    parents = {
        "stg_a": ["seed_a"], "stg_b": ["seed_a", "seed_b"], "stg_c": ["seed_b"],
        "mart_1": ["stg_a", "stg_b"], "mart_2": ["stg_b", "stg_c"],
        **{f"mart_{i}": [f"mart_{i - 1}"] for i in range(3, 12)},
        **{f"rep_{i}": ["stg_c"] if i == 0 else [f"rep_{i - 1}"] for i in range(12)},
    }  # fmt: skip
    nodes = ["seed_a", "seed_b", *parents]
    split = split_build(nodes, parents, workers=2)
    assert split.groups, split
    where = {node: i for i, group in enumerate(split.groups) for node in group}
    trunk = set(split.trunk)
    assert trunk | where.keys() == set(nodes) and not trunk & where.keys()
    for child, ups in parents.items():
        for parent in ups:
            assert parent in trunk or where.get(parent) == where.get(child), (parent, child)


def test_no_split_where_it_gains_nothing() -> None:
    chain = [f"c{i}" for i in range(50)]
    parents = {f"c{i}": [f"c{i - 1}"] for i in range(1, 50)}
    assert split_build(chain, parents, workers=2).groups == []  # a chain: one after another
    nodes, parents = chains(10, 100)
    assert split_build(nodes, parents, workers=1).groups == []
    assert split_build(["a", "b", "c"], {}, workers=2).groups == []  # too few to pay off
    one_heavy = ["seed", *[f"h{i}" for i in range(40)], "x"]
    heavy = {f"h{i}": ["seed"] if i == 0 else [f"h{i - 1}"] for i in range(40)} | {"x": ["seed"]}
    assert split_build(one_heavy, heavy, workers=2).groups == []  # 41 then 1: no gain


def test_parents_outside_the_nodes_are_ignored() -> None:
    nodes, parents = chains(4, 10)
    parents["m_0"] = ["seed", "source.raw.orders", "model.ephemeral"]
    split = split_build(nodes, parents, workers=3)
    assert split.trunk == ["seed"] and len(split.groups) == 3
