"""The ``dbtproof sample`` and ``dbtproof propose`` subcommands (wired by :mod:`dbtproof.cli.main`).

``dbtproof sample [--rows N]`` (a person or CI, never an agent) copies a bounded, masked
sample of the seeds and sources into the sample namespace; ``dbtproof propose
[SELECTOR] [--write]`` prints the proposals made on it (a summary, then the YAML patch as
a unified diff) and with ``--write`` applies the patch. Both take dbt's
``--project-dir``, ``--profiles-dir``, ``--target`` and ``--vars``, and refuse a
protected target as a pytest run does. What they print is scrubbed of the run's secrets.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbtproof.agents import minted
from dbtproof.errors import DbtproofError

COMMANDS = ("sample", "propose")


def add_parsers(commands: Any, dbt_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``sample`` and ``propose`` subcommands to the ``dbtproof`` parser."""
    sample = commands.add_parser(
        "sample",
        help="copy a bounded, PII-masked sample of the seeds and sources for `propose`",
    )
    dbt_arguments(sample)
    minted.add_arguments(sample)
    sample.add_argument("--rows", type=int, default=1000, help="rows per table (default 1000)")
    sample.add_argument("--pii-meta", default="pii", help="meta key marking a PII column")
    sample.add_argument("--pii-tag", default="pii", help="tag marking a PII column")
    sample.add_argument(
        "--sample-schema", default="dbtproof_sample", help="PostgreSQL: the sample's schema"
    )
    sample.add_argument("--sample-dir", default=None, help="folder of the sample's record")
    sample.add_argument("--evidence", default=None, help="the sample's evidence file (new)")
    sample.add_argument(
        "--allow-protected-target",
        action="store_true",
        help="sample even a protected target, as pytest's --dbt-allow-protected-target",
    )
    propose = commands.add_parser(
        "propose", help="propose data tests and unit tests, run on the sample and scored"
    )
    dbt_arguments(propose)
    minted.add_arguments(propose)
    propose.add_argument("selector", nargs="?", default=None, help="dbt selector of models")
    propose.add_argument("--write", action="store_true", help="apply the YAML patch")
    propose.add_argument("--json", action="store_true", help="the proposals as JSON")
    propose.add_argument("--pii-meta", default="pii", help="meta key marking a PII column")
    propose.add_argument("--pii-tag", default="pii", help="tag marking a PII column")
    propose.add_argument("--sample-dir", default=None, help="folder of the sample's record")


def _project(args: argparse.Namespace) -> Path:
    from dbtproof.project.discovery import find_project_dir

    project_dir = find_project_dir(Path.cwd(), args.project_dir)
    if project_dir is None:
        raise DbtproofError(
            f"dbtproof {args.command}: no dbt_project.yml at or above {Path.cwd()}. Run from "
            f"the dbt project, or pass --project-dir."
        )
    return project_dir


def run(args: argparse.Namespace) -> int:
    """Run ``dbtproof sample`` or ``dbtproof propose``; the exit code."""
    from dbtproof.agents.pii import PiiRule
    from dbtproof.session.settings import parse_vars

    project_dir = _project(args)
    folder = Path(args.sample_dir).resolve() if args.sample_dir else None
    profiles = Path(args.profiles_dir) if args.profiles_dir else None
    pii = PiiRule(meta_key=args.pii_meta, tag=args.pii_tag)
    credentials = minted.from_arguments(args)
    if args.command == "sample":
        from dbtproof.agents.place import DEFAULT_FOLDER
        from dbtproof.agents.sample import SampleOptions, take_sample

        _, lines = take_sample(
            project_dir,
            folder or project_dir / DEFAULT_FOLDER,
            target=args.target,
            profiles_dir=profiles,
            vars=parse_vars(args.vars),
            options=SampleOptions(rows=args.rows, pii=pii, schema=args.sample_schema),
            evidence=Path(args.evidence).resolve() if args.evidence else None,
            allow_protected_target=args.allow_protected_target,
            credentials=credentials,
        )
        print("\n".join(lines))
        return 0
    return _propose(args, project_dir, folder, profiles, pii, credentials)


def _propose(
    args: argparse.Namespace,
    project_dir: Path,
    folder: Path | None,
    profiles: Path | None,
    pii: Any,
    credentials: minted.MintedCredentials | None,
) -> int:
    from dbtproof.agents.patch import apply_patch, yaml_patch
    from dbtproof.agents.proposals import propose
    from dbtproof.agents.workspace import open_workspace

    if args.vars:
        raise DbtproofError("dbtproof propose: --vars is not supported yet (the sample has none).")
    with open_workspace(
        project_dir,
        target=args.target,
        profiles_dir=profiles,
        sample_dir=folder,
        pii=pii,
        credentials=credentials,
    ) as ws:
        proposals = propose(ws, args.selector)
        scrub = ws.secrets.scrub
        patch = yaml_patch(project_dir, proposals)
        if args.json:
            print(scrub(json.dumps([p.to_dict() for p in proposals], indent=2)))
        else:
            for proposal in proposals:
                mark = "" if proposal.kills else "  [kills nothing]"
                print(scrub(proposal.summary() + mark))
            killing = sum(1 for p in proposals if p.kills)
            print(f"dbtproof propose: {len(proposals)} proposal(s), {killing} kill a mutant")
            print(scrub(patch), end="")
        if args.write:
            written = apply_patch(project_dir, proposals)
            names = ", ".join(str(p.relative_to(project_dir)) for p in written) or "nothing"
            print(f"dbtproof propose: wrote {names}")
    return 0
