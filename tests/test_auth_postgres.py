"""A wrong password stops the run with one clear message.

The shared PostgreSQL server trusts every local login, so this test starts a
private PostgreSQL instance that checks passwords (scram-sha-256) on a free port
of 127.0.0.1, and stops it afterwards. It runs as root (CI) and as any other user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_errors import run_failing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_binaries() -> Path:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl); the suite needs them."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb) are missing")
    return Path(binaries[-1]).parent


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[int]:
    """A private PostgreSQL that requires passwords; yields its port. Role dbtproof_ci/right.

    PostgreSQL refuses to run as root: as root, the server runs as the user ``postgres``
    (``runuser``); as anyone else, as that user.
    """
    bindir = _server_binaries()
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.fail("running as root needs runuser to start PostgreSQL as the user postgres")
    # Not under pytest's basetemp: as root that is private to root, and the server runs
    # as postgres.
    folder = Path(tempfile.mkdtemp(prefix="dbtproof-pgauth-"))
    (folder / "pw").write_text("superpw\n")
    if as_root:
        for path in (folder, folder / "pw"):
            shutil.chown(path, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def as_server_user(*command: str) -> None:
        # No pipes: the server pg_ctl starts would inherit them and keep them open.
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        quiet = subprocess.DEVNULL
        subprocess.run([*prefix, *command], check=True, stdin=quiet, stdout=quiet, stderr=quiet,
                       timeout=120)  # fmt: skip

    as_server_user(str(bindir / "initdb"), "-D", str(data), "-A", "scram-sha-256",
                   "-U", "postgres", f"--pwfile={folder / 'pw'}")  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(folder / "server.log")
    as_server_user(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        env = {**os.environ, "PGPASSWORD": "superpw"}
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
             "-c", "create role dbtproof_ci login password 'right'"],
            check=True, capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        yield port
    finally:
        as_server_user(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_wrong_password(
    pytester: pytest.Pytester, shop_pg: str, password_postgres: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PG_PORT", str(password_postgres))
    monkeypatch.setenv("SHOP_PG_DATABASE", "postgres")
    monkeypatch.setenv("SHOP_PG_PASSWORD", "wrong-secret")
    output = run_failing(pytester)
    assert "cannot connect to the warehouse of target 'postgres'" in output
    assert f"port: {password_postgres}" in output and "user: dbtproof_ci" in output
    assert 'password authentication failed for user "dbtproof_ci"' in output
    assert "SHOP_PG_PASSWORD=set" in output
    assert "wrong-secret" not in output
