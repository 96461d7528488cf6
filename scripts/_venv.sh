# Sourced by scripts/example and scripts/test: create a virtualenv and install dbtproof into it.
# usage: make_venv <folder> <dbt-core version range> [more packages...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

make_venv() {
    local name="$1" venv="$ROOT/$1" dbt_range="$2" stamp
    shift 2
    stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/_venv.sh" | sha256sum | cut -c1-16)-$dbt_range-$*"
    if [ -f "$venv/.dbtproof-stamp" ] && [ "$(cat "$venv/.dbtproof-stamp")" = "$stamp" ]; then
        return 0
    fi
    echo "== setting up $name (dbt-core $dbt_range)"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$ROOT[dev]" "dbt-core$dbt_range" "dbt-duckdb$dbt_range" "dbt-postgres$dbt_range" "$@"
    echo "$stamp" > "$venv/.dbtproof-stamp"
}
