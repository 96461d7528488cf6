"""Reading pytest's configuration: an option or its ini key, and which xdist process this is."""

from __future__ import annotations

from typing import Any

import pytest


def option(config: pytest.Config, name: str, ini: str | None = None) -> Any:
    """The command-line option *name*, else the ini key *ini* (a ``*_dir`` key is taken
    relative to rootdir), else None."""
    value = config.getoption(name)
    if value is None and ini is not None:
        value = config.getini(ini) or None
        if value is not None and ini.endswith("_dir"):
            value = str(config.rootpath / value)
    return value


def is_xdist_controller(config: pytest.Config) -> bool:
    """Whether this process is pytest-xdist's controller (it runs no test itself)."""
    return bool(getattr(config.option, "numprocesses", None)) and not is_xdist_worker(config)


def is_xdist_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")
