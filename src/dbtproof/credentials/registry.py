"""Which provider a ``--dbt-credentials`` spec names, and with which options.

A spec is ``NAME`` or ``NAME:key=value,key=value`` (``github-oidc:audience=sts.amazonaws.com,
variable=DBT_ENV_SECRET_OIDC_TOKEN``): the option is repeatable, and the ``dbt_credentials``
ini key takes one spec per line. Names are looked up among dbtproof's built-ins, then in
the ``dbtproof.credentials`` entry point group, where third-party providers register.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from dbtproof.credentials.base import CredentialProvider
from dbtproof.errors import CredentialError

#: The entry point group providers register in.
ENTRY_POINT_GROUP = "dbtproof.credentials"

#: dbtproof's own providers (also registered in the group by its package metadata).
BUILTIN = MappingProxyType(
    {
        "github-oidc": "dbtproof.credentials.github:GitHubOidc",
        "gitlab-oidc": "dbtproof.credentials.gitlab:GitLabOidc",
        "aws-rds-iam": "dbtproof.credentials.aws_rds:AwsRdsIam",
    }
)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``(name, options)`` of one ``NAME:key=value,...`` spec."""
    name, _, rest = spec.strip().partition(":")
    options: dict[str, str] = {}
    for part in rest.split(","):
        if not part.strip():
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise CredentialError(
                f"dbtproof: --dbt-credentials {spec.strip()!r}: {part.strip()!r} is not "
                f"key=value. Write NAME:key=value,key=value (e.g. "
                f"github-oidc:audience=sts.amazonaws.com)."
            )
        options[key.strip()] = value.strip()
    if not name.strip():
        raise CredentialError(
            f"dbtproof: --dbt-credentials {spec!r} names no provider. Available: "
            f"{', '.join(available())}."
        )
    return name.strip(), options


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def available() -> list[str]:
    """Names of every provider that can be used here (built-in or registered)."""
    return sorted({*BUILTIN, *(entry.name for entry in _entry_points())})


def provider_class(name: str) -> type[CredentialProvider]:
    """The provider class called *name*: a built-in, else the entry point of that name."""
    if name in BUILTIN:
        module, _, attribute = BUILTIN[name].partition(":")
        loaded: object = getattr(importlib.import_module(module), attribute)
    else:
        found = [entry for entry in _entry_points() if entry.name == name]
        if not found:
            raise CredentialError(
                f"dbtproof: no credential provider {name!r} (--dbt-credentials / ini "
                f"dbt_credentials). Available: {', '.join(available())}; others register in "
                f"the {ENTRY_POINT_GROUP!r} entry point group."
            )
        try:
            loaded = found[0].load()
        except Exception as exc:  # noqa: BLE001 - a third party's import error, whatever it is
            raise CredentialError(
                f"dbtproof: credential provider {name!r} ({found[0].value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}. Check that its package is installed."
            ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, CredentialProvider)):
        raise CredentialError(
            f"dbtproof: credential provider {name!r} is not a subclass of "
            f"dbtproof.credentials.CredentialProvider. Fix its entry point."
        )
    return loaded


def create(spec: str, environ: Mapping[str, str] | None = None) -> CredentialProvider:
    """The provider a spec names, its options checked; it reads the CI's variables from
    *environ* (``os.environ``)."""
    name, options = parse_spec(spec)
    return provider_class(name)(options, environ)
