"""The credential providers and the profile target they mint for.

- :func:`bind_to_target` binds each provider to the target and refuses a provider whose
  variable the target never reads (it would mint for nothing);
- :func:`header_lines` says, for the run's header, what is minted and which settings read it;
- :func:`unset_secret_hint` names the ``DBT_ENV_SECRET_*`` variables a target reads that
  nobody sets or mints, and how to mint them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dbtproof.credentials.base import SECRET_PREFIX, TargetFacts
from dbtproof.credentials.minting import CredentialSet
from dbtproof.errors import CredentialError
from dbtproof.project.discovery import ProfileTarget, env_var_names_in


def bind_to_target(
    credentials: CredentialSet, target: ProfileTarget, render: Callable[[str], Any]
) -> None:
    """Bind every provider to *target* (settings rendered with *render*); refuse a provider
    whose variable the target never reads."""
    credentials.bind(TargetFacts.of(target, render))
    read = set(target.env_var_names())
    for provider in credentials.providers:
        if provider.variable not in read:
            raise CredentialError(
                f"dbtproof: credential provider {provider.name} exports {provider.variable}, "
                f"but target '{target.target_name}' ({target.profiles_path}) never reads it. "
                f"Read it where the target takes the credential, e.g. `password: "
                f"\"{{{{ env_var('{provider.variable}') }}}}\"`, or drop the provider."
            )


def header_lines(credentials: CredentialSet, settings: Mapping[str, Any]) -> list[str]:
    """One line per provider: the variable it mints and the *settings* (the target's,
    as written) that read it."""
    lines = []
    for provider in credentials.providers:
        keys = [
            key for key, value in settings.items() if provider.variable in env_var_names_in(value)
        ]
        lines.append(
            f"credentials: {provider.name} mints {provider.variable} before each dbt "
            f"invocation and connection (read by {', '.join(keys) or 'the target'})"
        )
    return lines


def unset_secret_hint(
    target: ProfileTarget,
    credentials: CredentialSet | None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A line naming the ``DBT_ENV_SECRET_*`` variables *target* reads that are neither set
    nor minted, and how to mint them; empty when there are none."""
    environ = os.environ if environ is None else environ
    minted = set(credentials.variables if credentials else ())
    unset = [
        name
        for name in target.env_var_names()
        if name.startswith(SECRET_PREFIX) and name not in environ and name not in minted
    ]
    if not unset:
        return ""
    return (
        f"{', '.join(unset)} is set by no one: set it, or mint it with --dbt-credentials "
        f"PROVIDER (github-oidc, gitlab-oidc, aws-rds-iam; see docs/how-to/ci.md)."
    )
