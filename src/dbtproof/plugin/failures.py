"""How a dbtproof error shows in a test's report: the test's own lines and dbtproof's
message, as ``pytest.fail`` shows, not dbtproof's frames.

A :class:`~dbtproof.errors.DbtproofError` says what is wrong with the test's input and what to
do; the frames inside dbtproof that found it, and the exception it was raised from (a
database's error, already quoted in the message), only bury it. The report's traceback
is cut at the first dbtproof frame and its chain of causes left out. ``--tb=long``,
``--tb=native`` and ``--full-trace`` show everything, as any other exception (an error
inside dbtproof: a bug) always does.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from dbtproof.errors import DbtproofError

#: The folder of dbtproof's own modules: a frame there is dbtproof's.
_PACKAGE = Path(__file__).resolve().parent
#: ``--tb`` styles under which a dbtproof error shows without dbtproof's frames.
_CUT_STYLES = frozenset({"auto", "short"})


def user_error_repr(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """The report of *excinfo* for *item* without dbtproof's frames, or None: the error is
    no dbtproof error, the item is no test function, the traceback style shows everything,
    or no frame of the test's module leads to dbtproof (pytest's own report stands).

    The traceback kept runs up to the first dbtproof frame after the test's first frame
    (pytest's frames before it are cut by pytest, as for any report)."""
    error = excinfo.value
    config = item.config
    if (
        not isinstance(error, DbtproofError)
        or not isinstance(item, pytest.Function)
        or config.getoption("fulltrace", False)
        or config.getoption("tbstyle", "auto") not in _CUT_STYLES
    ):
        return None
    test_file = Path(str(item.path)).resolve()
    kept: list[TracebackType] = []
    in_test = False
    raw: TracebackType | None = excinfo.tb
    while raw is not None:
        path = _resolved(raw.tb_frame.f_code.co_filename)
        # pytest's and the plugins' frames (hook wrappers, dbtproof's among them) come first
        in_test = in_test or path == test_file
        if in_test and _is_dbtproof(path):
            break
        kept.append(raw)
        raw = raw.tb_next
    if not in_test or raw is None:
        return None
    # a copy of the chain of frames up to the test's call into dbtproof (pytest rebuilds
    # a traceback from its raw frames, so a cut traceback object would grow back)
    short: TracebackType | None = None
    for node in reversed(kept):
        short = TracebackType(short, node.tb_frame, node.tb_lasti, node.tb_lineno)
    cut = pytest.ExceptionInfo.from_exc_info((type(error), error, short))
    longrepr = item.repr_failure(cut)
    chain = getattr(longrepr, "chain", None)
    if chain and len(chain) > 1:
        # the causes come first; the error itself, last, is what the message explains
        longrepr = type(longrepr)(chain[-1:])
    return longrepr


def _is_dbtproof(path: Path | None) -> bool:
    return path is not None and path.is_relative_to(_PACKAGE)


def _resolved(path: str) -> Path | None:
    try:
        return Path(path).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
