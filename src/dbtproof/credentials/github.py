"""``github-oidc``: the GitHub Actions job's OIDC identity token.

A job with ``permissions: id-token: write`` has ``ACTIONS_ID_TOKEN_REQUEST_URL`` and
``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; ``GET $URL&audience=<aud>`` with
``Authorization: Bearer $TOKEN`` answers ``{"value": "<jwt>"}``, a token that lives
about five minutes. The audience is always explicit (``audience=``): it is what the
warehouse's identity federation checks.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from urllib.parse import quote, urlsplit

from dbtproof.credentials.base import CredentialProvider, Token
from dbtproof.errors import CredentialError

URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
#: Seconds to wait for the token endpoint.
TIMEOUT = 30


class GitHubOidc(CredentialProvider):
    """The GitHub Actions identity token for an audience, exported into a variable."""

    name = "github-oidc"
    default_variable = "DBT_ENV_SECRET_OIDC_TOKEN"
    options = MappingProxyType(
        {"audience": "the audience the warehouse expects (the token's aud claim)"}
    )
    required = ("audience",)

    def _request(self) -> tuple[str, str]:
        """The endpoint's URL for the audience, and the request token."""
        url, bearer = self.environ.get(URL_VARIABLE), self.environ.get(REQUEST_TOKEN_VARIABLE)
        if not url or not bearer:
            missing = URL_VARIABLE if not url else REQUEST_TOKEN_VARIABLE
            raise CredentialError(
                f"dbtproof: github-oidc cannot mint: {missing} is not set. GitHub sets it only "
                f"in a job with `permissions: id-token: write` (and never for a pull request "
                f"from a fork): add that to the workflow's job (see docs/how-to/ci.md)."
            )
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}audience={quote(self.settings['audience'], safe='')}", bearer

    def mint(self) -> Token:
        """Ask the job's token endpoint for a token with the configured audience."""
        import urllib.error
        import urllib.request

        url, bearer = self._request()
        endpoint = urlsplit(url).netloc or "?"
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise CredentialError(
                f"dbtproof: github-oidc: the token endpoint ({endpoint}, from {URL_VARIABLE}) "
                f"answered HTTP {exc.code} {exc.reason}. Check the job's `permissions: "
                f"id-token: write` and rerun the job (its request token may have expired)."
            ) from None
        except (OSError, ValueError) as exc:
            raise CredentialError(
                f"dbtproof: github-oidc: no token from the endpoint ({endpoint}, from "
                f"{URL_VARIABLE}): {exc}. Rerun the job; if it persists, check the runner's "
                f"network."
            ) from None
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise CredentialError(
                f"dbtproof: github-oidc: the token endpoint ({endpoint}) answered without a "
                f'"value". Rerun the job; check that {URL_VARIABLE} is GitHub\'s.'
            )
        return Token.from_jwt(value)
