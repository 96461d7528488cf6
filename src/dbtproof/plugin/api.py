"""What other pytest plugins (a credential provider, a conftest that mints a token) call on
a dbtproof run, without reaching into its private state."""

from __future__ import annotations

import pytest


def register_secret(config: pytest.Config, value: str, source: str) -> bool:
    """Keep *value* out of everything the run prints or leaves (reports, the terminal, the
    JUnit XML, logs, the run's files, GitHub's masks), from now on.

    *source* says where the value came from (``"minted by my-provider"``). Call it as soon
    as the value exists, from ``pytest_configure`` (``trylast``, after dbtproof's) or later:
    a fixture, a test. Returns whether it was registered: a value shorter than 6 characters
    (or empty) is not (:mod:`dbtproof.safety.redaction`), nor any where dbtproof runs no dbt
    project on *config* (none found, ``-p no:dbtproof``, or before its own
    ``pytest_configure``): it scrubs nothing there.
    """
    from dbtproof.plugin.state import state_key

    state = config.stash.get(state_key, None)
    return state is not None and state.secrets.add(value, source)
