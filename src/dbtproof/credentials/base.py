"""The extension point: :class:`CredentialProvider`, the :class:`Token` it mints, and the
:class:`TargetFacts` it may read.

A provider is a small class registered under the ``dbtproof.credentials`` entry point
group (its name is the entry point's)::

    [project.entry-points."dbtproof.credentials"]
    databricks-oidc = "mypackage.creds:DatabricksOidc"

    class DatabricksOidc(CredentialProvider):
        name = "databricks-oidc"
        default_variable = "DBT_ENV_SECRET_DATABRICKS_TOKEN"
        options = {"host": "the workspace URL"}
        required = ("host",)

        def mint(self) -> Token:
            return Token.from_jwt(exchange(self.settings["host"]))

dbtproof creates it from ``--dbt-credentials NAME:key=value,...`` (options checked against
:attr:`CredentialProvider.options`), binds it to the target once the profile is read
(:meth:`CredentialProvider.bind`), and calls :meth:`CredentialProvider.mint` whenever the
last token is past half its life, just before a dbt invocation or a connection dbtproof
opens. The value is exported only as :attr:`CredentialProvider.variable`, a
``DBT_ENV_SECRET_*`` variable the profile reads with ``env_var()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from dbtproof.credentials.claims import jwt_claims, number_claim
from dbtproof.errors import CredentialError
from dbtproof.project.targets import is_template

if TYPE_CHECKING:
    from dbtproof.project.discovery import ProfileTarget

#: dbt scrubs the values of environment variables whose names start with this from its
#: logs; a provider exports only such variables.
SECRET_PREFIX = "DBT_ENV_SECRET_"


@dataclass(frozen=True, repr=False)
class Token:
    """One minted credential: its value, and when it stops being valid.

    The repr never shows the value (``pytest --showlocals`` prints locals).
    """

    value: str = field(compare=False)
    #: Seconds since the epoch after which the token is refused; None: unknown.
    expires_at: float | None
    #: When it was issued (its life runs from here to :attr:`expires_at`).
    issued_at: float
    #: What the token says of itself (a JWT's claims), shown by ``dbtproof doctor``.
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        return f"Token(value=<redacted>, expires_at={self.expires_at!r})"

    __str__ = __repr__

    @classmethod
    def from_jwt(cls, value: str, now: float | None = None) -> Token:
        """A token for the JWT *value*, its life read from its ``iat``/``exp`` claims."""
        now = time.time() if now is None else now
        claims = jwt_claims(value) or {}
        issued = number_claim(claims, "iat")
        return cls(
            value=value,
            expires_at=number_claim(claims, "exp"),
            issued_at=now if issued is None or issued > now else issued,
            claims=MappingProxyType(dict(claims)),
        )

    def reusable(self, now: float | None = None) -> bool:
        """Whether the token may be used again: while more than half its life remains.

        A token whose expiry is unknown is never reused.
        """
        if self.expires_at is None:
            return False
        now = time.time() if now is None else now
        return now < self.expires_at - (self.expires_at - self.issued_at) / 2


@dataclass(frozen=True)
class TargetFacts:
    """What a provider may read of the dbt target it mints for."""

    adapter_type: str
    target_name: str
    profiles_path: Path
    #: The rendered value of one of the target's settings (``host``, ``port``, ``sslmode``
    #: ...), None when the target does not set it.
    setting: Callable[[str], Any]

    @classmethod
    def of(cls, target: ProfileTarget, render: Callable[[str], Any]) -> TargetFacts:
        """The facts of a profile target, its templated settings rendered with *render*
        (dbt's profile rendering) when a provider asks for them."""

        def setting(key: str) -> Any:
            value = target.raw_output.get(key)
            return render(value) if is_template(value) else value

        return cls(target.adapter_type, target.target_name, target.profiles_path, setting)

    @property
    def where(self) -> str:
        """``target 'dev' (path/profiles.yml)``, for messages."""
        return f"target '{self.target_name}' ({self.profiles_path})"


def expiry_text(seconds: float | None) -> str:
    """An expiry for people: ISO time in UTC, or ``unknown``."""
    if seconds is None:
        return "unknown"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CredentialProvider:
    """Base class of credential providers (see the module's docstring for how to write one).

    Subclasses set :attr:`name`, :attr:`default_variable`, :attr:`options` (each option
    they accept, with a one-line help) and :attr:`required`, and implement :meth:`mint`.
    ``variable`` is always accepted: the ``DBT_ENV_SECRET_*`` variable to export into.
    """

    #: The name ``--dbt-credentials`` uses.
    name: ClassVar[str] = ""
    #: The variable the token is exported as unless ``variable=`` says otherwise.
    default_variable: ClassVar[str] = "DBT_ENV_SECRET_TOKEN"
    #: Options the provider accepts (besides ``variable``), with a one-line help each.
    options: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: Options that must be given.
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, settings: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> None:
        """Check *settings* (the ``key=value`` options of ``--dbt-credentials``).

        *environ* is where the provider reads the CI's variables (``os.environ``).
        """
        label = self.name or type(self).__name__
        known = {"variable", *self.options}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise CredentialError(
                f"dbtproof: credential provider {label} has no option {', '.join(unknown)} "
                f"(--dbt-credentials / ini dbt_credentials). Its options: "
                f"{', '.join(sorted(known))}."
            )
        missing = [key for key in self.required if not settings.get(key)]
        if missing:
            raise CredentialError(
                f"dbtproof: credential provider {label} needs "
                f"{', '.join(f'{key}=...' for key in missing)}: write it as "
                f"--dbt-credentials {label}:{missing[0]}=VALUE (or the same line in the "
                f"dbt_credentials ini key)."
            )
        self.settings = dict(settings)
        self.environ = os.environ if environ is None else environ
        self.variable = self.settings.pop("variable", "") or self.default_variable
        if not self.variable.startswith(SECRET_PREFIX) or self.variable == SECRET_PREFIX:
            raise CredentialError(
                f"dbtproof: credential provider {label} exports into {self.variable!r}, which "
                f"dbt would not treat as a secret: name a variable that starts with "
                f"{SECRET_PREFIX} (variable={SECRET_PREFIX}...), and read it in profiles.yml "
                f"with env_var()."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, variable={self.variable!r})"

    def bind(self, target: TargetFacts) -> None:
        """Check the target and read what minting needs from it (default: nothing).

        Raise :class:`~dbtproof.errors.CredentialError` to refuse the target.
        """

    def mint(self) -> Token:
        """Mint a new credential (a network call, a signature, or reading the CI's variable)."""
        raise NotImplementedError(f"{type(self).__name__}.mint")

    def describe(self, token: Token) -> dict[str, str]:
        """What ``dbtproof doctor`` shows of *token*: never its value.

        The default reads a JWT's issuer, audience, subject and expiry.
        """
        claims = token.claims
        audience = claims.get("aud")
        if isinstance(audience, list):
            audience = ", ".join(str(item) for item in audience)
        described = {
            "issuer": str(claims.get("iss", "?")),
            "audience": str(audience if audience is not None else "?"),
            "subject": str(claims.get("sub", "?")),
        }
        described["expires"] = expiry_text(token.expires_at)
        return described
