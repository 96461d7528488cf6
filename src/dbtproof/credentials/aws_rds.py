"""``aws-rds-iam``: an RDS/Aurora IAM authentication token, used as the password.

dbt-postgres has no IAM login, but RDS accepts a token from boto3's
``generate_db_auth_token(host, port, user, region)`` as the password. The token is a
presigned URL signed locally with the runner's AWS credentials (no AWS call is made),
valid 15 minutes; it travels as a password, so the target must require TLS
(``sslmode: require``, ``verify-ca`` or ``verify-full``). boto3 is an optional extra:
``pip install 'dbtproof[aws]'``.
"""

from __future__ import annotations

import re
from calendar import timegm
from collections.abc import Mapping
from time import strptime
from types import MappingProxyType
from urllib.parse import parse_qs, urlsplit

from dbtproof.credentials.base import CredentialProvider, TargetFacts, Token, expiry_text
from dbtproof.errors import CredentialError

#: ``sslmode`` values that encrypt the connection (libpq's names).
STRICT_SSLMODES = ("require", "verify-ca", "verify-full")
#: ``<id>.<hash>.<region>.rds.amazonaws.com``: the region of an RDS endpoint.
_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com\.?$")


def token_expiry(token: str) -> tuple[float, float] | None:
    """``(issued, expires)`` of a presigned RDS token, from its X-Amz-Date/X-Amz-Expires."""
    query = parse_qs(urlsplit(f"//{token}").query)
    try:
        issued = float(timegm(strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")))
        return issued, issued + float(query["X-Amz-Expires"][0])
    except (KeyError, IndexError, ValueError):
        return None


class AwsRdsIam(CredentialProvider):
    """An RDS IAM auth token for the target's host, port and user."""

    name = "aws-rds-iam"
    default_variable = "DBT_ENV_SECRET_RDS_TOKEN"
    options = MappingProxyType(
        {
            "region": "the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, or the host's)",
            "host": "the endpoint to sign for (default: the target's host)",
            "port": "its port (default: the target's port, else 5432)",
            "user": "the database user (default: the target's user)",
        }
    )

    def __init__(
        self, settings: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> None:
        """Check the options; host, port and user default to the target's (:meth:`bind`)."""
        super().__init__(settings, environ)
        self.host: str = self.settings.get("host", "")
        self.port: int | None = None
        self.user: str = self.settings.get("user", "")
        self.region: str = ""

    def bind(self, target: TargetFacts) -> None:
        """Read host, port and user from the target; refuse it unless it requires TLS."""
        sslmode = str(target.setting("sslmode") or "")
        if sslmode not in STRICT_SSLMODES:
            raise CredentialError(
                f"dbtproof: aws-rds-iam refuses {target.where}: its sslmode is "
                f"{sslmode or 'not set'}, and the IAM token travels as the password. Set "
                f"`sslmode: require` (or verify-ca / verify-full) in the target, then rerun."
            )
        self.host = self.host or str(target.setting("host") or "")
        self.user = self.user or str(target.setting("user") or target.setting("username") or "")
        port = self.settings.get("port") or target.setting("port") or 5432
        try:
            self.port = int(port)
        except (TypeError, ValueError):
            raise CredentialError(
                f"dbtproof: aws-rds-iam: port {port!r} of {target.where} is not a number."
            ) from None
        if not self.host or not self.user:
            missing = "host" if not self.host else "user"
            raise CredentialError(
                f"dbtproof: aws-rds-iam: {target.where} sets no {missing}. Set it in the "
                f"target, or pass --dbt-credentials aws-rds-iam:{missing}=VALUE."
            )
        match = _RDS_HOST.search(self.host)
        self.region = (
            self.settings.get("region")
            or self.environ.get("AWS_REGION")
            or self.environ.get("AWS_DEFAULT_REGION")
            or (match.group(1) if match else "")
        )
        if not self.region:
            raise CredentialError(
                f"dbtproof: aws-rds-iam: no AWS region for {self.host}: pass "
                f"--dbt-credentials aws-rds-iam:region=REGION, or set AWS_REGION."
            )

    def mint(self) -> Token:
        """Sign a token with boto3 (locally: no AWS call)."""
        if self.port is None:
            raise CredentialError("dbtproof: aws-rds-iam was not bound to a target.")
        try:
            import boto3
            import botocore.exceptions
        except ImportError:
            raise CredentialError(
                "dbtproof: the aws-rds-iam credential provider needs boto3, which is not "
                "installed: pip install 'dbtproof[aws]'."
            ) from None
        try:
            client = boto3.session.Session(region_name=self.region).client("rds")
            value = client.generate_db_auth_token(
                DBHostname=self.host, Port=self.port, DBUsername=self.user, Region=self.region
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise CredentialError(
                f"dbtproof: aws-rds-iam cannot sign a token for {self.user}@{self.host}:"
                f"{self.port} ({self.region}): {exc}. Give the job AWS credentials (e.g. "
                f"aws-actions/configure-aws-credentials with a role), then rerun."
            ) from None
        life = token_expiry(value)
        if life is None:
            return Token(value=value, expires_at=None, issued_at=0.0)
        return Token(value=value, expires_at=life[1], issued_at=life[0])

    def describe(self, token: Token) -> dict[str, str]:
        """Endpoint, user, region and expiry of the token."""
        return {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "region": self.region,
            "expires": expiry_text(token.expires_at),
        }
