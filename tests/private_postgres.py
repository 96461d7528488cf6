"""A private PostgreSQL cluster for tests that need what the shared server must not do:
check passwords, stop, restart. It runs on a free port of 127.0.0.1, as root (CI) or as
any other user (PostgreSQL refuses to run as root: as root the server runs as the user
``postgres``, through ``runuser``), and is removed afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER_PASSWORD = "superpw"


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binaries() -> Path:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl); the suite needs them."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb) are missing")
    return Path(binaries[-1]).parent


@dataclass
class PrivateCluster:
    """A running private cluster: its port, and ways to stop and start it again."""

    port: int
    bindir: Path
    folder: Path
    as_root: bool

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.folder / "data"

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on the cluster as the server's user. No pipes: the server pg_ctl
        starts would inherit them and keep them open."""
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        quiet = subprocess.DEVNULL
        command = [*prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(command, check=True, stdin=quiet, stdout=quiet, stderr=quiet, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def start_if_stopped(self) -> None:
        """Start the server unless it runs."""
        if not (self.data / "postmaster.pid").exists():
            self.start()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are ended; ``immediate``: as a crash)."""
        self.pg_ctl("-m", mode, "-w", "stop")

    def psql(self, sql: str, database: str = "postgres") -> None:
        """Run *sql* as the superuser."""
        env = {**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD}
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True, env=env, timeout=60,
        )  # fmt: skip


@contextmanager
def private_postgres(auth: str = "scram-sha-256") -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster (*auth*: how logins are checked; the superuser
    ``postgres`` has the password :data:`SUPERUSER_PASSWORD`), started; removed afterwards."""
    bindir = server_binaries()
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.fail("running as root needs runuser to start PostgreSQL as the user postgres")
    # Not under pytest's basetemp: as root that is private to root, and the server runs
    # as postgres.
    folder = Path(tempfile.mkdtemp(prefix="dbtproof-pg-"))
    (folder / "pw").write_text(f"{SUPERUSER_PASSWORD}\n")
    if as_root:
        for path in (folder, folder / "pw"):
            shutil.chown(path, "postgres", "postgres")
    cluster = PrivateCluster(free_port(), bindir, folder, as_root)
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    quiet = subprocess.DEVNULL
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(cluster.data), "-A", auth,
                    "-U", "postgres", f"--pwfile={folder / 'pw'}"],
                   check=True, stdin=quiet, stdout=quiet, stderr=quiet, timeout=120)  # fmt: skip
    cluster.start()
    try:
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):  # stopped already
            cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
