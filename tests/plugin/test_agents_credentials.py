"""``dbtproof sample``, ``propose`` and ``mcp`` with ``--dbt-credentials``: the token is
minted in the command (the stand-in GitHub token endpoint), read by the profile (DuckDB's
``home_directory`` setting, as tests/plugin/test_credentials_plugin.py reads it), and never shown:
not in what the commands print, nor in a tool result, the server's log or its evidence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from credential_endpoints import GitHubTokenEndpoint, endpoint  # noqa: F401 (a fixture)
from test_credentials_plugin import DUCKDB_READING_THE_TOKEN, VARIABLE

SPEC = f"github-oidc:audience=duckdb,variable={VARIABLE}"


def _dbtproof(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    common = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", "dev"]
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbtproof"), *args, *common],
        cwd=project,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def minting_shop(
    shop_copy: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The example project whose DuckDB target reads the minted token."""
    for name in list(os.environ):
        if name.startswith(("DBT_", "SHOP_")):
            monkeypatch.delenv(name)
    (shop_copy / "profiles.yml").write_text(DUCKDB_READING_THE_TOKEN)
    return shop_copy


def test_sample_and_propose_mint_credentials_and_never_show_them(
    minting_shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811 (the fixture)
) -> None:
    """Without the provider the profile cannot be read; with it, ``sample`` and
    ``propose`` run, each minting the token, and print no token."""
    missing = _dbtproof(minting_shop, "sample")
    assert missing.returncode != 0 and VARIABLE in missing.stdout + missing.stderr
    assert endpoint.issued == []

    sampled = _dbtproof(minting_shop, "sample", "--dbt-credentials", SPEC)
    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    assert len(endpoint.issued) >= 1 and set(endpoint.audiences) == {"duckdb"}
    before = len(endpoint.issued)
    proposed = _dbtproof(minting_shop, "propose", "customers", "--json", "--dbt-credentials", SPEC)
    assert proposed.returncode == 0, proposed.stdout + proposed.stderr
    assert '"passes": true' in proposed.stdout
    assert len(endpoint.issued) > before  # propose minted its own
    shown = [sampled.stdout, sampled.stderr, proposed.stdout, proposed.stderr]
    shown += [path.read_text() for path in (minting_shop / "target").rglob("*.json*")]
    for token in endpoint.issued:
        assert all(token not in text for text in shown)


def test_the_mcp_server_mints_credentials_and_never_shows_them(
    minting_shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811 (the fixture)
) -> None:
    """``dbtproof mcp --dbt-credentials``: the server mints the token (at start and for
    the workspace) and no token is in a tool result, its log or its evidence."""
    pytest.importorskip("mcp")
    from test_agents_mcp import Agent, run_agent

    sampled = _dbtproof(minting_shop, "sample", "--dbt-credentials", SPEC)
    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    before = len(endpoint.issued)

    async def scenario(agent: Agent) -> None:
        profiled = await agent.call("profile_columns", model="orders")
        assert not profiled["is_error"], profiled["text"]
        listed = await agent.call("list_models")
        assert not listed["is_error"], listed["text"]

    evidence = minting_shop / "mcp.jsonl"
    transcript = run_agent(
        minting_shop,
        endpoint.environ(),
        scenario,
        target="dev",
        evidence=evidence,
        extra_args=("--dbt-credentials", SPEC),
    )
    assert len(endpoint.issued) > before  # the server minted its own
    shown = [transcript.stderr, repr(transcript.calls), repr(transcript.forms)]
    shown.append(evidence.read_text())
    for token in endpoint.issued:
        assert all(token not in text for text in shown)
