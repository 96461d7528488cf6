"""Test proposals from data, safe for agents: ``dbtproof sample`` and ``dbtproof propose``.

A person or CI runs ``dbtproof sample``: a bounded sample of the project's seeds and
sources, with every PII column masked, copied into a sample namespace through the guard
(:mod:`~dbtproof.agents.sample`). Everything else here reads only that sample: a
:class:`~dbtproof.agents.workspace.Workspace` is a dbtproof session whose seeds and
sources are the sample's tables; :mod:`~dbtproof.agents.profiling` gives aggregates of
its models, :mod:`~dbtproof.agents.proposals` proposes data tests and unit tests, runs
each and scores it against mutants of the model (:mod:`~dbtproof.agents.mutations`),
and :mod:`~dbtproof.agents.patch` writes them into the project's YAML.
"""
