"""Pytest runs (and dbt CLI runs) of the suite started from a process that has dbt imported
already.

Most of the suite runs pytest as users do, in a new process (``pytester.runpytest_subprocess``),
and each such process spends seconds importing dbt before it does anything the test is about.
A zygote is a process, one per xdist worker, that imports dbt, its adapters and pytest once
and then forks a child for each pytest run: the child is that new process, with the run's
folder, environment, arguments and output files, and runs ``python -m pytest`` as
``runpy`` does; its exit status goes back to the test. Nothing of dbtproof, nor of any other
pytest plugin, is imported before the fork (pytest's assertion rewriting of plugins would
notice), and nothing runs in the zygote but imports, so each child starts as clean as a new
interpreter with those modules loaded.

The dbt CLI is run alike (:meth:`Zygote.run`, ``program="dbt"``): the child runs dbt's console
script (``dbt.cli.main:cli``) as the ``dbt`` command does, so a test comparing dbtproof with
dbt itself pays dbt's import once per worker, not once per command.

A test that needs a really new interpreter (one that checks what gets imported) is marked
``@pytest.mark.fresh_process``; ``DBTPROOF_SUITE_NO_ZYGOTE=1`` turns the zygote off for all.

Run as a script, this module is the zygote; imported, :class:`Zygote` is its client.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Imported once in the zygote: what every pytest run of the suite imports from dbt.
PRELOAD = (
    "pytest",
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.postgres",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt.task.test",
    "dbt.task.run",
    "dbt.task.seed",
    "dbt.task.compile",
    "dbt.task.sql",
    "dbt.contracts.graph.manifest",
    "duckdb",
    "psycopg2",
    "agate",
    "jinja2",
    "sqlglot",
    "yaml",
)


# -- the zygote ---------------------------------------------------------------------------


def _reply(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _requests(fd: int) -> Any:
    """The JSON requests read from *fd*, one per line, until it closes."""
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield json.loads(line)


def serve(requests_fd: int, replies_fd: int) -> dict[str, Any]:
    """Fork a child for each request; return (in the child only) the request it is for."""
    for request in _requests(requests_fd):
        pid = os.fork()
        if pid == 0:
            os.close(requests_fd)
            os.close(replies_fd)
            return request
        _reply(replies_fd, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _reply(replies_fd, {"returncode": os.waitstatus_to_exitcode(status)})
    sys.exit(0)


def become(request: dict[str, Any]) -> None:
    """Turn this forked child into ``python -m pytest`` (or the ``dbt`` command, when the
    request's ``program`` is ``dbt``) as *request* describes it."""
    import runpy

    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.close(null)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # as `python -m pytest` has it: the folder first, then PYTHONPATH's entries, then the
    # interpreter's own (the zygote's script folder left out)
    python_path = [path for path in request["env"].get("PYTHONPATH", "").split(os.pathsep) if path]
    sys.path[:] = [request["cwd"], *python_path, *sys.path[1:]]
    if request.get("program") == "dbt":
        from dbt.cli.main import cli

        sys.argv[:] = ["dbt", *request["args"]]
        sys.exit(cli())
    sys.argv[:] = ["pytest", *request["args"]]
    runpy.run_module("pytest", run_name="__main__", alter_sys=True)


def main() -> None:
    """The zygote: import, then serve requests from the fd of ``argv[1]``, replying on
    ``argv[2]``'s."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    request = serve(int(sys.argv[1]), int(sys.argv[2]))
    become(request)  # in the child: runs pytest, which exits with its code


# -- the client ---------------------------------------------------------------------------


class ZygoteRun:
    """A pytest run forked from the zygote, looking to ``Pytester.run`` like a ``Popen``."""

    stdin = None

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            reply = self.zygote.read_reply(timeout)
            if reply is None:
                raise subprocess.TimeoutExpired("pytest (zygote)", timeout or 0)
            self.returncode = int(reply["returncode"])
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """Client of one zygote process, started on first use with the environment of *env*."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._replies: int | None = None
        #: What was read from the replies' pipe past the last whole line.
        self._pending = b""
        self._requests: int | None = None
        #: The zygote's own output (a failed import shows here).
        self.log = Path(tempfile.mkstemp(prefix="pytest-zygote-", suffix=".log")[1])

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        script = Path(__file__).resolve()
        # the pipes keep their numbers in the zygote (pass_fds), which reads them from argv
        launcher = (
            "import runpy, sys; "
            f"sys.argv = [{str(script)!r}, '{request_read}', '{reply_write}']; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')"
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", launcher],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, reply_write),
            )
        os.close(request_read)
        os.close(reply_write)
        self._requests = request_write
        self._replies = reply_read
        self._pending = b""

    def read_reply(self, timeout: float | None) -> dict[str, Any] | None:
        """The zygote's next reply, or None when *timeout* seconds pass first. The pipe is
        read unbuffered, line by line: a reply already read (a child that ended before its
        pid was read) is never waited for on the pipe again."""
        import select
        import time

        assert self._replies is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._pending:
            if deadline is not None:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._replies], [], [], max(0.0, left))
                if not ready:
                    return None
            chunk = os.read(self._replies, 65536)
            if not chunk:
                output = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the pytest zygote ended; its output:\n{output}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def spawn(
        self,
        args: list[str],
        cwd: str,
        env: dict[str, str],
        stdout: str,
        stderr: str,
        program: str = "pytest",
    ) -> ZygoteRun:
        """Fork ``python -m pytest *args`` (or ``dbt *args``, *program* ``dbt``) in *cwd*
        with *env*, writing to the two paths."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self._requests is not None
        request = {
            "args": args,
            "cwd": cwd,
            "env": env,
            "stdout": stdout,
            "stderr": stderr,
            "program": program,
        }
        os.write(self._requests, (json.dumps(request) + "\n").encode())
        reply = self.read_reply(120)
        if reply is None:
            raise RuntimeError("the pytest zygote did not fork within 120 s")
        return ZygoteRun(self, int(reply["pid"]))

    def run(
        self, program: str, args: list[str], cwd: str, env: dict[str, str], timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``dbt *args`` (*program* ``dbt``) or ``python -m pytest *args`` (``pytest``)
        forked, to its end, as ``subprocess.run(..., capture_output=True, text=True)``
        would."""
        with tempfile.TemporaryDirectory(prefix="zygote-run-") as folder:
            stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
            forked = self.spawn(args, cwd, env, str(stdout), str(stderr), program)
            try:
                code = forked.wait(timeout)
            except subprocess.TimeoutExpired:
                forked.kill()
                forked.wait()
                raise
            return subprocess.CompletedProcess(
                [program, *args], code, stdout.read_text(errors="replace"),
                stderr.read_text(errors="replace"),
            )  # fmt: skip

    def close(self) -> None:
        """End the zygote."""
        if self._requests is not None:
            os.close(self._requests)
            self._requests = None
        if self._replies is not None:
            os.close(self._replies)
            self._replies = None
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        self.log.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
