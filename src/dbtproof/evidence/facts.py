"""Who ran the run, on which commit, in which CI job, with which versions.

Read from the environment and ``git``, never from a secret: CI variables named here
hold identifiers and URLs only.
"""

from __future__ import annotations

import getpass
import os
import platform
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dbtproof.project.vcs import git


def ci_facts(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The CI provider, its run id, the run's URL and the actor; locally, the user."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repository, run_id = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        attempt = env.get("GITHUB_RUN_ATTEMPT")
        url = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None
        if url and attempt:
            url += f"/attempts/{attempt}"
        return {"provider": "github-actions", "run_id": run_id or None, "url": url,
                "actor": env.get("GITHUB_ACTOR"), "workflow": env.get("GITHUB_WORKFLOW"),
                "job": env.get("GITHUB_JOB"), "repository": repository or None}  # fmt: skip
    if env.get("GITLAB_CI") == "true":
        return {"provider": "gitlab-ci", "run_id": env.get("CI_PIPELINE_ID"),
                "url": env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL"),
                "actor": env.get("GITLAB_USER_LOGIN"), "job": env.get("CI_JOB_NAME"),
                "repository": env.get("CI_PROJECT_PATH")}  # fmt: skip
    if env.get("CI"):
        return {"provider": "ci", "run_id": None, "url": None, "actor": _local_user()}
    return {"provider": None, "run_id": None, "url": None, "actor": _local_user()}


def _local_user() -> str | None:
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return None


def _git(folder: Path, *args: str) -> str | None:
    out = git(folder, *args, timeout=30)
    return None if out is None else out.strip()


def git_commit(folder: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The commit of the git work tree *folder* is in (the CI's ``GITHUB_SHA`` /
    ``CI_COMMIT_SHA`` when there is no git)."""
    env = os.environ if environ is None else environ
    return _git(folder, "rev-parse", "HEAD") or env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA")


def git_facts(folder: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The commit, branch and dirtiness of the git work tree *folder* is in (the CI's
    ``GITHUB_SHA`` / ``CI_COMMIT_SHA`` when there is no git)."""
    env = os.environ if environ is None else environ
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": git_commit(folder, env), "branch": None, "dirty": None}
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": None if branch in (None, "HEAD") else branch,
        "dirty": None if status is None else bool(status),
    }


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def versions(adapter_type: str | None) -> dict[str, str | None]:
    """dbtproof's, dbt-core's, the adapter's, pytest's and Python's versions."""
    found = {
        "dbtproof": _version("dbtproof"),
        "dbt-core": _version("dbt-core"),
        "pytest": _version("pytest"),
        "python": platform.python_version(),
    }
    if adapter_type:
        found[f"dbt-{adapter_type}"] = _version(f"dbt-{adapter_type}")
    return found
