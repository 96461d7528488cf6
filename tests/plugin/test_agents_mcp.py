"""``dbtproof mcp`` driven by the MCP SDK's own client over stdio, as an agent would.

Every test starts the real server (a subprocess running ``dbtproof mcp``) on a copy of
the example project with a sample made by ``take_sample`` (what ``dbtproof sample``
runs), and talks to it through ``mcp.ClientSession`` over ``stdio_client``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("mcp")

from conftest import CANARY_ENV, PG_DATABASE, PG_HOST, PG_PORT, PG_ROLE  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp import types as mcp_types  # noqa: E402

from dbtproof.agents.sample import SampleOptions, take_sample  # noqa: E402
from dbtproof.evidence.verify import verify  # noqa: E402

DBTPROOF = Path(sys.executable).parent / "dbtproof"
CANARY_LITERAL = "canary-literal-password-4Kd9wV"
#: How long one tool call may take (a first call opens the workspace and builds).
CALL_SECONDS = 300


@dataclass
class Transcript:
    """What the client saw: every call with its arguments and answer, every form."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    stderr: str = ""
    #: What a scenario chose, for the checks after it.
    chosen: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """Everything the client received or the server logged, as one text."""
        return json.dumps(self.calls) + "\n".join(self.forms) + self.stderr

    def last(self) -> dict[str, Any]:
        """The last call's record."""
        return self.calls[-1]


class Agent:
    """A connected client session that records what it does."""

    def __init__(self, session: ClientSession, transcript: Transcript) -> None:
        self.session = session
        self.transcript = transcript

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call *tool*; the record: error flag, structured result or error text."""
        result = await self.session.call_tool(tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        record = {
            "tool": tool,
            "arguments": arguments,
            "is_error": result.is_error,
            "result": result.structured_content,
            "text": text,
        }
        self.transcript.calls.append(record)
        return record


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), **extra}
    env.pop("prefix", None)
    return {key: value for key, value in env.items() if value}


def run_agent(
    project: Path,
    env: dict[str, str],
    scenario: Callable[[Agent], Awaitable[None]],
    *,
    target: str,
    approve: bool | None = True,
    evidence: Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> Transcript:
    """Start ``dbtproof mcp`` on *project* and play *scenario* against it. *approve*:
    the person's answer to every form (None: a client without elicitation);
    *extra_args*: more options of ``dbtproof mcp``."""
    transcript = Transcript()
    errlog = project.parent / f"mcp-stderr-{len(list(project.parent.glob('mcp-stderr-*')))}.log"

    async def elicit(context: Any, params: mcp_types.ElicitRequestParams) -> mcp_types.ElicitResult:
        transcript.forms.append(params.message + json.dumps(params.requested_schema))
        if approve:
            return mcp_types.ElicitResult(action="accept", content={"approve": True})
        return mcp_types.ElicitResult(action="decline")

    args = ["mcp", "--project-dir", str(project), "--profiles-dir", str(project)]
    args += ["--target", target]
    if evidence is not None:
        args += ["--evidence", str(evidence)]
    args += extra_args
    params = StdioServerParameters(
        command=str(DBTPROOF), args=args, env=_environment(env), cwd=str(project)
    )

    async def main() -> None:
        with errlog.open("w") as log:
            async with (
                stdio_client(params, errlog=log) as (read, write),
                ClientSession(
                    read,
                    write,
                    read_timeout_seconds=CALL_SECONDS,
                    elicitation_callback=elicit if approve is not None else None,
                ) as session,
            ):
                await session.initialize()
                await scenario(Agent(session, transcript))

    asyncio.run(main())
    transcript.stderr = errlog.read_text()
    return transcript


def _tool_calls(path: Path) -> list[dict[str, Any]]:
    verdict = verify(path)
    assert verdict.ok, verdict.describe()
    return [record for record in verdict.records if record["type"] == "tool_call"]


async def _whole_session(agent: Agent) -> None:
    """list -> describe -> profile -> propose -> run -> write, as an agent goes."""
    listed = await agent.call("list_models")
    assert not listed["is_error"], listed["text"]
    names = [model["name"] for model in listed["result"]["models"]]
    assert "orders" in names and "customers" in names
    described = await agent.call("describe_model", model="customers")
    assert not described["is_error"], described["text"]
    assert "model:stg_customers" in described["result"]["parents"]
    profiled = await agent.call("profile_columns", model="orders")
    assert not profiled["is_error"], profiled["text"]
    columns = {column["name"]: column for column in profiled["result"]["columns"]}
    assert columns["order_id"]["row_count"] > 0 and columns["order_id"]["null_share"] == 0
    tests = await agent.call("propose_tests", model="customers")
    assert not tests["is_error"], tests["text"]
    proposals = tests["result"]["proposals"]
    kinds = {proposal["kind"] for proposal in proposals}
    assert kinds == {"data_test", "unit_test"} and all(p["passes"] for p in proposals)
    data = next(p for p in proposals if p["kind"] == "data_test" and p["kills"])
    run = await agent.call("run_proposal", proposal_id=data["id"])
    assert not run["is_error"], run["text"]
    assert run["result"]["passed"] is True and run["result"]["failures"] == 0
    singular = await agent.call(
        "propose_singular_test",
        model="orders",
        name="orders_amount_not_negative",
        description="an order never has a negative amount",
        select_sql="select order_id from orders where amount < 0",
    )
    assert not singular["is_error"], singular["text"]
    assert "{{ ref('orders') }}" in singular["result"]["sql"]
    run = await agent.call("run_proposal", proposal_id=singular["result"]["id"])
    assert not run["is_error"], run["text"]
    assert run["result"]["passed"] is True and run["result"]["failures"] == 0
    unit = next(p for p in proposals if p["kind"] == "unit_test")
    chosen = [data["id"], unit["id"], singular["result"]["id"]]
    agent.transcript.chosen = {"data": data, "unit": unit}
    written = await agent.call("write_proposal", proposal_ids=chosen)
    assert not written["is_error"], written["text"]
    assert written["result"]["applied"] is True
    assert "models/marts/schema.yml" in written["result"]["files"]


def _entry(text: str) -> Any:
    """The one YAML entry a proposal adds (written as an item of a list)."""
    loaded = yaml.safe_load(text)
    return loaded[0] if isinstance(loaded, list) else loaded


def _check_whole_session(project: Path, transcript: Transcript, evidence: Path) -> None:
    test_file = project / "tests" / "dbtproof" / "orders_amount_not_negative.sql"
    assert "from {{ ref('orders') }}" in test_file.read_text().lower()
    assert len(transcript.forms) == 2  # the singular run, then the write: asked of the person
    schema = yaml.safe_load((project / "models" / "marts" / "schema.yml").read_text())
    customers = next(model for model in schema["models"] if model["name"] == "customers")
    data, unit = transcript.chosen["data"], transcript.chosen["unit"]
    column = next(c for c in customers["columns"] if c["name"] == data["column"])
    assert column["data_tests"].count(_entry(data["yaml"])) == 1
    unit_names = [test["name"] for test in schema["unit_tests"]]
    assert unit_names.count(_entry(unit["yaml"])["name"]) == 1
    calls = _tool_calls(evidence)
    assert [c["tool"] for c in calls] == [c["tool"] for c in transcript.calls]
    assert all(c["outcome"] == "ok" for c in calls)
    assert all(c["arguments"].startswith("sha256:") for c in calls)
    assert "amount < 0" not in evidence.read_text()  # the arguments are a digest only


def test_whole_session_duckdb(shop_copy: Path, duckdb_env: dict[str, str]) -> None:
    """DuckDB: an agent lists, describes, profiles, proposes, runs and writes a test."""
    evidence = shop_copy.parent / "mcp-evidence.jsonl"
    transcript = run_agent(shop_copy, duckdb_env, _whole_session, target="dev", evidence=evidence)
    _check_whole_session(shop_copy, transcript, evidence)


def test_whole_session_postgres_keeps_the_env_canary(
    shop_copy: Path, pg_env: dict[str, str]
) -> None:
    """PostgreSQL: the same session; the password (an env canary) is in nothing the
    agent saw, the log, the evidence or the project's files."""
    evidence = shop_copy.parent / "mcp-evidence.jsonl"
    transcript = run_agent(shop_copy, pg_env, _whole_session, target="postgres", evidence=evidence)
    _check_whole_session(shop_copy, transcript, evidence)
    assert CANARY_ENV not in transcript.text()
    assert CANARY_ENV not in evidence.read_text()
    for path in shop_copy.rglob("*"):
        if path.is_file() and path.suffix in {".sql", ".yml", ".yaml", ".json", ".jsonl"}:
            assert CANARY_ENV not in path.read_text(errors="replace"), path


def _serve(project: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DBTPROOF), "mcp", "--project-dir", str(project), "--profiles-dir",
         str(project), "--target", target],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ini", "target"),
    [
        ("", "prod"),  # the default patterns
        ("dbt_protected_targets = dev*\n", "dev"),  # the project's own, as pytest reads it
    ],
)
def test_protected_target_is_refused(shop_copy: Path, ini: str, target: str) -> None:
    """``dbtproof mcp`` on a protected target serves nothing: one message, exit code 2,
    whether the target is protected by the default patterns or the project's pytest ini."""
    (shop_copy / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\n" + ini)
    result = _serve(shop_copy, target)
    assert result.returncode == 2, result.stderr
    assert f"target '{target}'" in result.stderr and "protected" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


#: Tries to get past the tools' arguments: SQL and Jinja in names, Jinja in a text, a
#: relation outside the project, path traversal in the name a test file gets, ids that
#: name files. Each is (tool, arguments).
ATTACKS: list[tuple[str, dict[str, Any]]] = [
    ("describe_model", {"model": "orders; select 1"}),
    ("describe_model", {"model": "{{ adapter.config.credentials }}"}),
    ("describe_model", {"model": "raw_customers"}),  # a seed, not a model
    ("profile_columns", {"model": "orders' or '1'='1"}),
    ("profile_columns", {"model": "{{ env_var('SHOP_PG_PASSWORD') }}"}),
    ("propose_tests", {"model": "orders) union select usename from pg_user --"}),
    ("propose_tests", {"model": "../../profiles"}),
    ("propose_singular_test", {"model": "orders", "name": "t1",
     "description": "{{ adapter.config.credentials }}", "select_sql": "select 1"}),
    ("propose_singular_test", {"model": "orders", "name": "t2", "description": "d",
     "select_sql": "select '{{ adapter.config.credentials.password }}' as p"}),
    ("propose_singular_test", {"model": "orders", "name": "../../../tmp/evil",
     "description": "d", "select_sql": "select order_id from orders"}),
    ("propose_singular_test", {"model": "orders", "name": "t3", "description": "d",
     "select_sql": "select passwd from pg_catalog.pg_shadow"}),
    ("propose_singular_test", {"model": "orders", "name": "t4", "description": "d",
     "select_sql": "select current_setting('password_encryption') from orders"}),
    ("propose_singular_test", {"model": "orders", "name": "t5", "description": "d",
     "select_sql": "select 1 from orders; drop table orders"}),
    ("propose_singular_test", {"model": "orders", "name": "t6", "description": "d",
     "select_sql": "select * into stolen from orders"}),
    ("run_proposal", {"proposal_id": "../../profiles.yml"}),
    ("run_proposal", {"proposal_id": "singular:never_proposed"}),
    ("write_proposal", {"proposal_ids": ["../../../etc/passwd"]}),
    ("write_proposal", {"proposal_ids": []}),
]  # fmt: skip


def test_every_argument_refuses_attacks_and_no_literal_canary_leaks(
    shop_copy: Path, pg_env: dict[str, str]
) -> None:
    """A target whose password is a literal canary: every try through a tool argument is
    refused with a short message, and the canary is in nothing the agent saw, the log or
    the evidence, though the server connected (a profile was read on the sample)."""
    profiles = shop_copy / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace(
            "    # A local Spark",
            f"    pg_literal:\n      type: postgres\n      host: {PG_HOST}\n"
            f"      port: {PG_PORT}\n      user: {PG_ROLE}\n      password: {CANARY_LITERAL}\n"
            f"      dbname: {PG_DATABASE}\n      schema: shop_dev\n      threads: 1\n"
            f"    # A local Spark",
        )
    )
    take_sample(shop_copy, shop_copy / "target" / "dbtproof-sample", target="pg_literal",
                profiles_dir=shop_copy,
                options=SampleOptions(schema=f"{pg_env['prefix']}sample_lit"))  # fmt: skip
    evidence = shop_copy.parent / "mcp-evidence.jsonl"

    async def scenario(agent: Agent) -> None:
        profiled = await agent.call("profile_columns", model="customers")
        assert not profiled["is_error"], profiled["text"]
        for tool, arguments in ATTACKS:
            answer = await agent.call(tool, **arguments)
            assert answer["is_error"], (tool, arguments, answer)
            assert "refused" in answer["text"], (tool, arguments, answer["text"])
            assert "Traceback" not in answer["text"] and len(answer["text"]) < 700

    transcript = run_agent(shop_copy, {}, scenario, target="pg_literal", evidence=evidence)
    assert not (shop_copy.parent.parent / "tmp" / "evil.sql").exists()
    assert not list((shop_copy / "tests").rglob("evil*"))
    outcomes = [call["outcome"] for call in _tool_calls(evidence)]
    assert outcomes == ["ok"] + ["refused"] * len(ATTACKS)
    for canary in (CANARY_LITERAL, CANARY_ENV):
        assert canary not in transcript.text()
        assert canary not in evidence.read_text()


def test_a_client_without_elicitation_gets_the_patch_and_runs_no_agent_sql(
    shop_copy: Path, duckdb_env: dict[str, str]
) -> None:
    """No elicitation: a singular test is refused a run, and write_proposal returns the
    patch without writing anything; a person who declines gets nothing written."""

    async def scenario(agent: Agent) -> None:
        proposed = await agent.call(
            "propose_singular_test", model="orders", name="no_negative_amounts",
            description="d", select_sql="select order_id from orders where amount < 0",
        )  # fmt: skip
        proposal_id = proposed["result"]["id"]
        run = await agent.call("run_proposal", proposal_id=proposal_id)
        assert run["is_error"] and "approves" in run["text"], run
        written = await agent.call("write_proposal", proposal_ids=[proposal_id])
        assert not written["is_error"], written["text"]
        assert written["result"]["applied"] is False
        assert "+++ b/tests/dbtproof/no_negative_amounts.sql" in written["result"]["patch"]
        # calls the SDK refuses before any tool runs are in the evidence too
        assert (await agent.call("describe_model", model=["orders"]))["is_error"]
        assert (await agent.call("run_sql", sql="select 1"))["is_error"]

    evidence = shop_copy.parent / "mcp-evidence.jsonl"
    run_agent(shop_copy, duckdb_env, scenario, target="dev", approve=None, evidence=evidence)
    assert not (shop_copy / "tests" / "dbtproof").exists()
    outcomes = [(c["tool"], c["outcome"]) for c in _tool_calls(evidence)]
    assert outcomes == [
        ("propose_singular_test", "ok"), ("run_proposal", "refused"),
        ("write_proposal", "ok"), ("describe_model", "refused"), ("unknown", "refused"),
    ]  # fmt: skip

    async def declined(agent: Agent) -> None:
        proposed = await agent.call(
            "propose_singular_test", model="orders", name="no_negative_amounts",
            description="d", select_sql="select order_id from orders where amount < 0",
        )  # fmt: skip
        written = await agent.call("write_proposal", proposal_ids=[proposed["result"]["id"]])
        assert written["is_error"] and "declined" in written["text"], written

    transcript = run_agent(shop_copy, duckdb_env, declined, target="dev", approve=False)
    assert len(transcript.forms) == 1
    assert not (shop_copy / "tests" / "dbtproof").exists()


def test_a_project_error_holding_the_password_reaches_the_agent_scrubbed(
    shop_copy: Path, pg_env: dict[str, str]
) -> None:
    """The project's own Jinja can read the password (here a model whose build fails
    with it in the message): the error the agent gets, the log and the evidence hold
    ``*****`` instead."""
    leaky = (
        "{% if execute %}{{ exceptions.raise_compiler_error('cannot connect with ' ~ "
        "env_var('SHOP_PG_PASSWORD')) }}{% endif %}\nselect 1 as x\n"
    )
    (shop_copy / "models" / "a_leaky.sql").write_text(leaky)
    evidence = shop_copy.parent / "mcp-evidence.jsonl"

    async def scenario(agent: Agent) -> None:
        answer = await agent.call("profile_columns", model="customers")
        assert answer["is_error"], answer
        assert "cannot connect with *****" in answer["text"], answer["text"]

    transcript = run_agent(shop_copy, pg_env, scenario, target="postgres", evidence=evidence)
    assert CANARY_ENV not in transcript.text()
    assert CANARY_ENV not in evidence.read_text()
    assert [call["outcome"] for call in _tool_calls(evidence)] == ["error"]
