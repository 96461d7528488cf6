"""Large fixtures loaded through the database driver's bulk path, for one ``run_model`` call.

A fixture of at least :data:`BULK_ROWS` rows is not written into the statement as a
``VALUES`` list: its columns, as the texts the SQL path would have quoted, are handed to
the driver as data (:func:`dbtproof._dbt_compat.stage_rows`), and the fixture's SQL casts
them from that relation to their types as the ``VALUES`` path does. The values never
become SQL text. :class:`Staging` names the relations of one call and drops them at its
end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine.execute import CONNECTION
from dbtproof.errors import DbtproofError

#: Fixtures of at least this many rows go through the bulk path, where there is one.
BULK_ROWS = 1000


class Staging:
    """The relations one ``run_model`` call loaded through the bulk path, until :meth:`clear`."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.names: list[str] = []
        #: Whether the adapter has a bulk path at all (else :meth:`stage` is never offered).
        self.available = compat.can_stage(adapter)

    def stage(self, columns: Iterable[list[str | None]]) -> str | None:
        """Load *columns* (texts or None) as a relation of the open connection; its SQL name,
        or None when the driver has no bulk path (the caller writes SQL instead).

        A driver that refuses the rows (PostgreSQL: text its encoding cannot hold) leaves
        the rest of the call to the SQL path, whose errors name the row.
        """
        if not self.available:
            return None
        name = f"dbtproof_fixture_{len(self.names) + 1}"
        try:
            relation = compat.stage_rows(self.adapter, name, columns)
        except DbtproofError:
            raise  # the fixture's own error (a value that cannot be written)
        except Exception:  # noqa: BLE001 - the driver refused: the SQL path says which row
            compat.release_connection(self.adapter)
            compat.hold_connection(self.adapter, CONNECTION)
            self.available = False
            return None
        if relation is not None:
            self.names.append(name)
        return relation

    def clear(self) -> None:
        """Drop every relation :meth:`stage` loaded (a closed connection dropped them already)."""
        for name in self.names:
            compat.unstage_rows(self.adapter, name)
        self.names.clear()
