"""Benchmark: ``dbtproof sample`` then ``dbtproof propose`` on a project, with the
mutation kill rate of what it proposes.

Either generates the project of ``data_tests_bench.py`` (N chained table models over a
seed, no tests of their own) or takes an existing one (``--project``, e.g. a fetched
dbt-labs/jaffle-shop with ``bench/jaffle_seeds.py``'s seeds loaded by ``dbt seed``).
Prints the seconds each step took (in this process, dbt imported first), the number of
proposals, how many pass, and the mutants of the models killed by at least one proposal.
Usage, from the repository root in the dev virtualenv::

    python bench/propose_bench.py --models 50
    python bench/propose_bench.py --project /tmp/jaffle-shop [--target dev]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from data_tests_bench import write_project  # noqa: E402

from dbtproof.agents.proposals import propose  # noqa: E402
from dbtproof.agents.sample import take_sample  # noqa: E402
from dbtproof.agents.workspace import open_workspace  # noqa: E402


def main() -> None:
    """Sample, propose, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--target", default=None)
    args = parser.parse_args()
    if args.project is None:
        project = Path(tempfile.mkdtemp(prefix="propose-bench-")) / "project"
        write_project(project, args.models, tested=1)  # one model keeps its four tests
    else:
        project = args.project.resolve()
    os.chdir(project)
    from dbtproof import _dbt_compat as compat

    compat.import_dbt()
    started = time.perf_counter()
    take_sample(project, project / "target" / "dbtproof-sample", target=args.target,
                profiles_dir=project)  # fmt: skip
    sampled = time.perf_counter()
    with open_workspace(project, target=args.target, profiles_dir=project) as ws:
        opened = time.perf_counter()
        proposals = propose(ws)
        proposed = time.perf_counter()
    mutants: dict[str, set[str]] = {}
    killed: dict[str, set[str]] = {}
    for proposal in proposals:
        mutants.setdefault(proposal.model, set()).update(proposal.mutants)
        killed.setdefault(proposal.model, set()).update(proposal.kills)
    total = sum(len(names) for names in mutants.values())
    caught = sum(len(names) for names in killed.values())
    print(f"project: {project} ({len(mutants)} models proposed for)")
    print(
        f"sample: {sampled - started:.1f} s; workspace start: {opened - sampled:.1f} s; "
        f"propose (its dbt run too): {proposed - opened:.1f} s"
    )
    print(
        f"proposals: {len(proposals)}, passing: {sum(p.passes for p in proposals)}, "
        f"unit tests: {sum(p.kind == 'unit_test' for p in proposals)}, "
        f"killing a mutant: {sum(bool(p.kills) for p in proposals)}"
    )
    rate = f" ({caught / total:.0%})" if total else ""
    print(f"mutants: {total}, killed: {caught}{rate}")


if __name__ == "__main__":
    main()
