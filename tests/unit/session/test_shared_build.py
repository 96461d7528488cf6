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

    def detach(self, place: SharedPlace) -> None:
        self.calls.append("detach")


def worker(folder: Path) -> tuple[SharedBuild, Attachments]:
    attachments = Attachments()
    place = SharedPlace.of_run(folder, "dbtproof_202611261200_abcdef")
    return SharedBuild(attachments, place, lambda: ([], [])), attachments  # type: ignore[arg-type]


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
