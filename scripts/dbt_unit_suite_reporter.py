"""pytest plugin of scripts/dbt_unit_suite_check.py: each dbt unit-test item's outcome.

Loaded with ``-p dbt_unit_suite_reporter``; writes ``{"error": ..., "tests": {unique_id:
{"status": "pass" | "fail" | "error", "message": ...}}}`` to ``$DBT_UNIT_SUITE_REPORT``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


class _Report:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.tests: dict[str, dict[str, str]] = {}
        self.error: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        for item in items:
            uid = getattr(item, "unique_id", "")
            if uid.startswith("unit_test."):
                self.ids[item.nodeid] = uid

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.error = str(report.longrepr)[-800:]

    def pytest_runtest_logreport(self, report: Any) -> None:
        uid = self.ids.get(report.nodeid)
        if uid is None:
            return
        if report.failed:
            status = "fail" if report.when == "call" else "error"
            self.tests[uid] = {"status": status, "message": str(report.longrepr)[-800:]}
        elif report.when == "call" and uid not in self.tests:
            self.tests[uid] = {"status": "pass", "message": ""}
        elif report.skipped:
            self.tests[uid] = {"status": "skipped", "message": str(report.longrepr)[-400:]}

    def pytest_sessionfinish(self, session: Any) -> None:
        path = os.environ.get("DBT_UNIT_SUITE_REPORT")
        if path:
            with open(path, "w") as out:
                json.dump({"error": self.error, "tests": self.tests}, out, indent=1)


def pytest_configure(config: pytest.Config) -> None:
    """Register the report (once per process)."""
    config.pluginmanager.register(_Report(), "dbt_unit_suite_report")
