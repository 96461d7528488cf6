"""Python's warnings while dbt works, treated as the ``dbt`` command treats them.

The dbt CLI runs under Python's own warning filters: a ``DeprecationWarning`` raised in a
library's code (jinja2 reading ``'\\s'`` in a project's Jinja string: ``invalid escape
sequence``) is ignored, other warnings are printed once per place. Under pytest every
``DeprecationWarning`` is shown, and a ``filterwarnings = error`` would turn one raised in
dbt's compilation into a failed compile that the CLI never has. So while dbt parses,
compiles, renders or runs for dbtproof, Python's default filters apply; warnings they let
through still reach pytest's summary. An interpreter given filters of its own (``-W``,
``PYTHONWARNINGS``) runs dbt with them, as the CLI would: the filters are left alone.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Python's default filters (a release build), in order: the first that matches decides.
_PYTHON_DEFAULTS: tuple[tuple[str, type[Warning], str], ...] = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


@contextmanager
def warnings_as_the_dbt_cli() -> Iterator[None]:
    """Within the block, Python's default warning filters (see the module's documentation);
    the filters before it are back after it."""
    if sys.warnoptions:
        yield
        return
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(_PYTHON_DEFAULTS):
            warnings.filterwarnings(action, category=category, module=module)  # type: ignore[arg-type]
        yield
