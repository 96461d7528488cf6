"""The claims of a JWT (an OIDC identity token), read without checking its signature.

dbtproof is not the token's audience: the warehouse checks the signature. dbtproof only
reads when the token expires (to mint a new one in time) and what ``dbtproof doctor``
shows of it (issuer, audience, subject, expiry), never the token itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of *token* (``header.payload.signature``) as a dict, or None when
    *token* is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def number_claim(claims: dict[str, Any] | None, name: str) -> float | None:
    """A numeric date claim (``exp``, ``iat``, ``nbf``) as seconds since the epoch, or None."""
    value = (claims or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
