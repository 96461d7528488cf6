"""Model unit tests: run one dbt model on fixture rows, without building anything upstream.

``dbt.run_model(...)`` (see :meth:`dbtproof.session.session.DbtSession.run_model`) is served by
this package:

* :mod:`~dbtproof.engine.keys` — ``ref()`` and ``source()``, the keys of ``given``;
* :mod:`~dbtproof.engine.reading` — fixture data (rows, CSV, frames) read into a ``Fixture``;
* :mod:`~dbtproof.engine.inputs` — fixtures typed into SQL (or staged, when large);
* :mod:`~dbtproof.engine.staging` — large fixtures through the driver's bulk path;
* :mod:`~dbtproof.engine.columns` — what is known of an upstream relation's columns
  without building it (declared types, seed files, the upstream's own SQL);
* :mod:`~dbtproof.engine.render` — the model's SQL rendered through dbt's Jinja runtime
  context with refs, sources, ``this``, vars, env vars and macros replaced, cached;
* :mod:`~dbtproof.engine.execute` — one statement through the adapter's connection;
* :mod:`~dbtproof.engine.queries` — the queries a model runs while it renders
  (``run_query``), answered from ``queries=``, the fixtures or the warehouse;
* :mod:`~dbtproof.engine.incremental` — the model's incremental strategy applied;
* :mod:`~dbtproof.engine.model` — the orchestration behind ``run_model``.

Importing this package does not import dbt.
"""

from __future__ import annotations

from dbtproof.engine.keys import Ref, Source, ref, source

__all__ = ["Ref", "Source", "ref", "source"]
