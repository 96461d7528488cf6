# Sourced by scripts/example and scripts/test: create a virtualenv and install dbtproof into it.
#   make_venv <folder> <dbt-core version range> [more packages...]
#       dbt-core, dbt-duckdb and dbt-postgres in that range, and dbtproof[dev], as pip resolves them;
#   WITHOUT_PARSER=1 make_venv <folder> <dbt-core version range> <packages...>
#       dbt-core 1.12 and later (see below): dbt-core in that range and the packages given
#       (the adapters, each with its own range), and dbtproof[dev,docs] (docs: MkDocs, whose
#       site tests/examples/test_docs_site.py builds);
#   make_main_venv: .venv, the main leg's (dbt-core 1.12, every adapter the suite checks, and
#       the documentation site's packages).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

# _fresh <folder> <stamp>: false (1) when <folder> is a virtualenv set up with <stamp>; else
# creates it with an up-to-date pip.
_fresh() {
    local venv="$ROOT/$1"
    if [ -f "$venv/.dbtproof-stamp" ] && [ "$(cat "$venv/.dbtproof-stamp")" = "$2" ]; then
        return 1
    fi
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
}

_stamp() {
    echo "$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/_venv.sh" | sha256sum | cut -c1-16)-$*"
}

make_venv() {
    local name="$1" venv="$ROOT/$1" dbt_range="$2" stamp
    shift 2
    stamp="$(_stamp "$dbt_range" "$@")"
    _fresh "$name" "$stamp" || return 0
    local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    if [ "${WITHOUT_PARSER:-}" != 1 ]; then
        echo "== setting up $name (dbt-core $dbt_range)"
        "${pip[@]}" -e "$ROOT[dev]" "dbt-core$dbt_range" "dbt-duckdb$dbt_range" \
            "dbt-postgres$dbt_range" "$@"
        echo "$stamp" > "$venv/.dbtproof-stamp"
        return 0
    fi
    # Why not plain pip: dbt-core 1.12 requires dbt-core-experimental-parser, an sdist whose
    # build downloads a wheel from GitHub. Without internet that fails, and already in pip's
    # metadata step, so pip cannot resolve anything that depends on dbt-core 1.12 (the
    # adapters, dbtproof). dbt 1.12 runs that parser (as a command) only when its v2-parser
    # flag is on, which dbtproof never turns on. So dbt-core, every package given and dbtproof
    # are installed without their dependencies (--no-deps), then the union of what they
    # require (each package's extras as given, dbtproof's dev and docs extras), except dbt-core, the
    # parser and those packages themselves, as pip resolves it. With internet, plain pip
    # installs all of it.
    echo "== setting up $name (dbt-core $dbt_range, without dbt-core-experimental-parser)"
    "${pip[@]}" --no-deps "dbt-core$dbt_range" "$@"
    "${pip[@]}" --no-deps -e "$ROOT"
    "$venv/bin/python" - "dbt-core" "dbtproof[dev,docs]" "$@" <<'PY' | "${pip[@]}" -r /dev/stdin
import sys
from importlib.metadata import requires

from pip._vendor.packaging.requirements import Requirement

given = [Requirement(arg) for arg in sys.argv[1:]]
skip = {"dbt-core-experimental-parser", *(r.name.lower() for r in given)}
wanted = set()
for package in given:
    for line in requires(package.name) or []:
        needed = Requirement(line)
        extras = {"", *package.extras}
        if needed.marker is not None and not any(
            needed.marker.evaluate({"extra": extra}) for extra in extras
        ):
            continue
        if needed.name.lower() not in skip:
            needed.marker = None
            wanted.add(str(needed))
print("\n".join(sorted(wanted)))
PY
    echo "$stamp" > "$venv/.dbtproof-stamp"
}

# The main leg's virtualenv: dbt-core 1.12 (the current stable line), DuckDB and PostgreSQL,
# and the adapters whose profiles are checked without a server. Their newest releases that
# accept dbt-core 1.12: dbt-bigquery and dbt-snowflake 1.12, the others 1.11.
make_main_venv() {
    WITHOUT_PARSER=1 make_venv .venv ">=1.12,<1.13" "dbt-duckdb>=1.11,<1.12" \
        "dbt-postgres>=1.11,<1.12" "dbt-bigquery>=1.12,<1.13" "dbt-snowflake>=1.12,<1.13" \
        "dbt-spark[PyHive,session]>=1.11,<1.12" "dbt-trino>=1.11,<1.12" "dbt-athena>=1.11,<1.12" \
        "mcp>=2,<3"  # dbtproof[mcp], for tests/plugin/test_agents_mcp.py (--no-deps, then its needs)
}
