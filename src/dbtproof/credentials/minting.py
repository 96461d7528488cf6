"""A run's credential providers at work: mint in time, export around dbt, remove after.

:class:`CredentialSet` holds the run's providers and their last tokens. Around each dbt
invocation (:class:`dbtproof.session.runner.DbtRunner`) and before each connection dbtproof opens
(:meth:`dbtproof.session.session.DbtSession.adapter`), :meth:`CredentialSet.exported` mints
whatever token is past half its life and sets each provider's ``DBT_ENV_SECRET_*``
variable in ``os.environ``; when the block ends the variable is removed again (or given
back the value it had). Every value minted passes through one callback, ``minted(value,
source)`` (the per-run state's :meth:`dbtproof.plugin.state.DbtproofState.minted`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dbtproof.credentials.base import CredentialProvider, TargetFacts, Token, expiry_text
from dbtproof.credentials.registry import create
from dbtproof.credentials.trust import untrusted_reason
from dbtproof.errors import CredentialError, UntrustedCredentialsError

#: ``minted(value, source)``: told of every value a provider mints.
MintedCallback = Callable[[str, str], None]


class CredentialSet:
    """The run's credential providers, their current tokens and their export."""

    def __init__(
        self, providers: Sequence[CredentialProvider], minted: MintedCallback | None = None
    ) -> None:
        """*minted* is called once with each new value and where it came from."""
        seen: dict[str, str] = {}
        for provider in providers:
            if provider.variable in seen:
                raise CredentialError(
                    f"dbtproof: credential providers {seen[provider.variable]} and "
                    f"{provider.name} both export {provider.variable}: give one of them "
                    f"another variable=DBT_ENV_SECRET_... in --dbt-credentials."
                )
            seen[provider.variable] = provider.name
        self.providers = tuple(providers)
        self._minted = minted
        self._tokens: dict[str, Token] = {}
        self._lock = threading.RLock()
        self._depth = 0
        self._saved: dict[str, str | None] = {}
        #: How many tokens were minted so far: it changes whenever an exported value does.
        self.generation = 0
        #: The adapter credentials last rendered onto, and the generation rendered there.
        self._rendered: tuple[Any, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.providers)

    def __repr__(self) -> str:
        names = ", ".join(f"{p.name}->{p.variable}" for p in self.providers)
        return f"CredentialSet({names})"

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables the providers export."""
        return tuple(provider.variable for provider in self.providers)

    def descriptions(self) -> list[dict[str, str]]:
        """What each provider's current token is (issuer, audience, subject, expiry ...:
        :meth:`CredentialProvider.describe`), never its value; a provider that has not
        minted yet is named alone."""
        described = []
        for provider in self.providers:
            token = self._tokens.get(provider.variable)
            facts = {"provider": provider.name, "variable": provider.variable}
            if token is not None:
                facts.update(provider.describe(token))
            described.append(facts)
        return described

    def bind(self, target: TargetFacts) -> None:
        """Bind every provider to the target (a provider may refuse it)."""
        for provider in self.providers:
            provider.bind(target)

    def _token(self, provider: CredentialProvider) -> Token:
        """The provider's token: the last one while reusable, else a new one (a value other than
        the last one is counted in :attr:`generation` and told to the callback)."""
        token = self._tokens.get(provider.variable)
        now = time.time()
        if token is not None and token.reusable(now):
            return token
        token = provider.mint()
        if token.expires_at is not None and token.expires_at <= now:
            raise CredentialError(
                f"dbtproof: credential provider {provider.name} minted a token that expired "
                f"at {expiry_text(token.expires_at)}, before it could be used. Check the "
                f"runner's clock, then rerun."
            )
        previous = self._tokens.get(provider.variable)
        self._tokens[provider.variable] = token
        if previous is None or previous.value != token.value:  # GitLab's stays the same
            self.generation += 1
            if self._minted is not None:
                self._minted(token.value, f"{provider.name} ({provider.variable})")
        return token

    @contextmanager
    def exported(self) -> Iterator[None]:
        """Set each provider's variable to a fresh token for the block, then remove it.

        Nested blocks share the outer block's tokens; a variable that was set before the
        outermost block gets its value back after it.
        """
        with self._lock:
            if self._depth == 0 and self.providers:
                values = {p.variable: self._token(p).value for p in self.providers}
                self._saved = {name: os.environ.get(name) for name in values}
                os.environ.update(values)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    saved, self._saved = self._saved, {}
                    for name, previous in saved.items():
                        if previous is None:
                            os.environ.pop(name, None)
                        else:
                            os.environ[name] = previous

    def render_onto(
        self, adapter_credentials: Any, settings: Mapping[str, Any], cli_vars: Mapping[str, Any]
    ) -> None:
        """Render *settings* (a target's settings that read minted variables, as written)
        with fresh tokens onto *adapter_credentials* (the dbt adapter's), when a token was
        minted since they were last rendered there.

        dbt renders ``env_var()`` once per invocation and opens every later connection of
        its adapter with the result; this is what makes a connection dbtproof opens after
        a token expired log in with a new one.
        """
        if not self.providers or not settings:
            return
        from dbtproof import _dbt_compat as compat

        with self.exported():
            last = self._rendered
            if last is not None and last[0] is adapter_credentials and last[1] == self.generation:
                return
            compat.refresh_credentials(adapter_credentials, dict(settings), dict(cli_vars))
            self._rendered = (adapter_credentials, self.generation)

    def describe(self) -> list[dict[str, str]]:
        """For each provider, what it mints now (never the value), or why it cannot."""
        described = []
        for provider in self.providers:
            entry = {"provider": provider.name, "variable": provider.variable}
            try:
                with self._lock:
                    entry.update(provider.describe(self._token(provider)))
            except CredentialError as exc:
                entry["error"] = str(exc)
            described.append(entry)
        return described


def load_credentials(
    specs: Sequence[str],
    allow_untrusted: bool = False,
    environ: Mapping[str, str] | None = None,
    minted: MintedCallback | None = None,
) -> CredentialSet:
    """The providers *specs* name (``--dbt-credentials`` / ini ``dbt_credentials``).

    :raises UntrustedCredentialsError: when there are providers and the CI run is
        untrusted (:func:`dbtproof.credentials.trust.untrusted_reason`), unless
        *allow_untrusted* (``--dbt-allow-untrusted-credentials``).
    """
    environ = os.environ if environ is None else environ
    specs = [spec for spec in specs if spec.strip()]
    if specs and not allow_untrusted:
        reason = untrusted_reason(environ)
        if reason is not None:
            names = ", ".join(spec.strip().partition(":")[0] for spec in specs)
            raise UntrustedCredentialsError(
                f"dbtproof: refusing to mint credentials ({names}, from --dbt-credentials / "
                f"ini dbt_credentials): {reason}, and that code could read them. Run the tests "
                f"without credentials for such events (e.g. `if: "
                f"github.event.pull_request.head.repo.full_name == github.repository`), or pass "
                f"--dbt-allow-untrusted-credentials if this workflow runs only trusted code."
            )
    return CredentialSet([create(spec, environ) for spec in specs], minted)
