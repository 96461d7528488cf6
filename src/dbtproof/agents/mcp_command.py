"""The ``dbtproof mcp`` subcommand (wired by :mod:`dbtproof.cli.main`): its options, and the
start of the server (:mod:`dbtproof.agents.mcp_server`, which needs ``dbtproof[mcp]``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbtproof.agents import minted
from dbtproof.errors import DbtproofError


def add_parser(commands: Any, dbt_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``mcp`` subcommand to the ``dbtproof`` parser."""
    mcp = commands.add_parser(
        "mcp",
        help="serve dbtproof's agent tools over MCP (stdio): no SQL, no secret, no production",
    )
    dbt_arguments(mcp)
    minted.add_arguments(mcp)
    mcp.add_argument(
        "--evidence",
        type=Path,
        default=None,
        help="the evidence file of the tool calls (new; default: "
        "<target-path>/dbtproof-mcp/<run>.jsonl)",
    )
    mcp.add_argument("--sample-dir", default=None, help="folder of the sample's record")
    mcp.add_argument("--pii-meta", default="pii", help="meta key marking a PII column")
    mcp.add_argument("--pii-tag", default="pii", help="tag marking a PII column")


def run(args: argparse.Namespace) -> int:
    """Serve the agent tools on standard input/output until the client closes; the exit
    code. Raises :class:`DbtproofError` (a protected target, no project, no MCP SDK...)."""
    try:
        from dbtproof.agents.mcp_server import serve
        from dbtproof.agents.mcp_settings import McpSettings
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "mcp":
            raise
        raise DbtproofError(
            "dbtproof mcp: the MCP SDK is not installed. Install it with "
            "`pip install 'dbtproof[mcp]'`."
        ) from None
    from dbtproof.agents.pii import PiiRule
    from dbtproof.project.discovery import find_profiles_dir, find_project_dir
    from dbtproof.session.settings import parse_vars

    project_dir = find_project_dir(Path.cwd(), args.project_dir)
    if project_dir is None:
        raise DbtproofError(
            f"dbtproof mcp: no dbt_project.yml at or above {Path.cwd()}. Run from the dbt "
            f"project, or pass --project-dir."
        )
    if args.vars:
        raise DbtproofError("dbtproof mcp: --vars is not supported yet (the sample has none).")
    settings = McpSettings(
        project_dir=project_dir,
        profiles_dir=find_profiles_dir(args.profiles_dir),
        target=args.target,
        vars=parse_vars(args.vars),
        evidence=args.evidence.resolve() if args.evidence is not None else None,
        sample_dir=Path(args.sample_dir).resolve() if args.sample_dir else None,
        pii=PiiRule(meta_key=args.pii_meta, tag=args.pii_tag),
        credential_specs=tuple(args.dbt_credentials),
        allow_untrusted_credentials=args.dbt_allow_untrusted_credentials,
    )
    return serve(settings)
