"""Where a sample lives and what it holds: the record ``dbtproof sample`` writes.

The record (``sample-<target>.json`` in the sample folder, by default
``<project>/target/dbtproof-sample``) names the sample namespace (a PostgreSQL schema,
or a DuckDB file kept beside the record), and for each table the seed or source it was
taken from, its row count, its columns and which of them were masked. It holds no row
and no credential.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dbtproof.errors import DbtproofError

#: The sample's PostgreSQL schema (default) and the catalog a DuckDB sample is attached as.
DEFAULT_SCHEMA = "dbtproof_sample"
DUCKDB_CATALOG = "dbtproof_sample"
#: Where the sample's record (and a DuckDB sample's file) is kept, under the project.
DEFAULT_FOLDER = Path("target") / "dbtproof-sample"
RECORD_VERSION = 1


@dataclass(frozen=True)
class SampleTable:
    """One table of the sample."""

    #: Its name in the sample namespace (``seed__<seed>``, ``source__<source>__<table>``).
    name: str
    #: The unique id of the seed or source it was taken from.
    origin: str
    rows: int
    columns: list[str]
    #: The columns whose values were replaced by salted hashes (PII).
    masked: list[str]


@dataclass
class SampleRecord:
    """What one ``dbtproof sample`` made."""

    run_id: str
    target: str
    adapter: str
    #: PostgreSQL: the schema; DuckDB: the catalog the file is attached as.
    schema: str
    rows_limit: int
    created: str
    #: DuckDB: the sample's file name, beside the record.
    file: str | None = None
    tables: list[SampleTable] = field(default_factory=list)
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-safe data."""
        return asdict(self)

    def table_for(self, origin: str) -> SampleTable | None:
        """The sample's table taken from the seed or source *origin* (a unique id)."""
        return next((table for table in self.tables if table.origin == origin), None)

    def masked_columns(self) -> set[str]:
        """Every masked column name (lower case), over all tables."""
        return {name.lower() for table in self.tables for name in table.masked}


def record_path(folder: Path, target: str) -> Path:
    """The record of *target*'s sample in *folder*."""
    return folder / f"sample-{target}.json"


def save_record(folder: Path, record: SampleRecord) -> Path:
    """Write *record* into *folder* (replacing the target's earlier one); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = record_path(folder, record.target)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
    return path


def load_record(folder: Path, target: str) -> SampleRecord:
    """The record of *target*'s sample in *folder*; a :class:`DbtproofError` saying to run
    ``dbtproof sample`` when there is none (or it cannot be read)."""
    path = record_path(folder, target)
    try:
        data = json.loads(path.read_text())
        tables = [SampleTable(**table) for table in data.pop("tables")]
        record = SampleRecord(**data, tables=tables)
    except FileNotFoundError:
        raise DbtproofError(
            f"dbtproof: no sample of target {target!r} in {folder}. A person or CI makes it "
            f"first: `dbtproof sample --target {target}` (it copies a bounded, masked sample "
            f"of the seeds and sources there)."
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise DbtproofError(
            f"dbtproof: the sample record {path} cannot be read ({type(exc).__name__}). Make "
            f"the sample again: `dbtproof sample --target {target}`."
        ) from None
    if record.version != RECORD_VERSION:
        raise DbtproofError(
            f"dbtproof: the sample record {path} is of another dbtproof version. Make the "
            f"sample again: `dbtproof sample --target {target}`."
        )
    return record


def table_name(origin: Any) -> str:
    """The sample table's name for a seed or source node (at most 63 characters)."""
    if str(origin.unique_id).startswith("source."):
        name = f"source__{origin.source_name}__{origin.name}"
    else:
        name = f"seed__{origin.name}"
    return name.lower()[:63]
