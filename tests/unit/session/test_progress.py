"""What dbt is doing is shown on a terminal while it works, and nowhere else.

A real terminal: the run goes on in a tmux pane (a pseudo-terminal), whose screen is read
with ``tmux capture-pane`` while it works, on a generated project of 1,000 models
(``bench/data_tests_bench.py``'s). The line shows the phase and, for a build, how many of
dbt's nodes have finished of how many; it is erased when dbt is done. With ``-q``, or
when stdout is not a terminal (a log, CI), nothing of it is written.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

#: The progress line of a build: the phase, nodes finished of how many.
BUILD_LINE = re.compile(r"dbtproof: dbt build: (\d+)/(\d+) nodes \(([\w.]+)\)\.\.\. \d+s")


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated project of 1,000 chained models over a seed, without data tests."""
    spec = importlib.util.spec_from_file_location("bench_data", ROOT / "bench/data_tests_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = tmp_path_factory.mktemp("big") / "project"
    bench.write_project(root, 1000, tested=0)
    (root / "models" / "schema.yml").unlink()  # no tests: an empty `models:`
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    assert len(list((root / "models").glob("m_*.sql"))) == 1000
    return root


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[str]:
    """A tmux server of this test's own (its socket); stopped afterwards."""
    socket = f"dbtproof-progress-{os.getpid()}-{tmp_path.name}"
    yield socket
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def _screens(tmux: str, cwd: Path, *args: str, timeout: float = 900) -> tuple[list[str], str]:
    """Run pytest with *args* in a tmux pane of 200 columns; every screen seen while it ran
    (read every 0.2 s), and the last one."""
    done = cwd / "exit-status"
    done.unlink(missing_ok=True)
    command = " ".join([sys.executable, "-m", "pytest", *args]) + f"; echo $? > {done}; sleep 600"
    subprocess.run(
        ["tmux", "-L", tmux, "new-session", "-d", "-x", "200", "-y", "50", "-c", str(cwd),
         "-e", f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}", command],
        check=True,
    )  # fmt: skip
    screens: list[str] = []
    deadline = time.monotonic() + timeout
    while not done.exists():
        assert time.monotonic() < deadline, screens[-1:]
        screen = subprocess.run(
            ["tmux", "-L", tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True
        ).stdout
        if not screens or screen != screens[-1]:
            screens.append(screen)
        time.sleep(0.2)
    last = subprocess.run(
        ["tmux", "-L", tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True
    ).stdout
    subprocess.run(["tmux", "-L", tmux, "kill-session"], capture_output=True, check=False)
    assert done.read_text().strip() == "0", last
    return screens, last


def test_a_terminal_shows_the_parse_and_the_build_while_dbt_works(
    big_project: Path, tmux: str
) -> None:
    screens, last = _screens(tmux, big_project, "dbt_project.yml", "-k", "m_999")
    seen = "\n".join(screens)
    assert "dbtproof: dbt parse... " in seen, "the parse is shown while it runs"
    counts = [(int(done), int(total)) for done, total, _ in BUILD_LINE.findall(seen)]
    assert counts, seen[-2000:]
    # m_999 needs 100 models of the chain and the seed: dbt's node count
    assert {total for _, total in counts} == {101}
    assert len({done for done, _ in counts}) > 1, "the count moves as dbt finishes nodes"
    assert "dbtproof: dbt" not in last, "the line is gone once dbt is done"
    assert "dbt_project.yml ." in last and "1 passed, 1000 deselected" in last


def test_no_progress_with_q_or_without_a_terminal(big_project: Path, tmux: str) -> None:
    screens, last = _screens(tmux, big_project, "-q", "dbt_project.yml", "-k", "m_990")
    assert "dbtproof: dbt" not in "\n".join(screens)
    assert "1 passed" in last
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "dbt_project.yml", "-k", "m_991"],
        cwd=big_project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dbtproof: dbt" not in run.stdout + run.stderr
    assert "\r" not in run.stdout + run.stderr
