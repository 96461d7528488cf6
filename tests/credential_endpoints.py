"""Stand-ins for the CI's identity services, on loopback: what the credential tests mint from.

- :class:`GitHubTokenEndpoint`: an HTTP server on 127.0.0.1 playing GitHub Actions' token
  endpoint (``ACTIONS_ID_TOKEN_REQUEST_URL``): it checks the bearer request token and
  answers ``{"value": <a signed JWT>}`` for the audience asked;
- :func:`make_jwt`: a JWT signed with HMAC-SHA256 (standard library only, so the tests
  run where PyJWT is not installed), as GitLab would put it in an ``id_tokens`` variable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

#: The key the stand-ins sign with (HS256).
SIGNING_KEY = b"dbtproof-stand-in-signing-key-for-hs256"
#: The bearer token the stand-in endpoint expects (what GitHub puts in
#: ACTIONS_ID_TOKEN_REQUEST_TOKEN).
REQUEST_TOKEN = "request-token-7c1d2e"
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:acme/shop:ref:refs/heads/main"


def _segment(data: dict[str, Any]) -> bytes:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def make_jwt(claims: dict[str, Any], key: bytes = SIGNING_KEY) -> str:
    """A JWT of *claims*, signed with HS256."""
    signing_input = _segment({"alg": "HS256", "typ": "JWT"}) + b"." + _segment(claims)
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def claims_for(audience: str, lifetime: float, **extra: Any) -> dict[str, Any]:
    """GitHub-like claims for *audience*, issued now and valid *lifetime* seconds."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": audience,
        "sub": SUBJECT,
        "iat": now,
        "nbf": now,
        "exp": now + int(lifetime),
        "jti": f"{time.time_ns()}",
        **extra,
    }


@dataclass
class GitHubTokenEndpoint:
    """The stand-in token endpoint: its URL, what it was asked, and what it issued."""

    url: str
    #: Audiences asked, in order (one per token issued).
    audiences: list[str] = field(default_factory=list)
    #: Tokens issued, in order.
    issued: list[str] = field(default_factory=list)
    #: Seconds each issued token lives.
    lifetime: float = 300
    #: Called with each new token before it is served (e.g. to make it a role's password).
    on_issue: Callable[[str], None] | None = None
    #: When set, every request is answered with this token (no new one is minted).
    fixed: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def environ(self) -> dict[str, str]:
        """The variables a GitHub job with ``id-token: write`` has."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        }

    def issue(self, audience: str) -> str:
        """A new token for *audience* (or the fixed one)."""
        with self.lock:
            token = self.fixed or make_jwt(claims_for(audience, self.lifetime))
            if self.on_issue is not None:
                self.on_issue(token)
            self.audiences.append(audience)
            self.issued.append(token)
            return token


def _handler(endpoint: GitHubTokenEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.headers.get("Authorization") != f"Bearer {REQUEST_TOKEN}":
                self._answer(401, {"message": "bad request token"})
                return
            audience = parse_qs(urlsplit(self.path).query).get("audience", [""])[0]
            self._answer(200, {"value": endpoint.issue(audience), "count": 1})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

    return Handler


@contextmanager
def github_token_endpoint(**settings: Any) -> Iterator[GitHubTokenEndpoint]:
    """Serve a :class:`GitHubTokenEndpoint` on a free port of 127.0.0.1 for the block."""
    endpoint = GitHubTokenEndpoint(url="", **settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    host, port = server.server_address[:2]
    # GitHub's URL already carries a query; the audience is appended with '&'.
    endpoint.url = f"http://{host}:{port}/_apis/token?api-version=2.0"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubTokenEndpoint]:
    """The stand-in GitHub token endpoint, its variables in the environment (and no other
    CI identity variable of the shell)."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "ACTIONS_", "DBT_ENV_SECRET_")):
            monkeypatch.delenv(name)
    with github_token_endpoint() as served:
        for name, value in served.environ().items():
            monkeypatch.setenv(name, value)
        yield served
