"""The getting-started page runs as written, so it cannot drift from the code.

Every shell and Python example of ``docs/getting-started.md`` runs, in the page's order, in a
folder holding a copy of the example project at ``examples/shop``, as a reader would run them
from a checkout: a ``python`` block is a file (its ``title="..."`` names where it goes), a ``sh``
block runs in bash, in the folder the previous block's ``cd`` left. Blocks in any other language
(``text``: output) are not run. Two things differ from a reader's machine, both said here: a
``pip install`` line checks that what it names is installed (pip, with no index and no
dependencies, as a dry run: the suite does not change its virtualenv), and every pytest keeps its
files under this test's own folder (``PYTEST_ADDOPTS``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, copy_shop

PAGE = ROOT / "docs" / "getting-started.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="([^"]+)"')
SHELL = ("sh", "bash", "shell")
PIP_INSTALL = re.compile(r"^pip install ", re.MULTILINE)


def examples(page: str) -> list[tuple[str, str, str]]:
    """The page's fenced blocks, in order: (language, the rest of the fence line, the code)."""
    return [(match[1], match[2], match[3]) for match in BLOCK.finditer(page)]


def shell_script(code: str, workdir: Path, state: Path) -> str:
    """*code* as bash runs it from *workdir*, writing the folder it ends in to *state*."""
    pip = f'"{sys.executable}" -m pip install --dry-run --no-index --no-deps '
    body = PIP_INSTALL.sub(lambda _: pip, code)
    return f'set -euo pipefail\ncd "{workdir}"\n{body}\npwd > "{state}"\n'


def reader_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of a reader's shell: this interpreter's scripts first on PATH, no
    variable of dbt's, the example's, or of the pytest run this test is part of."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DBT_", "SHOP_", "PYTEST_", "DBTPROOF_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTEST_ADDOPTS"] = f"--basetemp={tmp_path / 'basetemp'} -p no:cacheprovider"
    return env


def test_every_example_of_the_getting_started_page_runs(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    copy_shop(checkout / "examples" / "shop", with_example_tests=True)
    env = reader_environment(tmp_path)
    state = tmp_path / "cwd"
    workdir = checkout
    blocks = examples(PAGE.read_text())
    ran = {"python": 0, "shell": 0}
    for number, (language, fence, code) in enumerate(blocks, 1):
        if language == "python":
            title = TITLE.search(fence)
            assert title, f'Python example {number} has no title="path" saying where it goes'
            target = workdir / title[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
            ran["python"] += 1
        elif language in SHELL:
            done = subprocess.run(
                ["bash", "-c", shell_script(code, workdir, state)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"shell example {number} of {PAGE.name} failed ({done.returncode}):\n{code}\n"
                f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )
            workdir = Path(state.read_text().strip())
            ran["shell"] += 1
    assert ran["python"] >= 1 and ran["shell"] >= 3, ran


def test_the_first_tests_of_the_readme_and_the_home_page_are_the_getting_started_ones() -> None:
    page = [code for language, _, code in examples(PAGE.read_text()) if language == "python"]
    for shown in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        tests = [
            code
            for language, _, code in examples(shown.read_text())
            if language == "python" and "def test_" in code
        ]
        assert tests, f"{shown.name} shows no test"
        for code in tests:
            assert any(code in ran for ran in page), (
                f"a test of {shown.name} is not (part of) a getting-started example:\n{code}"
            )
