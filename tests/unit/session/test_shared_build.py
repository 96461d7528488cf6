"""The run-level build's protocol between workers: who builds, who reads, what a failure leaves.

Two :class:`~dbtproof.session.shared_build.SharedBuild` objects on one folder stand for two xdist
workers (the lock is a real ``flock`` on a real file; the dbt side is
``tests/plugin/test_build_items.py``'s, end to end). The session's part here only records what
it was asked to attach.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from dbtproof.errors import DbtRunError
from dbtproof.session.runner import NodeResult
from dbtproof.session.shared_build import RESULTS_FILE, SharedBuild, SharedPlace, SharedResults


class Attachments:
    """The session's side: what was attached, and how, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def manifest(self, place: SharedPlace) -> object:
        return object()

    def attach(self, place: SharedPlace, read_only: bool) -> None:
        self.calls.append("attach read-only" if read_only else "attach for writing")

    def join(self, place: SharedPlace) -> None:
        self.calls.append("join")

    def detach(self, place: SharedPlace) -> None:
        self.calls.append("detach")


def worker(folder: Path) -> tuple[SharedBuild, Attachments]:
    attachments = Attachments()
    place = SharedPlace.of_run(folder, "dbtproof_202611261200_abcdef")
    return SharedBuild(attachments, place, lambda: ([], [])), attachments  # type: ignore[arg-type]


def node(name: str) -> NodeResult:
    return NodeResult(f"model.shop.{name}", name, "model", "success", None)


def trunk_with_groups() -> SharedResults:
    """The trunk's results: the seed built, two groups left."""
    seed = NodeResult("seed.shop.raw", "raw", "seed", "success", None)
    return SharedResults([seed.unique_id], [seed], groups=[["model.shop.a"], ["model.shop.b"]])


NODE = NodeResult("model.shop.orders", "orders", "model", "success", None)


def test_the_first_worker_builds_and_the_others_read(tmp_path: Path) -> None:
    first, first_session = worker(tmp_path)
    second, second_session = worker(tmp_path)
    builds: list[str] = []

    def build() -> SharedResults:
        builds.append("built")
        return SharedResults(["model.shop.orders"], [NODE])

    assert first.results(build).nodes == [NODE]
    assert second.results(build).nodes == [NODE]
    assert first.results(build) is first.results(build)  # read once per worker
    assert builds == ["built"]
    assert first_session.calls == ["attach for writing", "detach", "attach read-only"]
    assert second_session.calls == ["attach read-only"]
    assert SharedResults.from_json((tmp_path / RESULTS_FILE).read_text()).nodes == [NODE]


def test_a_worker_waits_for_the_build_in_progress(tmp_path: Path) -> None:
    first, _ = worker(tmp_path)
    second, _ = worker(tmp_path)
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_build() -> SharedResults:
        started.set()
        release.wait(10)
        order.append("first built")
        return SharedResults(["model.shop.orders"], [NODE])

    def never() -> SharedResults:
        raise AssertionError("the second worker must read, not build")

    thread = threading.Thread(target=first.results, args=(slow_build,))
    thread.start()
    assert started.wait(10)
    reader = threading.Thread(target=lambda: order.append(str(second.results(never).nodes)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive(), "the reader did not wait for the build's lock"
    release.set()
    thread.join(10)
    reader.join(10)
    assert order == ["first built", str([NODE])]


def test_a_failed_build_is_said_by_every_worker_and_not_done_again(tmp_path: Path) -> None:
    first, first_session = worker(tmp_path)
    second, second_session = worker(tmp_path)
    attempts: list[Any] = []

    def failing() -> SharedResults:
        attempts.append(1)
        raise DbtRunError("dbtproof: `dbt build` failed before running any node: bad selector")

    with pytest.raises(DbtRunError, match="bad selector"):
        first.results(failing)
    for again in (first, second):
        with pytest.raises(DbtRunError, match="bad selector.*\\n.*run-level build"):
            again.results(failing)
    assert attempts == [1]
    assert first_session.calls == ["attach for writing", "detach"]  # never read-only
    assert second_session.calls == []


def test_workers_build_the_groups_side_by_side_and_read_each_others(tmp_path: Path) -> None:
    first, first_session = worker(tmp_path)
    second, second_session = worker(tmp_path)
    trunks: list[str] = []
    building: dict[str, threading.Event] = {
        "model.shop.a": threading.Event(),
        "model.shop.b": threading.Event(),
    }
    builders: dict[str, list[str]] = {"first": [], "second": []}

    def trunk() -> SharedResults:
        trunks.append("built")
        return trunk_with_groups()

    def group_of(name: str) -> Any:
        def build_group(group: list[str], trunk: SharedResults) -> SharedResults:
            assert trunk.built == ["seed.shop.raw"]
            builders[name].extend(group)
            building[group[0]].set()
            # each waits until the other is building too: the groups are built at once
            assert all(event.wait(10) for event in building.values()), "built one by one"
            return SharedResults(list(group), [node(group[0].rsplit(".", 1)[1])])

        return build_group

    done: dict[str, SharedResults] = {}
    threads = [
        threading.Thread(target=lambda: done.update(first=first.results(trunk, group_of("first")))),
        threading.Thread(
            target=lambda: done.update(second=second.results(trunk, group_of("second")))
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert trunks == ["built"]
    assert sorted(builders["first"] + builders["second"]) == ["model.shop.a", "model.shop.b"]
    assert builders["first"] and builders["second"], builders
    for results in done.values():
        assert results.built == ["seed.shop.raw", "model.shop.a", "model.shop.b"]
        assert [n.unique_id for n in results.nodes] == results.built
    assert first_session.calls.count("join") + second_session.calls.count("join") == 2
    assert first_session.calls[-1] == second_session.calls[-1] == "attach read-only"


def test_a_group_no_one_finished_is_built_by_a_worker_waiting_for_it(tmp_path: Path) -> None:
    first, _ = worker(tmp_path)
    second, _ = worker(tmp_path)
    built: list[str] = []

    def trunk() -> SharedResults:
        return trunk_with_groups()

    def crashing(group: list[str], trunk: SharedResults) -> SharedResults:
        built.append(group[0])
        raise KeyboardInterrupt  # the worker dies: its lock goes, no results file

    def build_group(group: list[str], trunk: SharedResults) -> SharedResults:
        built.append(group[0])
        return SharedResults(list(group), [node(group[0].rsplit(".", 1)[1])])

    with pytest.raises(KeyboardInterrupt):
        first.results(trunk, crashing)
    results = second.results(trunk, build_group)
    assert built == ["model.shop.a", "model.shop.a", "model.shop.b"]
    assert results.built == ["seed.shop.raw", "model.shop.a", "model.shop.b"]


def test_a_group_that_failed_is_said_by_every_worker(tmp_path: Path) -> None:
    first, _ = worker(tmp_path)
    second, _ = worker(tmp_path)

    def failing(group: list[str], trunk: SharedResults) -> SharedResults:
        if group == ["model.shop.b"]:
            raise DbtRunError("dbtproof: `dbt build` failed before running any node: lost")
        return SharedResults(list(group), [node("a")])

    with pytest.raises(DbtRunError, match="lost"):
        first.results(trunk_with_groups, failing)
    with pytest.raises(DbtRunError, match="lost.*\\n.*run-level build"):
        second.results(trunk_with_groups, failing)
