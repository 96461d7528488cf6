"""Credential providers: short-lived credentials minted from the CI runner's identity.

``--dbt-credentials NAME[:key=value,...]`` (repeatable; ini ``dbt_credentials``, one per
line) mints a credential just before every dbt invocation and every connection dbtproof
opens, exports it only as a ``DBT_ENV_SECRET_*`` variable the profile reads with
``env_var()``, and removes it afterwards.

One module per job:

* :mod:`.base` — the extension point: :class:`CredentialProvider`, :class:`Token`,
  :class:`TargetFacts`;
* :mod:`.registry` — specs, built-ins and the ``dbtproof.credentials`` entry points;
* :mod:`.minting` — :class:`CredentialSet`: tokens reused while more than half their
  life remains, exported around dbt, and every minted value handed to one callback;
* :mod:`.trust` — no minting for untrusted code (GitHub ``pull_request_target``, forks);
* :mod:`.claims` — a JWT's claims (expiry; what ``dbtproof doctor`` shows);
* :mod:`.github`, :mod:`.gitlab`, :mod:`.aws_rds` — the built-in providers.

Nothing here imports dbt: rendering the profile with a fresh token is
:func:`dbtproof._dbt_compat.refresh_credentials`.
"""

from __future__ import annotations

from dbtproof.credentials.base import SECRET_PREFIX, CredentialProvider, TargetFacts, Token
from dbtproof.credentials.minting import CredentialSet, MintedCallback, load_credentials
from dbtproof.credentials.registry import ENTRY_POINT_GROUP, available

__all__ = (
    "ENTRY_POINT_GROUP",
    "SECRET_PREFIX",
    "CredentialProvider",
    "CredentialSet",
    "MintedCallback",
    "TargetFacts",
    "Token",
    "available",
    "load_credentials",
)
