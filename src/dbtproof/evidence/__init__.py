"""Audit-ready evidence of a test run (``--dbt-evidence PATH``).

One module per job:

* :mod:`.records` — the versioned record schema, canonical JSON and the hashes;
* :mod:`.facts` — who ran the run, where, on which commit, with which versions;
* :mod:`.recorder` — :class:`EvidenceRecorder`, what one pytest process saw (tests,
  dbt invocations and the artifacts they wrote, the dbt session), handed from xdist
  workers to the controller;
* :mod:`.merge` — every process's records in one deterministic order;
* :mod:`.chain` — the hash-chained JSON Lines writer and the run's final digest;
* :mod:`.verify` — ``dbtproof evidence verify``: the first record or file changed,
  removed or inserted;
* :mod:`.attest` — ``dbtproof evidence attest``: an in-toto test-result Statement;
* :mod:`.junit` — the properties every JUnit testcase carries.

Nothing here imports dbt: what the run's dbt session knows is handed in.
"""
