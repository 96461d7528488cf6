"""Test proposals from data, safe for agents: ``dbtproof sample`` and ``dbtproof propose``.

A person or CI runs ``dbtproof sample``: a bounded sample of the project's seeds and
sources, with every PII column masked, copied into a sample namespace through the guard
(:mod:`~dbtproof.agents.sample`). Everything else here reads only that sample: a
:class:`~dbtproof.agents.workspace.Workspace` is a dbtproof session whose seeds and
sources are the sample's tables; :mod:`~dbtproof.agents.profiling` gives aggregates of
its models, :mod:`~dbtproof.agents.proposals` proposes data tests and unit tests, runs
each and scores it against mutants of the model (:mod:`~dbtproof.agents.mutations`),
and :mod:`~dbtproof.agents.patch` writes them into the project's YAML.

``dbtproof mcp`` serves the same to agents over MCP (:mod:`~dbtproof.agents.mcp_server`):
manifest facts (:mod:`~dbtproof.agents.catalog`), every argument checked
(:mod:`~dbtproof.agents.arguments`), a singular test an agent writes kept as a parsed
proposal (:mod:`~dbtproof.agents.singular`) and run only once a person approves it, on a
read-only connection (:mod:`~dbtproof.agents.readonly`); every call a record in the
evidence chain (:mod:`~dbtproof.agents.audit`).
"""
