"""A generated dbt project whose sources declare no columns, and a sweep over every model.

The project has N models in three layers, written the way analytics engineers write
them: staging models rename, cast and clean the columns of sources that declare no
columns at all (and have no table where tests run); intermediate models join two
staging models; marts aggregate an intermediate model. Its ``pytests/test_sweep.py``
runs every model with ``dbt.run_model(model, given={each direct upstream: []})`` and,
for staging models, on one row of fixture data too — the sweep a user makes to see that
every model can be unit tested without building anything.

Usage (from the repository root, in the dev virtualenv)::

    python bench/sweep_project.py --models 1000 --out /tmp/sweep   # writes the project
    cd /tmp/sweep && pytest -q -n 2 pytests                          # DuckDB
    cd /tmp/sweep && pytest -q --dbt-target postgres pytests         # PG* env vars

(``pytests`` by name: with no paths pytest would also collect the project's build items,
and its sources have no table to build from.)

``tests/plugin/test_sweep.py`` runs a small one in CI.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

SOURCES = 8

STAGING = [
    # (template, columns it reads) - {src} is the source() call.
    """
    with source as (select * from {src}),
    renamed as (
        select
            id as {name}_id,
            customer_id,
            cast(amount as numeric(18, 2)) / 100 as amount,
            date_trunc('day', created_at) as created_day,
            lower(trim(status)) as status,
            coalesce(quantity, 0) as quantity,
            case when is_deleted then 'deleted' else 'active' end as state
        from source
        where created_at >= cast('2020-01-01' as date)
    )
    select * from renamed
    """,
    """
    select
        s.id as {name}_id,
        s.customer_id,
        s.price * s.quantity as total,
        extract(year from s.created_at) as created_year,
        upper(s.region) as region
    from {src} as s
    where s.quantity > 0 and not s.is_test
    """,
    """
    select id as {name}_id, customer_id, amount - discount as net_amount,
        created_at + interval '1 day' as due_at, status
    from {src}
    """,
]

INTERMEDIATE = """
select a.{a}_id as id, a.customer_id, b.{b}_id as other_id, a.{a_measure} as measure
from {{{{ ref('{a_model}') }}}} as a
left join {{{{ ref('{b_model}') }}}} as b on a.customer_id = b.customer_id
"""

MART = """
select customer_id, count(*) as items, sum(measure) as measure, max(other_id) as last_other
from {{{{ ref('{model}') }}}}
group by customer_id
"""

MEASURE = ["amount", "total", "net_amount"]

SWEEP_TEST = '''
"""Every model runs on empty fixtures of its direct upstreams (and staging on one row)."""

import json
from pathlib import Path

import pytest

from dbtproof import ref, source

MODELS = json.loads((Path(__file__).parent / "models.json").read_text())


def upstreams(dbt, name):
    node = next(
        n for n in dbt.manifest.nodes.values()
        if n.resource_type == "model" and n.name == name
    )
    keys = []
    for uid in node.depends_on.nodes:
        if uid.startswith("source."):
            s = dbt.manifest.sources[uid]
            keys.append(source(s.source_name, s.name))
        else:
            keys.append(ref(dbt.manifest.nodes[uid].name))
    return keys


@pytest.mark.parametrize("model", MODELS)
def test_runs_on_empty_upstreams(dbt, model):
    out = dbt.run_model(model, given={key: [] for key in upstreams(dbt, model)})
    assert out == []


ROW = {"id": 1, "customer_id": 7, "amount": 1250, "created_at": "2024-03-01 10:00:00",
       "status": " Done ", "quantity": 2, "is_deleted": False, "price": 2.5, "region": "eu",
       "is_test": False, "discount": 50}


@pytest.mark.parametrize("model", [m for m in MODELS if m.startswith("stg_")])
def test_staging_runs_on_one_row(dbt, model):
    out = dbt.run_model(model, given={key: [ROW] for key in upstreams(dbt, model)})
    assert len(out) == 1
    assert out[0]["customer_id"] == 7
'''


def write_project(root: Path, models: int) -> list[str]:
    """Write the project under *root*; return the model names."""
    (root / "models" / "staging").mkdir(parents=True, exist_ok=True)
    (root / "models" / "marts").mkdir(parents=True, exist_ok=True)
    (root / "pytests").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        "name: sweep\nversion: '1.0.0'\nconfig-version: 2\nprofile: sweep\n"
        "models:\n  sweep:\n    +materialized: view\n"
    )
    (root / "profiles.yml").write_text(
        textwrap.dedent(
            """
            sweep:
              target: dev
              outputs:
                dev: {type: duckdb, path: sweep.duckdb, schema: main, threads: 1}
                postgres:
                  type: postgres
                  host: "{{ env_var('PGHOST', '127.0.0.1') }}"
                  port: "{{ env_var('PGPORT', '5432') | as_number }}"
                  user: "{{ env_var('PGUSER', 'postgres') }}"
                  password: "{{ env_var('PGPASSWORD', '') }}"
                  dbname: "{{ env_var('PGDATABASE', 'test') }}"
                  schema: sweep_dev
                  threads: 1
            """
        ).lstrip()
    )
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = pytests\n")
    tables = "\n".join(f"      - name: raw_{i}" for i in range(SOURCES))
    (root / "models" / "staging" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: raw\n    schema: raw_data\n    tables:\n{tables}\n"
    )
    names: list[str] = []
    staging = max(3, models // 2)
    intermediate = max(2, (models - staging) * 2 // 3)
    marts = max(1, models - staging - intermediate)
    for i in range(staging):
        name = f"stg_{i}"
        template = STAGING[i % len(STAGING)]
        sql = template.format(src=f"{{{{ source('raw', 'raw_{i % SOURCES}') }}}}", name=name)
        (root / "models" / "staging" / f"{name}.sql").write_text(textwrap.dedent(sql).lstrip())
        names.append(name)
    for i in range(intermediate):
        a, b = i % staging, (i * 7 + 1) % staging
        name = f"int_{i}"
        sql = INTERMEDIATE.format(
            a=f"stg_{a}",
            b=f"stg_{b}",
            a_model=f"stg_{a}",
            b_model=f"stg_{b}",
            a_measure=MEASURE[a % len(STAGING)],
        )
        (root / "models" / "marts" / f"{name}.sql").write_text(sql.lstrip())
        names.append(name)
    for i in range(marts):
        name = f"mart_{i}"
        sql = MART.format(model=f"int_{i % intermediate}")
        (root / "models" / "marts" / f"{name}.sql").write_text(sql.lstrip())
        names.append(name)
    import json

    (root / "pytests" / "models.json").write_text(json.dumps(names))
    (root / "pytests" / "test_sweep.py").write_text(SWEEP_TEST.lstrip())
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    names = write_project(args.out, args.models)
    print(f"wrote {len(names)} models to {args.out}")


if __name__ == "__main__":
    main()
