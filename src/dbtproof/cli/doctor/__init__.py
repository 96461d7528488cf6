"""``dbtproof doctor``: why CI cannot talk to the warehouse, step by step.

It reads the ``.env`` file dbt-core 1.12 reads, as dbt does, and says what it sets (a
warning when it holds secrets or names a protected target); it says which ``profiles.yml``
won and why (dbt's search order, the path checked at each step), the target and adapter,
each environment variable the target reads (set or unset, secret or not — never a value),
which credential provider would run and what it would mint (issuer, audience, subject,
expiry — never the token), then connects as a test run would: the warehouse identity,
whether it can create a schema, and a warning when it is a superuser or owns a protected
target's schemas. The exit code is 0 only when tests could run; ``--json`` gives the same
report for machines.

* :mod:`.facts` — everything found before connecting;
* :mod:`.connection` — the live test;
* :mod:`.report` — findings, and their text and JSON forms.
"""

from __future__ import annotations

import argparse

from dbtproof.cli.doctor.connection import check_connection
from dbtproof.cli.doctor.facts import (
    check_credentials,
    check_environment,
    find_profiles,
    find_project,
    load_target,
    read_env_file,
)
from dbtproof.cli.doctor.report import Report
from dbtproof.errors import DbtproofError


def diagnose(args: argparse.Namespace) -> Report:
    """Run every check ``args`` (``dbtproof doctor``'s options) asks for; the live test only
    when nothing before it already stops tests from running."""
    from dbtproof.session.settings import parse_vars

    report = Report()
    try:
        cli_vars = parse_vars(args.vars)
    except DbtproofError as exc:
        report.add("project", "error", str(exc).replace("--dbt-vars", "--vars"))
        return report
    project = find_project(report, args.project_dir)
    if project is None:
        return report
    from_env_file = read_env_file(report)  # before the profile is found and rendered
    profiles_dir = find_profiles(report, args.profiles_dir)
    target = load_target(
        report, project, profiles_dir, args.target, cli_vars, args.allow_protected_target
    )
    if target is None:
        return report
    credentials = check_credentials(
        report, target, args.credentials or [], args.allow_untrusted_credentials, cli_vars
    )
    check_environment(
        report, target, credentials.variables if credentials else (), from_env_file=from_env_file
    )
    if credentials is None or not report.ok:
        report.add("connection", "info", "not tested: fix the errors above first")
        return report
    check_connection(report, project, target, credentials, cli_vars, args.allow_protected_target)
    return report


def doctor(args: argparse.Namespace) -> tuple[str, int]:
    """The report's text (or JSON with ``--json``) and the exit code: 0 when tests could run."""
    report = diagnose(args)
    return (report.json() if args.json else report.text()), (0 if report.ok else 1)
