"""``dbtproof watch``: a round after a save runs exactly the tests the saved file touches,
in the same process, and Ctrl-C leaves nothing behind (DuckDB and PostgreSQL)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import pg_schemas

TESTS = """
from dbtproof import ref, source


def test_customers(dbt):
    assert dbt.run_model("customers", given={ref("stg_customers"): [], ref("orders"): []}) == []


def test_payments(dbt):
    assert dbt.run_model("stg_payments", given={source("shop", "raw_payments"): []}) == []
"""


class Watched:
    """A ``dbtproof watch`` process whose output lines are read as they come."""

    def __init__(self, cwd: Path, *args: str, tmpdir: Path | None = None) -> None:
        command = Path(sys.executable).with_name("dbtproof")
        env = dict(os.environ, TMPDIR=str(tmpdir)) if tmpdir is not None else None
        self.process = subprocess.Popen(
            [str(command), "watch", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, text: str, timeout: float = 180) -> list[str]:
        """The lines up to and including the first one containing *text*."""
        deadline = time.monotonic() + timeout
        got = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            got.append(line)
            self.seen.append(line)
            if text in line:
                return got
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.seen))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=120)
        finally:
            self.process.kill()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


@pytest.mark.parametrize("adapter", ["duckdb", "postgres"])
def test_a_save_reruns_only_the_touched_tests_and_ctrl_c_leaves_nothing(
    pytester: pytest.Pytester, shop: Path, adapter: str, request: pytest.FixtureRequest
) -> None:
    prefix = request.getfixturevalue("shop_pg") if adapter == "postgres" else None
    (shop / "pytests" / "test_calls.py").write_text(TESTS)
    basetemp = pytester.path.parent / f"{pytester.path.name}_basetemp"
    tmpdir = pytester.path.parent / f"{pytester.path.name}_tmp"  # the kept session's folder
    tmpdir.mkdir()
    watched = Watched(
        shop, "-p", "no:cacheprovider", f"--basetemp={basetemp}", "pytests", tmpdir=tmpdir
    )
    try:
        first = watched.until("dbtproof watch: watching")
        assert any("2 passed" in line for line in first), "\n".join(first)
        time.sleep(0.5)  # a save within the same mtime tick would look unchanged
        model = shop / "models" / "staging" / "stg_customers.sql"
        model.write_text(model.read_text() + "\n-- saved\n")
        second = watched.until(" in ")  # pytest's summary line: "N passed ... in 0.5s"
        while not any("passed" in line and " in " in line for line in second):
            second += watched.until(" in ")
        summary = next(line for line in second if "passed" in line and " in " in line)
        # test_payments runs nothing the save touches: the round makes no item for it
        assert "1 passed in " in summary and "deselected" not in summary, second
        assert any("changed" in line and "stg_customers.sql" in line for line in second)
    finally:
        code = watched.stop()
    assert "dbtproof watch: stopped" in watched.seen, watched.seen
    assert code == 0, watched.seen
    if prefix is not None:
        assert pg_schemas(prefix) == []
    else:
        assert not list(basetemp.rglob("*.duckdb")), list(basetemp.rglob("*"))
    assert not list(tmpdir.iterdir()), list(tmpdir.rglob("*"))


def _ran(summary: str) -> int:
    """How many tests pytest's summary line counts (passed, failed, errors, skipped)."""
    words = summary.strip("= ").split(" in ")[0].replace(",", "").split()
    return sum(
        int(n)
        for n, what in zip(words, words[1:], strict=False)
        if n.isdigit() and what != "deselected"
    )


def _summary(watched: Watched) -> tuple[list[str], str]:
    """The lines of the next round, up to pytest's summary line, and that line."""
    lines = watched.until(" in ")
    while not any(("passed" in line or "failed" in line) and " in " in line for line in lines):
        lines += watched.until(" in ")
    return lines, next(
        line for line in lines if ("passed" in line or "failed" in line) and " in " in line
    )


def test_rounds_keep_the_namespace_and_rebuild_what_a_save_changed(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """The rounds share one namespace; a saved model is built again (and what is downstream
    of it), so its tests judge the saved SQL, not the relation of an earlier round."""
    tmpdir = pytester.path.parent / f"{pytester.path.name}_tmp"
    tmpdir.mkdir()
    watched = Watched(shop, "-q", "-p", "no:cacheprovider", "dbt_project.yml", tmpdir=tmpdir)
    model = shop / "models" / "staging" / "stg_customers.sql"
    original = model.read_text()
    try:
        first = watched.until("dbtproof watch: watching")
        whole = next(line for line in first if " passed" in line and " in " in line)
        assert "failed" not in whole, first
        files = sorted(tmpdir.rglob("*.duckdb"))
        assert len(files) == 1, files
        time.sleep(0.5)
        nulls = "    cast(null as integer) as customer_id,"
        model.write_text(original.replace("    customer_id,", nulls))
        lines, summary = _summary(watched)
        assert "failed" in summary, lines
        assert any("not_null_stg_customers_customer_id" in line for line in lines), lines
        assert 0 < _ran(summary) < _ran(whole), (whole, lines)  # only what the save touches
        assert sorted(tmpdir.rglob("*.duckdb")) == files  # the same namespace
        time.sleep(0.5)
        model.write_text(original)
        lines, summary = _summary(watched)
        assert "failed" not in summary and "passed" in summary, lines
    finally:
        code = watched.stop()
    assert "dbtproof watch: stopped" in watched.seen, watched.seen
    assert not list(tmpdir.iterdir()), list(tmpdir.rglob("*"))
    del code  # the last round's outcome: passed


RETYPED = """
from dbtproof import ref


def test_first_name_is_typed_as_stg_customers_says(dbt):
    given = {ref("stg_customers"): [{"customer_id": 1, "first_name": "7"}], ref("orders"): []}
    assert dbt.run_model("customers", given=given)[0]["first_name"] == 7
"""


def test_a_saved_model_s_columns_are_worked_out_again(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """What the model engine knows of the columns of the models a save did not touch is kept
    from round to round; a saved model's columns are worked out again: its new types type
    the fixtures of the models reading it."""
    (shop / "pytests" / "test_retyped.py").write_text(RETYPED)
    tmpdir = pytester.path.parent / f"{pytester.path.name}_tmp"
    tmpdir.mkdir()
    watched = Watched(shop, "-p", "no:cacheprovider", "pytests", tmpdir=tmpdir)
    model = shop / "models" / "staging" / "stg_customers.sql"
    try:
        lines = watched.until("dbtproof watch: watching")
        assert any("1 failed" in line for line in lines), lines  # first_name is text: '7'
        time.sleep(0.5)
        model.write_text(
            model.read_text().replace(
                "    first_name,", "    cast(first_name as integer) as first_name,"
            )
        )
        lines, summary = _summary(watched)
        assert "1 passed" in summary, lines
    finally:
        watched.stop()
    assert "dbtproof watch: stopped" in watched.seen, watched.seen


def test_waiting_for_a_save_collects_garbage_once_idle(tmp_path: Path) -> None:
    from dbtproof.cli import watch

    (tmp_path / "m.sql").write_text("select 1 as id\n")
    seen = watch.snapshot([tmp_path])
    slept: list[float] = []
    idled: list[float] = []
    saved = tmp_path / "n.sql"

    def sleep(seconds: float) -> None:  # the loop's clock: a save once 2.5 s have passed
        slept.append(seconds)
        if sum(slept) >= 2.5 and not saved.exists():
            saved.write_text("select 2 as id\n")

    changed, after = watch.wait_for_change(
        [tmp_path], seen, threading.Event(), sleep, idle=lambda: idled.append(sum(slept))
    )
    assert changed == {saved.resolve()}
    assert saved.resolve() in after
    assert len(idled) == 1, "collected once while nobody waited, not at every poll"
    assert watch.IDLE <= idled[0] < 2.5
    # polling costs at most a twentieth of a core, whatever the tree's size
    assert watch.poll_interval(0.001) == watch.POLL
    assert watch.poll_interval(0.2) == pytest.approx(0.2 / watch.POLL_SHARE)
