"""How the session's warehouse spells fixture SQL: the :class:`~dbtproof.engine.inputs.Dialect`.

Learned once per session from the adapter: dbt's own ``cast`` macro, the adapter's
quote character, whether the connection treats ``\\`` in string literals as an escape,
whether it takes ``VALUES`` lists, how it folds unquoted names, the types a value
gets when nothing is known of its column, and its binary type for ``bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dbtproof import _dbt_compat as compat
from dbtproof.engine.inputs import Dialect

#: Per adapter type: (fold, max identifier bytes, bigint, double, decimal, scaled decimal, text).
_RULES: Mapping[str, tuple[str, int | None, str, str, str, str, str]] = MappingProxyType(
    {
        "postgres": ("lower", 63, "bigint", "double precision", "numeric", "", "text"),
        "redshift": ("lower", 127, "bigint", "double precision", "numeric", "", "varchar"),
        "duckdb": ("lower", None, "bigint", "double", "", "decimal(38, {scale})", "varchar"),
        "snowflake": ("upper", 255, "bigint", "double", "", "number(38, {scale})", "varchar"),
        "bigquery": ("", 300, "int64", "float64", "bignumeric", "", "string"),
        "spark": ("lower", None, "bigint", "double", "", "decimal(38, {scale})", "string"),
        "databricks": ("lower", None, "bigint", "double", "", "decimal(38, {scale})", "string"),
        "trino": ("lower", None, "bigint", "double", "", "decimal(38, {scale})", "varchar"),
    }
)
#: Warehouses whose string literals always treat a backslash as an escape.
_BACKSLASH_ESCAPES = frozenset(
    {"snowflake", "redshift", "bigquery", "spark", "databricks", "mysql"}
)
#: Warehouses whose ``varchar`` needs a length (an unlimited text is their text type).
_VARYING_NEEDS_LENGTH = frozenset({"spark", "databricks"})
#: Per adapter type: the binary type and how its cast reads ``bytes`` written as text
#: (see :attr:`Dialect.binary_style`); other warehouses refuse ``bytes`` values clearly.
_BINARY: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"postgres": ("bytea", "hex"), "duckdb": ("blob", "escaped")}
)
_DEFAULT = ("lower", None, "bigint", "double precision", "numeric", "", "varchar")

#: The name of the probe values in dbt's cast macro.
_V, _T = "__DBTPROOF_V__", "__DBTPROOF_T__"


def dialect_for(adapter: Any, context: compat.RenderContext, connection: str) -> Dialect:
    """The :class:`Dialect` of *adapter*'s warehouse (its connection must be open)."""
    try:
        template = str(context.call_macro("cast", _V, _T)).strip()
        if _V not in template or _T not in template:
            raise ValueError(template)
    except Exception:  # noqa: BLE001 - dbt without a cast macro: standard SQL
        template = f"cast({_V} as {_T})"

    head, _, tail = template.partition(_V)

    def cast(value: str, data_type: str) -> str:
        # The value is put in last, so nothing in it is ever taken for the type's slot.
        return head.replace(_T, data_type) + value + tail.replace(_T, data_type)

    values = _probe(adapter, connection, "select c1 from (values (1), (2)) as dbtproof_t(c1)")
    kind = compat.adapter_type(adapter)
    # Where '\' escapes inside '...': always on these warehouses; on PostgreSQL when the
    # session says so.
    backslash = kind in _BACKSLASH_ESCAPES
    if kind == "postgres":
        found = _fetch_one(adapter, connection, "show standard_conforming_strings")
        backslash = str(found).strip().lower() == "off"
    quoted = compat.quote(adapter, "x")
    quote_char = quoted[0] if len(quoted) >= 3 and quoted[-1] == quoted[0] else '"'
    fold, limit, bigint, double, decimal, scaled, text = _RULES.get(kind, _DEFAULT)
    binary, binary_style = _BINARY.get(kind, ("", ""))
    return Dialect(
        cast=cast,
        quote=lambda name: compat.quote(adapter, name),
        values=values,
        quote_char=quote_char,
        backslash_escapes=backslash,
        quote_escape="\\'" if kind == "bigquery" else "''",
        fold=fold,
        max_identifier_bytes=limit,
        bigint=bigint,
        double=double,
        decimal=decimal or "numeric",
        decimal_scaled=scaled,
        text=text,
        binary=binary,
        binary_style=binary_style,
        varying_needs_length=kind in _VARYING_NEEDS_LENGTH,
        unknown="varchar(10485759)" if kind == "postgres" else "",
    )


def _probe(adapter: Any, connection: str, sql: str) -> bool:
    try:
        compat.cursor_fetch(adapter, sql)
        return True
    except Exception:  # noqa: BLE001 - the warehouse does not take this form
        compat.release_connection(adapter)
        compat.hold_connection(adapter, connection)
        return False


def _fetch_one(adapter: Any, connection: str, sql: str) -> Any:
    try:
        _, data = compat.cursor_fetch(adapter, sql)
        return data[0][0] if data else None
    except Exception:  # noqa: BLE001 - a setting the warehouse does not have
        compat.release_connection(adapter)
        compat.hold_connection(adapter, connection)
        return None
