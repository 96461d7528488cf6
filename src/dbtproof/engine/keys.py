"""The keys of ``run_model(given={...})``: :func:`ref` and :func:`source`."""

from __future__ import annotations

from dataclasses import dataclass

from dbtproof.errors import InputKeyError


@dataclass(frozen=True)
class Ref:
    """An upstream model, seed or snapshot, as the model names it with ``ref()``."""

    name: str
    version: str | int | float | None = None
    package: str | None = None

    def __str__(self) -> str:
        args = [repr(self.name)] if self.package is None else [repr(self.package), repr(self.name)]
        if self.version is not None:
            args.append(f"v={self.version!r}")
        return f"ref({', '.join(args)})"


@dataclass(frozen=True)
class Source:
    """An upstream source table, as the model names it with ``source()``."""

    source_name: str
    table_name: str

    def __str__(self) -> str:
        return f"source({self.source_name!r}, {self.table_name!r})"


def ref(name: str, version: str | int | float | None = None, package: str | None = None) -> Ref:
    """The key of an upstream model, seed or snapshot in ``dbt.run_model(given={...})``.

    ``ref("stg_orders")``, ``ref("dim_customers", version=2)``,
    ``ref("events", package="tracking")``. A plain string key ``"stg_orders"`` means
    ``ref("stg_orders")``.
    """
    if not isinstance(name, str) or not name:
        raise InputKeyError(
            f"dbtproof: ref() takes a model name (a non-empty string), got {name!r}. "
            "Write ref('stg_orders'), or give the name as a string key."
        )
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, (str, int, float))
    ):
        raise InputKeyError(
            f"dbtproof: ref({name!r}, version=...) takes a version number or string, "
            f"got {version!r}."
        )
    if package is not None and (not isinstance(package, str) or not package):
        raise InputKeyError(
            f"dbtproof: ref({name!r}, package=...) takes a package name (a non-empty "
            f"string), got {package!r}."
        )
    return Ref(name, version, package)


def source(source_name: str, table_name: str) -> Source:
    """The key of an upstream source table in ``dbt.run_model(given={...})``.

    ``source("shop", "raw_orders")`` stands for ``{{ source('shop', 'raw_orders') }}``.
    """
    for what, value in (("source name", source_name), ("table name", table_name)):
        if not isinstance(value, str) or not value:
            raise InputKeyError(
                f"dbtproof: source() takes a {what} (a non-empty string), got {value!r}. "
                "Write source('shop', 'raw_orders')."
            )
    return Source(source_name, table_name)


def as_key(key: object) -> Ref | Source:
    """A ``given`` key as a :class:`Ref` or :class:`Source` (a plain string is a ref)."""
    if isinstance(key, (Ref, Source)):
        return key
    if isinstance(key, str) and key:
        return Ref(key)
    raise InputKeyError(
        f"dbtproof: the keys of given= are ref('name'), source('source', 'table') or a model "
        f"name (a non-empty string), got {key!r} ({type(key).__name__})."
    )
