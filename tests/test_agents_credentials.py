"""``dbtproof sample``, ``propose`` and ``mcp`` with ``--dbt-credentials``: the token is
minted in the command (the stand-in GitHub token endpoint), read by the profile (DuckDB's
``home_directory`` setting, as tests/test_credentials_plugin.py reads it), and never shown:
not in what the commands print, nor in a tool result, the server's log or its evidence."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from credential_endpoints import GitHubTokenEndpoint, endpoint  # noqa: F401 (a fixture)

VARIABLE = "DBT_ENV_SECRET_OIDC_TOKEN"
SPEC = f"github-oidc:audience=duckdb,variable={VARIABLE}"

DUCKDB_READING_THE_TOKEN = f"""
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: shop.duckdb
      schema: main
      threads: 1
      settings:
        home_directory: "{{{{ env_var('{VARIABLE}') }}}}"
"""


def _dbtproof(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from test_agents_mcp import DBTPROOF

    common = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", "dev"]
    return subprocess.run(
        [str(DBTPROOF), *args, *common],
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


def test_sample_propose_and_mcp_mint_credentials_and_never_show_them(
    minting_shop: Path,
    endpoint: GitHubTokenEndpoint,  # noqa: F811 (the fixture)
) -> None:
    """Without the provider the profile cannot be read; with it, the three commands run,
    each minting the token, and no token appears in anything they give back."""
    from test_agents_mcp import Agent, run_agent

    missing = _dbtproof(minting_shop, "sample")
    assert missing.returncode != 0 and VARIABLE in missing.stdout + missing.stderr
    assert endpoint.issued == []

    sampled = _dbtproof(minting_shop, "sample", "--dbt-credentials", SPEC)
    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    assert len(endpoint.issued) >= 1 and set(endpoint.audiences) == {"duckdb"}
    proposed = _dbtproof(minting_shop, "propose", "customers", "--json", "--dbt-credentials", SPEC)
    assert proposed.returncode == 0, proposed.stdout + proposed.stderr
    assert '"passes": true' in proposed.stdout
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
    shown: list[Any] = [
        sampled.stdout,
        sampled.stderr,
        proposed.stdout,
        proposed.stderr,
        transcript.stderr,
        repr(transcript.calls),
        evidence.read_text(),
        *(path.read_text() for path in (minting_shop / "target").rglob("*.json*")),
    ]
    for token in endpoint.issued:
        assert all(token not in text for text in shown)
