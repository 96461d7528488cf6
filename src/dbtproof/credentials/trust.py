"""Whether this CI run may mint credentials: not for code nobody trusted.

On GitHub Actions (``GITHUB_ACTIONS=true``):

- a ``pull_request_target`` run has the base repository's rights while the tests
  run whatever the pull request checked out: never mint there by default;
- a ``pull_request*`` run whose head repository is not the base repository (a fork)
  runs a stranger's code. The event file (``GITHUB_EVENT_PATH``) says:
  ``pull_request.head.repo.full_name`` differs from ``pull_request.base.repo.full_name``
  (or, when the base is not named, ``pull_request.head.repo.fork`` is true). A branch
  of the base repository itself is trusted even when that repository is a fork of
  another. An event file that cannot be read is not trusted.

``--dbt-allow-untrusted-credentials`` overrides the refusal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _repo(payload: Mapping[str, Any], side: str) -> Mapping[str, Any] | None:
    pull_request = payload.get("pull_request")
    if not isinstance(pull_request, Mapping):
        return None
    branch = pull_request.get(side)
    repo = branch.get("repo") if isinstance(branch, Mapping) else None
    return repo if isinstance(repo, Mapping) else None


def untrusted_reason(environ: Mapping[str, str]) -> str | None:
    """Why minting would hand credentials to untrusted code, or None when it would not."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return None
    event = environ.get("GITHUB_EVENT_NAME", "")
    if event == "pull_request_target":
        return (
            "this is a GitHub Actions `pull_request_target` run: it has the base repository's "
            "rights while the tests run the pull request's code"
        )
    if not event.startswith("pull_request"):
        return None
    path = environ.get("GITHUB_EVENT_PATH", "")
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        payload = None
    if not isinstance(payload, Mapping):
        return (
            f"this is a GitHub Actions `{event}` run whose event file (GITHUB_EVENT_PATH="
            f"{path or 'unset'}) could not be read to rule out a pull request from a fork"
        )
    head, base = _repo(payload, "head"), _repo(payload, "base")
    if head is None:
        return f"this `{event}` run's head repository is gone (a deleted fork)"
    name = str(head.get("full_name", "?"))
    from_fork = name != base.get("full_name") if base is not None else bool(head.get("fork"))
    if from_fork:
        return f"this `{event}` run tests a pull request from the fork {name}"
    return None
