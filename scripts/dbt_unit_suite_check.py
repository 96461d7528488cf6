"""Parity of dbtproof's native unit tests with dbt's, on dbt's own unit-testing suite.

dbt-core's functional tests for unit testing (``tests/functional/unit_testing/`` of a
dbt-core checkout, e.g. the ``1.11.latest`` branch) and dbt-adapters' unit-testing tests
(``dbt-tests-adapter/src/dbt/tests/adapter/unit_testing/``) define small dbt projects as
pytest fixture methods of test classes (``models``, ``seeds``, ``macros``, ...). This script
turns each test class into a project of its own (its fixtures written as dbt's test
fixtures write them), runs dbt's verdict on every unit test of it (``dbt build`` of
everything but tests, then ``dbt test --select test_type:unit``, as the original tests do)
and dbtproof's (``pytest dbt_project.yml --dbt-select test_type:unit``, the native
unit-test items), and compares them per unit test:

* ``agree``: the same verdict (pass or fail);
* ``disagree``: dbt and dbtproof give opposite verdicts;
* ``dbtproof error``: dbt gives a verdict, dbtproof errors (a parity failure too);
* ``dbt error``: dbt itself errors (the suite's expected-error tests), split into both
  erroring and dbtproof judging.

A class whose project dbt cannot even parse counts under ``dbt error`` as one project
without unit tests. Classes the dbt CLI cannot reproduce (they patch dbt's internals with
mocks) are listed and left out.

dbt runs in this process (dbt's own runner, as dbt's tests run it), dbtproof as pytest in a
process of its own, each project in a schema of its own on PostgreSQL (the suite is written
for it), dropped after. dbt-adapters' tests are the base classes of dbt-tests-adapter as
dbt-postgres subclasses them; its types test becomes one project per data type.

Usage (dbt-core 1.11 with dbt-postgres; PostgreSQL at 127.0.0.1:5432, user postgres,
database test)::

    git -C <dbt-core git dir> archive 1.11.latest tests | tar -x -C /tmp/suite/dbt-core
    PYTHONPATH=src .venv/bin/python scripts/dbt_unit_suite_check.py \\
        --suite /tmp/suite/dbt-core/tests/functional/unit_testing --work /tmp/suite/work

    # dbt-adapters: dbt-tests-adapter's unit_testing/*.py into <dir>/ut_base/ (with an
    # __init__.py), dbt-postgres's tests/functional/adapter/test_unit_testing.py into <dir>
    # with its imports of dbt.tests.adapter.unit_testing.X read as ut_base.X
    PYTHONPATH=src .venv/bin/python scripts/dbt_unit_suite_check.py --suite <dir> --work ...

``--dbt-utils DIR`` points packages named ``dbt-labs/dbt_utils`` at a local checkout (no
hub access needed); ``--reuse-dbt`` keeps dbt's verdicts from an earlier run (only
dbtproof's are run again); ``-k TEXT`` runs the classes whose name contains TEXT;
``--summary-only`` summarizes ``<work>/report.json`` again.
The report goes to stdout and, as JSON, to ``<work>/report.json`` (``report-k.json`` with -k).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from copy import deepcopy
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPORTER = "dbt_unit_suite_reporter"

#: Classes the dbt CLI cannot reproduce, and why.
NOT_FROM_THE_CLI = {
    "TestUnitTestExternalProjectNode": "its external model comes from a mocked dbt plugin",
}

#: The fixtures dbt's ``project`` fixture writes into folders of the project.
FOLDERS = {
    "models": "models",
    "properties": "models",
    "macros": "macros",
    "snapshots": "snapshots",
    "seeds": "seeds",
    "tests": "tests",
    "analyses": "analyses",
    "functions": "functions",
}


# -- the test classes ----------------------------------------------------------------------


def _fixture_function(value: Any) -> Any:
    """The function under a pytest fixture, or None for anything else."""
    getter = getattr(value, "_get_wrapped_function", None)
    if getter is not None:
        return getter()
    wrapped = getattr(value, "__pytest_wrapped__", None)
    return wrapped.obj if wrapped is not None else None


def _is_fixture(value: Any) -> bool:
    return _fixture_function(value) is not None


def _autouse(value: Any) -> bool:
    marker = getattr(value, "_fixture_function_marker", None) or getattr(
        value, "_pytestfixturefunction", None
    )
    return bool(getattr(marker, "autouse", False))


class Resolver:
    """Fixture values of one test class, as pytest would give them (class scope)."""

    def __init__(self, cls: type, module: Any, base: dict[str, Any]) -> None:
        self.cls = cls
        self.instance = cls()
        self.module = module
        self.values = dict(base)

    def fixture(self, name: str) -> Any:
        for owner in inspect.getmro(self.cls):
            if name in vars(owner) and _is_fixture(vars(owner)[name]):
                return vars(owner)[name]
        found = getattr(self.module, name, None)
        return found if _is_fixture(found) else None

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.values:
            return self.values[name]
        fixture = self.fixture(name)
        if fixture is None:
            return default
        function = _fixture_function(fixture)
        params = list(inspect.signature(function).parameters)
        bound = params[:1] == ["self"]
        args = [self.get(p) for p in (params[1:] if bound else params)]
        value = function(self.instance, *args) if bound else function(*args)
        if inspect.isgenerator(value):
            value = next(value)
        self.values[name] = value
        return value

    def autouse(self) -> None:
        for owner in reversed(inspect.getmro(self.cls)):
            for name, value in vars(owner).items():
                if _is_fixture(value) and _autouse(value):
                    self.get(name)


def test_classes(module: Any) -> list[type]:
    """The classes pytest would collect from *module* (Test*, with test methods)."""
    found = []
    for name, cls in vars(module).items():
        if not (inspect.isclass(cls) and name.startswith("Test")):
            continue
        if cls.__module__ != module.__name__:
            continue
        if any(m.startswith("test") for m in dir(cls)):
            found.append(cls)
    return found


# -- a class as a project --------------------------------------------------------------------


def _write(path: Path, files: dict[str, Any]) -> None:
    """dbt's write_project_files_recursively, on pathlib."""
    path.mkdir(parents=True, exist_ok=True)
    for name, value in (files or {}).items():
        if name.endswith((".yml", ".yaml")):
            text = value if isinstance(value, str) else yaml.safe_dump(value)
            (path / name).write_text(text)
        elif name.endswith((".sql", ".csv", ".md", ".txt", ".py")):
            (path / name).write_text(value)
        else:
            _write(path / name, value)


def _profile_target(adapter: str, root: Path) -> dict[str, Any]:
    if adapter == "duckdb":
        return {"type": "duckdb", "threads": 1, "path": str(root / "suite.duckdb")}
    return {
        "type": "postgres",
        "threads": 2,
        "host": "127.0.0.1",
        "port": 5432,
        "user": "postgres",
        "pass": "",
        "dbname": "test",
    }


class Project:
    """One test class written as a dbt project under *root*."""

    def __init__(
        self,
        cls: type,
        module: Any,
        root: Path,
        args: argparse.Namespace,
        variant: dict[str, str] | None = None,
    ) -> None:
        self.cls = cls
        #: Model files written over the class's own (one data type of a types test).
        self.variant = variant or {}
        self.root = root
        self.schema = "dbtsuite_" + re.sub(r"[^a-z0-9]", "", root.name.lower())[-40:]
        self.profiles = root / "profiles"
        self.dir = root / "project"
        self.args = args
        import py  # pytest's py.path, as dbt's fixtures take project_root

        base = {
            "unique_schema": self.schema,
            "prefix": self.schema,
            "project_root": py.path.local(self.dir),
            "profiles_root": py.path.local(self.profiles),
            "dbt_profile_target": _profile_target(args.adapter, root),
        }
        self.fixtures = Resolver(cls, module, base)
        source = "\n".join(
            inspect.getsource(m) for n, m in inspect.getmembers(cls) if n.startswith("test")
        )
        #: Extra dbt commands on another target, as the original test runs them first.
        self.other_targets = re.findall(
            r'run_dbt\(\s*\[\s*"(seed|run)",\s*"--target",\s*"(\w+)"\s*\]', source
        )

    def write(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.dir.mkdir(parents=True)
        self.profiles.mkdir()
        get = self.fixtures.get
        target = get("dbt_profile_target")
        target["schema"] = self.schema
        profile = {"test": {"outputs": {"default": target}, "target": "default"}}
        update = get("profiles_config_update") or {}
        profile.update(update)
        (self.profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
        config: dict[str, Any] = {
            "name": "test",
            "profile": "test",
            "flags": {"send_anonymous_usage_stats": False},
        }
        update = get("project_config_update") or {}
        config.update(yaml.safe_load(update) if isinstance(update, str) else update)
        (self.dir / "dbt_project.yml").write_text(yaml.safe_dump(config))
        for kind in ("packages", "dependencies", "selectors"):
            data = get(kind) or {}
            if data:
                if kind in ("packages", "dependencies"):
                    data = self._local_packages(deepcopy(data))
                text = data if isinstance(data, str) else yaml.safe_dump(data)
                (self.dir / f"{kind}.yml").write_text(text)
        for fixture, folder in FOLDERS.items():
            _write(self.dir / folder, get(fixture) or {})
        _write(self.dir / "models", self.variant)
        self.fixtures.autouse()

    def _local_packages(self, data: Any) -> Any:
        if isinstance(data, str):
            data = yaml.safe_load(data)
        for entry in data.get("packages", []):
            if entry.get("package") == "dbt-labs/dbt_utils" and self.args.dbt_utils:
                entry.pop("package")
                entry.pop("version", None)
                entry["local"] = str(self.args.dbt_utils)
        return data

    @property
    def needs_deps(self) -> bool:
        return (self.dir / "packages.yml").exists() or (self.dir / "dependencies.yml").exists()

    @property
    def uses_functions(self) -> bool:
        return any((self.dir / "functions").rglob("*.*"))


# -- running dbt and dbtproof ------------------------------------------------------------------


def _env(project: Project) -> dict[str, str]:
    env = dict(os.environ)
    env["DBT_PROFILES_DIR"] = str(project.profiles)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _dbt(project: Project, log: Path, *args: str) -> int:
    """One dbt command, in this process (dbt's own runner, as dbt's tests run it: the
    import paid once), its output in *log*; 0 success, 1 failures, 2 an error."""
    from dbt.cli.main import dbtRunner

    flags = ["--quiet", "--project-dir", str(project.dir), "--profiles-dir", str(project.profiles)]
    if args[0] not in ("deps",):
        flags += ["--log-path", str(project.root / "dbt-logs")]
    here = os.getcwd()
    os.chdir(project.dir)
    try:
        with log.open("a") as out:
            out.write(f"\n$ dbt {' '.join(args)}\n")
            out.flush()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                result = dbtRunner().invoke([*args, *flags])
            if result.exception is not None:
                out.write(f"exception: {result.exception}\n")
    finally:
        os.chdir(here)
    if result.exception is not None:
        return 2
    return 0 if result.success else 1


def _drop_schemas(project: Project) -> None:
    if project.args.adapter != "postgres":
        return
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "select nspname from pg_namespace where nspname = %s or nspname like %s",
            (project.schema, project.schema + "\\_%"),
        )
        for (name,) in cur.fetchall():
            cur.execute(f'drop schema if exists "{name}" cascade')
    conn.close()


def dbt_verdicts(project: Project) -> dict[str, Any]:
    """dbt's status of each unit test (or the parse error), from run_results.json."""
    log = project.root / "dbt.log"
    if project.needs_deps and _dbt(project, log, "deps") != 0:
        return {"error": "dbt deps failed", "tests": {}}
    for command, target in project.other_targets:
        _dbt(project, log, command, "--target", target)
    # Everything built first (the inputs dbt's unit tests describe), tests left out.
    _dbt(project, log, "build", "--exclude-resource-type", "unit_test", "test")
    results = project.dir / "target" / "run_results.json"
    results.unlink(missing_ok=True)
    code = _dbt(project, log, "test", "--select", "test_type:unit")
    if not results.exists():
        return {"error": f"dbt test exited {code} without results", "tests": {}}
    found = json.loads(results.read_text())["results"]
    tests = {
        r["unique_id"]: {"status": r["status"], "message": (r.get("message") or "")[:400]}
        for r in found
        if r["unique_id"].startswith("unit_test.")
    }
    return {"error": None if tests or code == 0 else f"dbt test exited {code}", "tests": tests}


def dbtproof_verdicts(project: Project) -> dict[str, Any]:
    """dbtproof's outcome of each native unit-test item."""
    out = project.root / "dbtproof.json"
    out.unlink(missing_ok=True)
    log = project.root / "dbtproof.log"
    log.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "dbt_project.yml",
        "-p",
        "no:cacheprovider",
        "-p",
        REPORTER,
        "--no-dbt-builds",
        "--dbt-select",
        "test_type:unit",
        "--dbt-profiles-dir",
        str(project.profiles),
        "--basetemp",
        str(project.root / "basetemp"),
        "-q",
        "-rfE",
    ]
    env_out = {"DBT_UNIT_SUITE_REPORT": str(out)}
    with log.open("w") as stream:
        done = subprocess.run(
            cmd,
            cwd=project.dir,
            env={**_env(project), **env_out},
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    if not out.exists():
        return {"error": f"pytest exited {done.returncode} without a report", "tests": {}}
    data = json.loads(out.read_text())
    return {"error": data.get("error"), "tests": data["tests"]}


# -- comparing ---------------------------------------------------------------------------------

VERDICTS = {"pass", "fail"}


def compare(dbt: dict[str, Any], proof: dict[str, Any]) -> dict[str, str]:
    """Each unit test's category."""
    categories = {}
    for uid, result in dbt["tests"].items():
        status = result["status"]
        theirs = proof["tests"].get(uid, {}).get("status", "error")
        if status in VERDICTS:
            if theirs == status:
                categories[uid] = "agree"
            elif theirs in VERDICTS:
                categories[uid] = "disagree"
            else:
                categories[uid] = "dbtproof error"
        elif theirs in VERDICTS:
            categories[uid] = "dbt error, dbtproof judges"
        else:
            categories[uid] = "both error"
    return categories


def variants(cls: type) -> list[tuple[str, dict[str, str]]]:
    """One project per data type of dbt-adapters' types test (its ``data_types`` fixture,
    each written into its upstream model and unit test as the test method writes them);
    one project for any other class."""
    owner = next((o for o in inspect.getmro(cls) if "data_types" in vars(o)), None)
    if owner is None:
        return [("", {})]
    source = sys.modules[owner.__module__]
    types = Resolver(cls, source, {}).get("data_types")
    return [
        (
            f"[{sql_value}]",
            {
                "my_upstream_model.sql": source.my_upstream_model_sql.format(sql_value=sql_value),
                "schema.yml": source.test_my_model_yml.format(yaml_value=yaml_value),
            },
        )
        for sql_value, yaml_value in types
    ]


def run_class(
    cls: type, module: Any, args: argparse.Namespace, label: str = "", variant: Any = None
) -> dict[str, Any]:
    name = f"{module.__name__.rsplit('.', 1)[-1]}::{cls.__name__}"
    folder = name.replace("::", "__")
    if label:
        name += label
        folder += "__" + re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")[:40]
    root = args.work / folder
    record: dict[str, Any] = {"class": name}
    if cls.__name__ in NOT_FROM_THE_CLI:
        record["skipped"] = NOT_FROM_THE_CLI[cls.__name__]
        return record
    project = Project(cls, module, root, args, variant)
    saved = root / "dbt_verdicts.json"
    dbt = json.loads(saved.read_text()) if args.reuse_dbt and saved.exists() else None
    start = time.perf_counter()
    try:
        if dbt is None:
            project.write()
            _drop_schemas(project)
            dbt = dbt_verdicts(project)
            saved.write_text(json.dumps(dbt, indent=1))
        proof = dbtproof_verdicts(project)
    finally:
        _drop_schemas(project)
    record.update(
        dbt=dbt,
        dbtproof=proof,
        categories=compare(dbt, proof),
        functions=project.uses_functions,
        seconds=round(time.perf_counter() - start, 1),
    )
    return record


def load_modules(suite: Path) -> list[Any]:
    """The suite's test modules, imported as their checkout names them."""
    package_root = suite
    while (package_root.parent / "__init__.py").exists() or package_root.parent.name == "tests":
        package_root = package_root.parent
    for path in (str(suite), str(package_root.parent)):
        if path not in sys.path:
            sys.path.insert(0, path)
    prefix = ".".join(suite.relative_to(package_root.parent).parts)
    modules = []
    for path in sorted(suite.glob("test_*.py")):
        modules.append(importlib.import_module(f"{prefix}.{path.stem}"))
    return modules


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    projects = 0
    named: dict[str, list[str]] = {}
    for record in records:
        if "skipped" in record:
            continue
        projects += 1
        if record["dbt"]["error"] and not record["dbt"]["tests"]:
            counts["dbt error (project)"] += 1
            continue
        for uid, category in record["categories"].items():
            counts[category] += 1
            if category not in ("agree", "both error"):
                named.setdefault(category, []).append(f"{record['class']} {uid}")
    unit_tests = sum(v for k, v in counts.items() if k != "dbt error (project)")
    return {"projects": projects, "unit_tests": unit_tests, "counts": dict(counts), "named": named}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--suite", type=Path, action="append", default=[])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--adapter", choices=("postgres", "duckdb"), default="postgres")
    parser.add_argument("--dbt-utils", type=Path)
    parser.add_argument("--reuse-dbt", action="store_true")
    parser.add_argument("-k", dest="keyword", default="")
    parser.add_argument(
        "--summary-only", action="store_true", help="Summarize <work>/report.json again."
    )
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    records = []
    if args.summary_only:
        records = json.loads((args.work / "report.json").read_text())["records"]
        args.suite = []
    for suite in args.suite:
        for module in load_modules(suite.resolve()):
            for cls in test_classes(module):
                if args.keyword and args.keyword not in f"{module.__name__}.{cls.__name__}":
                    continue
                for label, variant in variants(cls):
                    record = run_class(cls, module, args, label, variant)
                    records.append(record)
                    shown = record.get("skipped") or dict(Counter(record["categories"].values()))
                    errors = tuple(record.get(k, {}).get("error") for k in ("dbt", "dbtproof"))
                    print(f"{record['class']}: {shown} {errors if any(errors) else ''}", flush=True)
    report = summary(records)
    report["skipped"] = {r["class"]: r["skipped"] for r in records if "skipped" in r}
    document = {"summary": report, "records": records}
    name = "report-k.json" if args.keyword else "report.json"  # -k keeps the whole run's
    (args.work / name).write_text(json.dumps(document, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
