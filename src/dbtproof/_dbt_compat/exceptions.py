"""dbt's own exceptions, told apart from everything else."""

from __future__ import annotations


def is_dbt_exception(exc: BaseException) -> bool:
    """True for dbt's own (user-facing) exceptions: compilation, runtime, database errors."""
    from dbt_common.exceptions import DbtBaseException

    return isinstance(exc, DbtBaseException)
