"""``dbtproof mcp``: a stdio MCP server (the official ``mcp`` SDK) of dbtproof's agent tools.

The tools take typed arguments only and none takes SQL or Jinja to run
(:mod:`dbtproof.agents.tools` does the work, :mod:`dbtproof.agents.arguments` checks every
argument). Around every call this module:

- runs the work on one thread of its own (dbt's connections belong to a thread);
- scrubs every string of the result, of an error and of an elicitation form with the
  server's :class:`~dbtproof.safety.redaction.SecretRegistry` (the profile's secrets, the
  ``DBT_ENV_SECRET*`` variables, dbt's rendered credentials, what the session made);
- writes a ``tool_call`` record to the evidence chain (:mod:`dbtproof.agents.audit`);
- answers a refusal, a dbtproof error or a crash with one short message.

The credentials stay in this process: resolved by dbt from the profile (or minted by the
workspace), never in an argument, a result, an error, the log (standard error is
scrubbed: :mod:`dbtproof.agents.log_scrub`) or the evidence. A protected target is
refused before anything is parsed or connected, as a pytest run refuses it. Writing a
patch and running a singular test an agent wrote need a person's yes, asked through
MCP elicitation; a client without elicitation gets the patch to apply itself, and no
singular test runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from dbtproof.agents.audit import ToolAudit
from dbtproof.agents.catalog import ToolRefusal
from dbtproof.agents.log_scrub import scrubbed_stderr, stdout_to_stderr
from dbtproof.agents.mcp_settings import McpSettings
from dbtproof.agents.tools import AgentTools
from dbtproof.errors import DbtproofError
from dbtproof.evidence.records import scrubbed
from dbtproof.safety.redaction import SecretRegistry

T = TypeVar("T")

#: What the server tells a client about itself (the MCP ``instructions``).
INSTRUCTIONS = (
    "dbtproof's tools write dbt tests without touching production or seeing a secret. "
    "Start with list_models and describe_model (manifest facts, no data), then "
    "profile_columns (aggregates of the sample), propose_tests (tests already run on the "
    "sample), run_proposal, and write_proposal (the person confirms). Models are named "
    "by their exact names; no tool takes SQL or Jinja to run. See docs/agents.md."
)
#: The longest error message a client gets.
MESSAGE_LIMIT = 600


#: The tool calls an agent makes, by name (a call naming another is recorded as "unknown").
TOOLS = (
    "list_models", "describe_model", "profile_columns", "propose_tests",
    "propose_singular_test", "run_proposal", "write_proposal",
)  # fmt: skip
#: Set for each ``tools/call`` by :class:`AuditEveryCall`: a tool body that ran marks it.
_AUDITED: ContextVar[list[bool] | None] = ContextVar("dbtproof_mcp_audited", default=None)


class Declined(DbtproofError):
    """The person declined (or cancelled) what a tool asked them to confirm."""


@dataclass
class AgentServer:
    """One server: the secrets, the audit, the worker thread and the tools."""

    secrets: SecretRegistry
    audit: ToolAudit
    tools: AgentTools
    executor: ThreadPoolExecutor

    def scrub(self, text: str) -> str:
        """*text* without any secret the server knows."""
        return scrub_all(self.secrets, self.tools, text)

    async def run(self, work: Callable[[], T]) -> T:
        """*work* on the server's one worker thread."""
        return await asyncio.wrap_future(self.executor.submit(work))

    async def audited(
        self, tool: str, arguments: Mapping[str, Any], body: Callable[[], Awaitable[T]]
    ) -> T:
        """Run a tool's *body*: its outcome recorded, its result scrubbed, its error short."""
        started = time.time()
        outcome = "error"
        marks = _AUDITED.get()
        if marks is not None:
            marks.append(True)
        try:
            result = await body()
            outcome = "ok"
            return scrubbed(result, self.scrub)  # type: ignore[no-any-return]
        except ToolRefusal as exc:
            outcome = "refused"
            raise ToolError(self._short(str(exc))) from None
        except Declined as exc:
            outcome = "declined"
            raise ToolError(self._short(str(exc))) from None
        except DbtproofError as exc:
            raise ToolError(self._short(str(exc))) from None
        except Exception as exc:  # a crash: its type and first line, never a traceback
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ToolError(self._short(f"dbtproof: {type(exc).__name__}: {first}")) from None
        finally:
            self.audit.record(tool, arguments, outcome, started)

    def _short(self, message: str) -> str:
        text = self.scrub(message)
        return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def scrub_all(secrets: SecretRegistry, tools: AgentTools, text: str) -> str:
    """*text* scrubbed by the server's registry (the environment's secrets read anew), then
    by the workspace's once it is open."""
    secrets.add_environment()
    text = secrets.scrub(text)
    for scrub in tools.scrubbers:
        text = scrub(text)
    return text


class Confirmation(BaseModel):
    """The elicitation form: one yes/no (never a field for a secret)."""

    approve: bool = Field(description="Yes, do it")


@dataclass
class AuditEveryCall:
    """Server middleware: a ``tools/call`` the SDK answers before any tool ran (an
    unknown tool, arguments of the wrong type) is recorded too, as refused."""

    agent: AgentServer

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run the request; record a tool call no tool body recorded."""
        if ctx.method != "tools/call":
            return await call_next(ctx)
        marks: list[bool] = []
        token = _AUDITED.set(marks)
        started = time.time()
        try:
            return await call_next(ctx)
        finally:
            _AUDITED.reset(token)
            if not marks:
                params = ctx.params or {}
                name = params.get("name")
                arguments = params.get("arguments")
                self.agent.audit.record(
                    name if name in TOOLS else "unknown",
                    arguments if isinstance(arguments, dict) else {"arguments": str(arguments)},
                    "refused",
                    started,
                )


def _can_elicit(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


async def _confirm(agent: AgentServer, ctx: Context, message: str) -> None:
    """Ask the person to confirm *message* (scrubbed); :class:`Declined` unless they do."""
    answer = await ctx.elicit(agent.scrub(message), Confirmation)
    if getattr(answer, "action", None) != "accept" or not answer.data.approve:
        raise Declined("declined: the person did not approve it; nothing was done.")


def build_server(agent: AgentServer) -> MCPServer:
    """The MCP server with dbtproof's tools, each calling *agent*."""
    server = MCPServer(
        name="dbtproof", instructions=INSTRUCTIONS, middleware=[AuditEveryCall(agent)]
    )
    reads = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
    tools = agent.tools

    @server.tool(annotations=reads)
    async def list_models() -> dict[str, Any]:
        """The project's models: name, description, materialization, how many columns
        are documented and how many data/unit tests each has (manifest facts, no data)."""
        return await agent.audited("list_models", {}, lambda: agent.run(tools.list_models))

    @server.tool(annotations=reads)
    async def describe_model(model: str) -> dict[str, Any]:
        """One model's columns (description, type, PII flag), tests, parents and children,
        from the manifest (no data). *model*: a name list_models returned."""
        return await agent.audited(
            "describe_model",
            {"model": model},
            lambda: agent.run(lambda: tools.describe_model(model)),
        )

    @server.tool(annotations=reads)
    async def profile_columns(model: str) -> dict[str, Any]:
        """Aggregates of the model's columns on the sample: row count, null share,
        distinct count, min/max of non-PII numeric and date columns (nothing below the
        minimum group size, nothing but the name for PII columns). No row."""
        return await agent.audited(
            "profile_columns",
            {"model": model},
            lambda: agent.run(lambda: tools.profile_columns(model)),
        )

    @server.tool()
    async def propose_tests(model: str) -> dict[str, Any]:
        """Data tests and unit tests for the model, each already run on the sample and
        scored by the mutations of the model it catches. Returns proposal ids."""
        return await agent.audited(
            "propose_tests", {"model": model}, lambda: agent.run(lambda: tools.propose_tests(model))
        )

    @server.tool()
    async def propose_singular_test(
        model: str, name: str, description: str, select_sql: str
    ) -> dict[str, Any]:
        """Keep a singular test as a proposal: exactly one SELECT that returns the rows
        breaking a rule, naming the project's models by their bare names (no Jinja, no
        schema). It is parsed, not run: run_proposal asks a person first."""
        arguments = {"model": model, "name": name, "description": description, "sql": select_sql}
        return await agent.audited(
            "propose_singular_test",
            arguments,
            lambda: agent.run(
                lambda: tools.propose_singular_test(model, name, description, select_sql)
            ),
        )

    @server.tool()
    async def run_proposal(proposal_id: str, ctx: Context) -> dict[str, Any]:
        """Run one proposal on the sample in the run's own namespace: passed or not, how
        many failures, a summary (no row). A singular test runs only after the person
        approves it (asked through the client)."""

        async def body() -> dict[str, Any]:
            test = await agent.run(lambda: tools.needs_approval(proposal_id))
            if test is not None:
                if not _can_elicit(ctx):
                    raise ToolRefusal(
                        "refused: a singular test runs only after a person approves it, "
                        "and this client cannot ask; a person can review it in "
                        "write_proposal's patch."
                    )
                await _confirm(
                    agent,
                    ctx,
                    f"An agent asks to run this test on the sample (read-only):\n\n"
                    f"{test.dbt_sql()}",
                )
                await agent.run(lambda: tools.approve(proposal_id))
            return await agent.run(lambda: tools.run_proposal(proposal_id))

        return await agent.audited("run_proposal", {"proposal_id": proposal_id}, body)

    @server.tool()
    async def write_proposal(proposal_ids: list[str], ctx: Context) -> dict[str, Any]:
        """Add the proposals to the project's files: the patch (a unified diff) is shown
        to the person, and written only when they confirm. A client that cannot ask gets
        the patch back to apply after review (nothing is written then)."""

        async def body() -> dict[str, Any]:
            diff, write = await agent.run(lambda: tools.patch(proposal_ids))
            if not diff:
                return {"applied": False, "patch": "", "note": "nothing to add: the tests exist"}
            if not _can_elicit(ctx):
                return {
                    "applied": False,
                    "patch": diff,
                    "note": "this client cannot ask the person: show them the patch; "
                    "apply it only after they review it",
                }
            await _confirm(agent, ctx, f"Write these tests into the dbt project?\n\n{diff}")
            files = await agent.run(write)
            return {"applied": True, "files": files, "patch": diff}

        return await agent.audited("write_proposal", {"proposal_ids": proposal_ids}, body)

    return server


def _run_id() -> str:
    return (
        datetime.now(timezone.utc).strftime("mcp_%Y%m%dT%H%M%S_") + f"{time.time_ns() % 10**6:06d}"
    )


@contextlib.contextmanager
def _worker() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbtproof-mcp")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True)


def serve(settings: McpSettings) -> int:
    """Run the server on standard input/output until the client closes it; 0 when it
    stopped cleanly. A protected target, a bad project or profile: :class:`DbtproofError`
    before anything is served."""
    from dbtproof.agents.startup import open_tools

    secrets = SecretRegistry()
    secrets.add_environment()
    with scrubbed_stderr(secrets.scrub), _worker() as executor:
        try:
            with stdout_to_stderr():
                started = executor.submit(open_tools, settings, secrets).result()
        except DbtproofError as exc:  # printed by the command, after the log's scrubbing ends
            raise DbtproofError(secrets.scrub(str(exc))) from None
        tools = started.tools
        audit = ToolAudit(started.evidence, lambda text: scrub_all(secrets, tools, text))
        audit.start(_run_id(), settings.project_dir, started.target_facts)
        agent = AgentServer(secrets=secrets, audit=audit, tools=tools, executor=executor)
        status = 1
        try:
            anyio.run(build_server(agent).run_stdio_async)
            status = 0
        finally:
            try:
                executor.submit(tools.close).result()
            finally:
                audit.finish(status)
    return status
