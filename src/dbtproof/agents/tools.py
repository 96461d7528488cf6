"""What each ``dbtproof mcp`` tool does, apart from MCP: typed arguments in, JSON-safe
dictionaries out.

:class:`AgentTools` holds the project's manifest (parsed once at start, for the
manifest facts), the workspace (opened at the first tool that needs data: a dbtproof
session on the sample, see :mod:`dbtproof.agents.workspace`) and the proposals made so
far. Every argument is checked (:mod:`dbtproof.agents.arguments`) before anything else
sees it; a model is only ever named by its manifest name. No tool takes SQL or Jinja to
run: a singular test's SQL is a proposal (:mod:`dbtproof.agents.singular`), run only
once a person approved it (the server asks, :meth:`AgentTools.approve`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.agents import arguments, catalog
from dbtproof.agents.pii import PiiRule
from dbtproof.agents.singular import SingularTest, parse_singular

#: The id prefix of a singular test an agent proposed.
SINGULAR = "singular:"


@dataclass
class AgentTools:
    """The tools' state and logic for one server (one project, one target)."""

    project_dir: Path
    project_name: str
    manifest: Any
    #: sqlglot's dialect of the target (None: generic SQL).
    dialect: str | None
    #: The project's test paths (``test-paths``): a singular test goes to the first.
    test_paths: tuple[str, ...]
    #: How a PII column is marked (``describe_model``'s flag; the workspace's own rule).
    pii: PiiRule
    #: Opens the workspace (a context manager); called once, at the first data tool.
    open_workspace: Callable[[], contextlib.AbstractContextManager[Any]]
    #: More scrubbing than the server's registry: the workspace's own (its minted and
    #: ``.env`` values), added when it opens.
    scrubbers: list[Callable[[str], str]] = field(default_factory=list, repr=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _workspace: Any = field(default=None, repr=False)
    proposals: dict[str, Any] = field(default_factory=dict, repr=False)
    singular: dict[str, SingularTest] = field(default_factory=dict, repr=False)
    #: Singular tests a person approved to run.
    approved: set[str] = field(default_factory=set)

    # -- the workspace ---------------------------------------------------------------

    def workspace(self) -> Any:
        """The workspace, opened on first use and kept until :meth:`close`."""
        if self._workspace is None:
            self._workspace = self._stack.enter_context(self.open_workspace())  # closed first
        return self._workspace

    def defer(self, callback: Callable[[], object]) -> None:
        """Call *callback* at :meth:`close` (after the workspace closed)."""
        self._stack.callback(callback)

    def close(self) -> None:
        """Close the workspace (its session drops the run namespace)."""
        self._stack.close()
        self._workspace = None

    # -- the tools -------------------------------------------------------------------

    def list_models(self) -> dict[str, Any]:
        """The project's models (manifest facts only)."""
        models = catalog.summaries(self.manifest, self.project_name)
        return {"models": [model.to_dict() for model in models]}

    def describe_model(self, model: str) -> dict[str, Any]:
        """One model's columns, tests, parents and children (manifest facts only)."""
        arguments.check_name(model, "model")
        return catalog.describe(self.manifest, self.project_name, model, self.pii).to_dict()

    def _model(self, model: str) -> str:
        arguments.check_name(model, "model")
        return catalog.model_node(self.manifest, self.project_name, model).name

    def profile_columns(self, model: str) -> dict[str, Any]:
        """Aggregates of the model's columns on the sample (no row, nothing of PII)."""
        name = self._model(model)
        from dbtproof.agents.profiling import profile_columns

        profiles = profile_columns(self.workspace(), name)
        return {"model": name, "columns": [profile.to_dict() for profile in profiles]}

    def propose_tests(self, model: str) -> dict[str, Any]:
        """Data and unit tests for the model, each run on the sample before it is offered."""
        name = self._model(model)
        from dbtproof.agents.proposals import propose

        made = propose(self.workspace(), name)
        for proposal in made:
            self.proposals[str(proposal.id)] = proposal
        return {"model": name, "proposals": [proposal.to_dict() for proposal in made]}

    def propose_singular_test(
        self, model: str, name: str, description: str, select_sql: str
    ) -> dict[str, Any]:
        """Keep a singular test the agent wrote as a proposal (parsed, not run)."""
        model_name = self._model(model)
        arguments.check_name(name, "name")
        arguments.check_text(description, "description")
        known = catalog.relation_names(self.manifest, self.project_name)
        test = parse_singular(name, model_name, select_sql, known, self.dialect)
        proposal_id = SINGULAR + name
        self.singular[proposal_id] = test
        self.approved.discard(proposal_id)
        return {
            "id": proposal_id,
            "model": model_name,
            "kind": "singular_test",
            "sql": test.dbt_sql(),
            "note": "a proposal only: it runs once a person approves it (run_proposal asks)",
        }

    def known_ids(self) -> list[str]:
        """Every proposal id this server made."""
        return [*self.proposals, *self.singular]

    def needs_approval(self, proposal_id: str) -> SingularTest | None:
        """The singular test *proposal_id* names when a person has not approved it yet."""
        arguments.check_proposal_id(proposal_id, self.known_ids())
        if proposal_id in self.singular and proposal_id not in self.approved:
            return self.singular[proposal_id]
        return None

    def approve(self, proposal_id: str) -> None:
        """Note that a person approved running the singular test *proposal_id*."""
        self.approved.add(arguments.check_proposal_id(proposal_id, self.singular))

    def run_proposal(self, proposal_id: str) -> dict[str, Any]:
        """Run one proposal on the sample (a singular test only once approved)."""
        arguments.check_proposal_id(proposal_id, self.known_ids())
        if proposal_id in self.singular:
            if proposal_id not in self.approved:
                raise catalog.ToolRefusal(
                    "refused: a singular test runs only after a person approves it."
                )
            return self._run_singular(self.singular[proposal_id])
        from dbtproof.agents.proposals import run_proposal

        verdict = run_proposal(self.workspace(), self.proposals[proposal_id])
        return {"id": proposal_id, **verdict.to_dict()}

    def _run_singular(self, test: SingularTest) -> dict[str, Any]:
        """Count the rows the approved singular test returns on the sample (no row shown)."""
        from dbtproof.agents.readonly import read_only

        ws = self.workspace()
        models = set(ws.model_names())
        sql = test.run_sql(
            lambda name: ws.relation(name) if name in models else ws.session.commands.relation(name)
        )
        with read_only(ws.session) as query:
            rows = query(f"select count(*) from ({sql}) as dbtproof_singular")
        failures = int(rows[0][0])
        return {
            "id": SINGULAR + test.name,
            "passed": failures == 0,
            "failures": failures,
            "summary": f"{failures} row(s) returned (a singular test passes with none)",
        }

    def patch(self, proposal_ids: list[str]) -> tuple[str, Callable[[], list[str]]]:
        """The unified diff the proposals add, and the function that writes it."""
        if not proposal_ids:
            raise catalog.ToolRefusal("refused: name at least one proposal id.")
        known = self.known_ids()
        for proposal_id in proposal_ids:
            arguments.check_proposal_id(proposal_id, known)
        chosen = [self.proposals[i] for i in proposal_ids if i in self.proposals]
        singular = [self.singular[i] for i in proposal_ids if i in self.singular]
        diff = ""
        if chosen:
            from dbtproof.agents.patch import yaml_patch

            diff = yaml_patch(self.project_dir, chosen)
        files = {self._singular_path(test): test.dbt_sql() for test in singular}
        for path, text in files.items():
            diff += _new_file_diff(path.relative_to(self.project_dir).as_posix(), text)

        def write() -> list[str]:
            written = []
            if chosen:
                from dbtproof.agents.patch import apply_patch

                written = [str(p) for p in apply_patch(self.project_dir, chosen)]
            for path, text in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("x", encoding="utf-8") as handle:  # never over a file
                    handle.write(text)
                written.append(str(path))
            return [Path(p).relative_to(self.project_dir).as_posix() for p in written]

        return diff, write

    def _singular_path(self, test: SingularTest) -> Path:
        folder = self.project_dir / self.test_paths[0] / "dbtproof"
        path = folder / f"{test.name}.sql"
        if path.exists():
            raise catalog.ToolRefusal(
                "refused: a test file of that name exists; propose it under another name."
            )
        return path


def _new_file_diff(relative: str, text: str) -> str:
    """A unified diff that creates the file *relative* with *text*."""
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return f"--- /dev/null\n+++ b/{relative}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
