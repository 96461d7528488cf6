"""``gitlab-oidc``: the GitLab CI job's ``id_tokens:`` token.

GitLab mints the token when the job starts and hands it over as the variable the job
definition names (``id_tokens: {DBT_OIDC_TOKEN: {aud: ...}}``). Minting here is
reading that variable, checking it has not expired (and, with ``audience=``, that it
is for that audience), and exporting it as a ``DBT_ENV_SECRET_*`` variable, which dbt
scrubs from its logs.
"""

from __future__ import annotations

import time
from types import MappingProxyType

from dbtproof.credentials.base import CredentialProvider, Token, expiry_text
from dbtproof.errors import CredentialError


class GitLabOidc(CredentialProvider):
    """The GitLab job's id token, read from the variable ``id_tokens:`` declares."""

    name = "gitlab-oidc"
    default_variable = "DBT_ENV_SECRET_OIDC_TOKEN"
    options = MappingProxyType(
        {
            "source": "the variable named under the job's id_tokens: (default DBT_OIDC_TOKEN)",
            "audience": "check that the token is for this audience (its aud claim)",
        }
    )

    @property
    def source(self) -> str:
        """The variable GitLab puts the token in."""
        return self.settings.get("source") or "DBT_OIDC_TOKEN"

    def mint(self) -> Token:
        """Read the job's id token; refuse one that expired or is for another audience."""
        value = self.environ.get(self.source)
        if not value:
            raise CredentialError(
                f"dbtproof: gitlab-oidc cannot mint: {self.source} is not set. Declare it in "
                f"the job: `id_tokens: {{{self.source}: {{aud: <audience>}}}}`, or name your "
                f"id token's variable with --dbt-credentials gitlab-oidc:source=NAME."
            )
        token = Token.from_jwt(value)
        if token.expires_at is not None and token.expires_at <= time.time():
            raise CredentialError(
                f"dbtproof: gitlab-oidc: the id token in {self.source} expired at "
                f"{expiry_text(token.expires_at)}; GitLab issues it once, when the job starts. "
                f"Rerun the job, or split long test runs into jobs of their own."
            )
        audience = self.settings.get("audience")
        claimed = token.claims.get("aud")
        claimed_list = claimed if isinstance(claimed, list) else [claimed]
        if audience and audience not in claimed_list:
            raise CredentialError(
                f"dbtproof: gitlab-oidc: the id token in {self.source} is for audience "
                f"{claimed!r}, not {audience!r} (audience= of --dbt-credentials). Set "
                f"`aud: {audience}` under the job's id_tokens: {self.source}."
            )
        return token
