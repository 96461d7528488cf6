"""Credential providers, one by one, against stand-ins on loopback (no mock of anything).

- github-oidc asks a real HTTP server on 127.0.0.1 for a token, with the request token
  and the audience, and reads its expiry from the JWT;
- gitlab-oidc reads the job's id token variable;
- aws-rds-iam signs an RDS token with botocore, locally, with fake AWS keys;
- tokens are reused while more than half their life remains, minted anew after;
- the variable exists only inside an export, and every minted value passes the callback;
- a third-party provider registered under the entry point group is found;
- untrusted GitHub events refuse to mint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from credential_endpoints import (
    ISSUER,
    REQUEST_TOKEN,
    SIGNING_KEY,
    SUBJECT,
    claims_for,
    github_token_endpoint,
    make_jwt,
)

from dbtproof.credentials import CredentialSet, TargetFacts, Token, available, load_credentials
from dbtproof.credentials.registry import create, parse_spec
from dbtproof.credentials.trust import untrusted_reason
from dbtproof.errors import CredentialError, UntrustedCredentialsError

VARIABLE = "DBT_ENV_SECRET_OIDC_TOKEN"


@pytest.fixture(autouse=True)
def _no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's own identity variables never leak into these tests."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "ACTIONS_", "AWS_", "DBT_ENV_SECRET_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DBT_OIDC_TOKEN", raising=False)


def export(credentials: CredentialSet) -> None:
    """Mint and export, then remove (what happens around each dbt invocation)."""
    with credentials.exported():
        pass


def facts(**settings: object) -> TargetFacts:
    """A target with these (already rendered) settings."""
    return TargetFacts("postgres", "ci", Path("/ci/profiles.yml"), settings.get)


# -- specs and the registry ----------------------------------------------------------


def test_spec_with_options() -> None:
    assert parse_spec("github-oidc:audience=sts.amazonaws.com, variable=DBT_ENV_SECRET_X") == (
        "github-oidc",
        {"audience": "sts.amazonaws.com", "variable": "DBT_ENV_SECRET_X"},
    )
    assert parse_spec("gitlab-oidc") == ("gitlab-oidc", {})
    # an audience may hold ':' (only the first one ends the name)
    assert parse_spec("github-oidc:audience=api://AzureADTokenExchange")[1] == {
        "audience": "api://AzureADTokenExchange"
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("github-oidc:audience", "'audience' is not key=value"),
        ("nope", "no credential provider 'nope'"),
        ("github-oidc", "needs audience=..."),
        ("github-oidc:audience=x,colour=red", "has no option colour"),
        ("github-oidc:audience=x,variable=OIDC_TOKEN", "starts with DBT_ENV_SECRET_"),
    ],
)
def test_bad_specs_are_one_clear_message(spec: str, message: str) -> None:
    with pytest.raises(CredentialError, match="^dbtproof: ") as raised:
        create(spec)
    assert message in str(raised.value)


def test_builtins_are_available() -> None:
    assert {"github-oidc", "gitlab-oidc", "aws-rds-iam"} <= set(available())


def test_two_providers_may_not_share_a_variable() -> None:
    with pytest.raises(CredentialError, match="both export DBT_ENV_SECRET_OIDC_TOKEN"):
        load_credentials(["github-oidc:audience=a", "gitlab-oidc"])


def register_provider(
    folder: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, entry: str
) -> None:
    """Install module *module* (*source*) as a distribution registering *entry*
    (``name = module:Class``) under the providers' entry point group, on sys.path."""
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[dbtproof.credentials]\n{entry}\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_a_third_party_provider_is_found_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "from dbtproof.credentials import CredentialProvider, Token\n"
        "class Static(CredentialProvider):\n"
        "    name = 'acme-static'\n"
        "    default_variable = 'DBT_ENV_SECRET_ACME'\n"
        "    options = {'value': 'the value'}\n"
        "    def mint(self):\n"
        "        return Token(self.settings['value'], expires_at=None, issued_at=0.0)\n"
    )
    register_provider(
        tmp_path, monkeypatch, "acme_creds", source, "acme-static = acme_creds:Static"
    )
    assert "acme-static" in available()
    credentials = load_credentials(["acme-static:value=s3cr3t"])
    with credentials.exported():
        assert os.environ["DBT_ENV_SECRET_ACME"] == "s3cr3t"
    assert "DBT_ENV_SECRET_ACME" not in os.environ


def test_an_entry_point_that_is_no_provider_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "class NotAProvider:\n    pass\n"
    register_provider(tmp_path, monkeypatch, "acme_bad", source, "acme-bad = acme_bad:NotAProvider")
    with pytest.raises(CredentialError, match="is not a subclass of"):
        create("acme-bad")


# -- github-oidc ----------------------------------------------------------------------


def test_github_oidc_asks_the_endpoint_for_the_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    with github_token_endpoint() as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        credentials = load_credentials(["github-oidc:audience=sts.amazonaws.com"])
        assert VARIABLE not in os.environ
        with credentials.exported():
            token = os.environ[VARIABLE]
        assert VARIABLE not in os.environ
    assert endpoint.audiences == ["sts.amazonaws.com"]
    assert token == endpoint.issued[0]
    described = credentials.describe()[0]
    assert described["issuer"] == ISSUER and described["subject"] == SUBJECT
    assert described["audience"] == "sts.amazonaws.com"
    assert token not in json.dumps(described) and token not in repr(credentials)


def test_github_oidc_token_verifies_as_a_signed_jwt(monkeypatch: pytest.MonkeyPatch) -> None:
    jwt = pytest.importorskip("jwt")
    with github_token_endpoint() as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        credentials = load_credentials(["github-oidc:audience=snowflake"])
        with credentials.exported():
            token = os.environ[VARIABLE]
    claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], audience="snowflake")
    assert claims["sub"] == SUBJECT


def test_github_oidc_reuses_a_token_until_half_its_life_then_mints_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with github_token_endpoint(lifetime=2) as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        credentials = load_credentials(["github-oidc:audience=a"])
        with credentials.exported():
            first = os.environ[VARIABLE]
        with credentials.exported():  # well within its life: reused
            assert os.environ[VARIABLE] == first
        time.sleep(1.2)  # past half of its two seconds
        with credentials.exported():
            second = os.environ[VARIABLE]
    assert second != first
    assert endpoint.issued == [first, second]


def test_every_minted_value_passes_the_callback_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    with github_token_endpoint(lifetime=2) as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        credentials = load_credentials(
            ["github-oidc:audience=a"], minted=lambda value, source: seen.append((value, source))
        )
        for _ in range(3):
            with credentials.exported():
                pass
        time.sleep(1.2)
        with credentials.exported():
            pass
    assert seen == [(token, f"github-oidc ({VARIABLE})") for token in endpoint.issued]
    assert len(seen) == 2


def test_an_export_gives_a_variable_set_before_its_value_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBT_OIDC_TOKEN", make_jwt(claims_for("a", 300)))
    monkeypatch.setenv(VARIABLE, "the shell's own")
    credentials = load_credentials(["gitlab-oidc"])
    with credentials.exported(), credentials.exported():  # nested: one export
        assert os.environ[VARIABLE] == os.environ["DBT_OIDC_TOKEN"]
    assert os.environ[VARIABLE] == "the shell's own"


def test_github_oidc_without_id_token_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = load_credentials(["github-oidc:audience=a"])
    with pytest.raises(CredentialError) as raised, credentials.exported():
        pass
    message = str(raised.value)
    assert "ACTIONS_ID_TOKEN_REQUEST_URL is not set" in message
    assert "permissions: id-token: write" in message
    assert VARIABLE not in os.environ


def test_github_oidc_with_a_refused_request_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with github_token_endpoint() as endpoint:
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", endpoint.url)
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "not-the-right-one")
        credentials = load_credentials(["github-oidc:audience=a"])
        with pytest.raises(CredentialError, match="answered HTTP 401") as raised:
            export(credentials)
    assert "not-the-right-one" not in str(raised.value)
    assert REQUEST_TOKEN not in str(raised.value)


def test_an_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    expired = make_jwt(claims_for("a", -60))
    with github_token_endpoint(fixed=expired) as endpoint:
        for name, value in endpoint.environ().items():
            monkeypatch.setenv(name, value)
        credentials = load_credentials(["github-oidc:audience=a"])
        with pytest.raises(CredentialError, match="minted a token that expired"):
            export(credentials)


# -- gitlab-oidc ----------------------------------------------------------------------


def test_gitlab_oidc_reads_the_id_token_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_jwt(claims_for("https://gitlab.example", 300, iss="https://gitlab.example"))
    monkeypatch.setenv("MY_ID_TOKEN", token)
    credentials = load_credentials(
        ["gitlab-oidc:source=MY_ID_TOKEN,audience=https://gitlab.example"]
    )
    with credentials.exported():
        assert os.environ[VARIABLE] == token
    assert VARIABLE not in os.environ
    assert credentials.describe()[0]["issuer"] == "https://gitlab.example"


def test_gitlab_oidc_refuses_another_audience_and_an_expired_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBT_OIDC_TOKEN", make_jwt(claims_for("other", 300)))
    with pytest.raises(CredentialError, match="is for audience 'other', not 'mine'"):
        export(load_credentials(["gitlab-oidc:audience=mine"]))
    monkeypatch.setenv("DBT_OIDC_TOKEN", make_jwt(claims_for("mine", -5)))
    with pytest.raises(CredentialError, match="expired at"):
        export(load_credentials(["gitlab-oidc"]))
    monkeypatch.delenv("DBT_OIDC_TOKEN")
    with pytest.raises(CredentialError, match="DBT_OIDC_TOKEN is not set"):
        export(load_credentials(["gitlab-oidc"]))


# -- aws-rds-iam ----------------------------------------------------------------------

HOST = "shop.cluster-abc123.eu-west-1.rds.amazonaws.com"


def _fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_aws_rds_iam_signs_a_token_for_the_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_aws(monkeypatch, tmp_path)
    credentials = load_credentials(["aws-rds-iam"])
    credentials.bind(facts(host=HOST, port=5432, user="ci_reader", sslmode="verify-full"))
    if importlib.util.find_spec("boto3") is None:
        with pytest.raises(CredentialError, match=r"pip install 'dbtproof\[aws\]'"):
            export(credentials)
        return
    with credentials.exported():
        token = os.environ["DBT_ENV_SECRET_RDS_TOKEN"]
    assert "DBT_ENV_SECRET_RDS_TOKEN" not in os.environ
    assert token.startswith(f"{HOST}:5432/?")
    query = parse_qs(urlsplit(f"//{token}").query)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["ci_reader"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert "/eu-west-1/rds-db/aws4_request" in query["X-Amz-Credential"][0]  # region of the host
    assert query["X-Amz-Expires"] == ["900"]
    described = credentials.describe()[0]
    assert described["host"] == HOST and described["user"] == "ci_reader"
    assert described["region"] == "eu-west-1"
    assert token not in json.dumps(described)


@pytest.mark.parametrize("sslmode", [None, "prefer", "allow", "disable"])
def test_aws_rds_iam_refuses_a_target_without_tls(sslmode: str | None) -> None:
    credentials = load_credentials(["aws-rds-iam:region=eu-west-1"])
    with pytest.raises(CredentialError, match="Set `sslmode: require`") as raised:
        credentials.bind(facts(host=HOST, user="ci", sslmode=sslmode))
    assert "target 'ci' (/ci/profiles.yml)" in str(raised.value)


def test_aws_rds_iam_needs_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = load_credentials(["aws-rds-iam"])
    with pytest.raises(CredentialError, match="no AWS region for db.internal"):
        credentials.bind(facts(host="db.internal", user="ci", sslmode="require"))
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    credentials.bind(facts(host="db.internal", user="ci", sslmode="require"))
    assert credentials.providers[0].region == "us-east-2"  # type: ignore[attr-defined]


# -- untrusted events -----------------------------------------------------------------


def _event(tmp_path: Path, head: str, base: str, fork: bool) -> str:
    path = tmp_path / "event.json"
    path.write_text(
        json.dumps(
            {
                "pull_request": {
                    "head": {"repo": {"full_name": head, "fork": fork}},
                    "base": {"repo": {"full_name": base, "fork": False}},
                }
            }
        )
    )
    return str(path)


def test_untrusted_github_events(tmp_path: Path) -> None:
    github = {"GITHUB_ACTIONS": "true"}
    assert untrusted_reason({}) is None
    assert untrusted_reason({**github, "GITHUB_EVENT_NAME": "push"}) is None
    reason = untrusted_reason({**github, "GITHUB_EVENT_NAME": "pull_request_target"})
    assert reason is not None and "pull_request_target" in reason
    fork = _event(tmp_path, "stranger/shop", "acme/shop", fork=True)
    pull = {**github, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": fork}
    assert "from the fork stranger/shop" in (untrusted_reason(pull) or "")
    # a branch of the base repository, even when that repository is itself a fork
    same = _event(tmp_path, "acme/shop", "acme/shop", fork=True)
    assert untrusted_reason({**pull, "GITHUB_EVENT_PATH": same}) is None
    missing = {**pull, "GITHUB_EVENT_PATH": str(tmp_path / "none.json")}
    assert "could not be read" in (untrusted_reason(missing) or "")


def test_untrusted_events_refuse_to_mint_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request_target")
    with pytest.raises(UntrustedCredentialsError) as raised:
        load_credentials(["github-oidc:audience=a"])
    assert "--dbt-allow-untrusted-credentials" in str(raised.value)
    assert load_credentials(["github-oidc:audience=a"], allow_untrusted=True)
    assert not load_credentials([])  # nothing to mint: nothing refused


def test_a_token_repr_never_shows_its_value() -> None:
    token = Token.from_jwt(make_jwt(claims_for("a", 300)))
    assert token.value not in repr(token) and token.value not in str(token)
    assert token.value not in repr(CredentialSet([]))


def test_a_gitlab_token_read_again_is_told_to_the_callback_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = int(time.time())
    claims = {**claims_for("a", 0), "iat": now - 100, "exp": now + 60}  # past half its life
    monkeypatch.setenv("DBT_OIDC_TOKEN", make_jwt(claims))
    seen: list[str] = []
    credentials = load_credentials(["gitlab-oidc"], minted=lambda value, _: seen.append(value))
    for _ in range(3):
        export(credentials)  # read again each time: it is past half its life
    assert seen == [os.environ["DBT_OIDC_TOKEN"]]
    assert credentials.generation == 1
