"""The proposals as a patch of the project's YAML files, and written.

Each model's tests go where dbt reads them: its entry under ``models:`` in the project's
YAML (found by name; a new ``_<model>__dbtproof.yml`` beside its SQL file when it has
none), the column's ``data_tests:`` list (added, with the column or ``columns:``, when
missing), and ``unit_tests:`` of the same file. The files are edited as text at the
places PyYAML's parser marks, so their comments and layout stay; a test the file already
has (same test on the same column, same unit test name) is never written again, and an
entry written in flow style (``{name: x}``, ``[a, b]``) is left alone (the proposal is
then reported as not placed). Every edited file must still parse.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbtproof.agents.proposals import Proposal
from dbtproof.errors import DbtproofError

#: Folders of a project that hold no YAML of its own.
_SKIPPED = frozenset({"target", "dbt_packages", "dbt_modules", "logs", "node_modules", ".venv"})


@dataclass
class _File:
    path: Path
    text: str
    root: Any
    #: ``(index, text)`` insertions into the original text.
    edits: list[tuple[int, str]] = field(default_factory=list)
    new: bool = False


def _project_files(project_dir: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir).parts
        hidden = any(part.startswith(".") for part in relative)
        if path.suffix in suffixes and not (_SKIPPED & set(relative) or hidden) and path.is_file():
            yield path


def _key(mapping: Any, name: str) -> tuple[Any, Any] | tuple[None, None]:
    if isinstance(mapping, yaml.MappingNode):
        for key, value in mapping.value:
            if isinstance(key, yaml.ScalarNode) and key.value == name:
                return key, value
    return None, None


def _items(node: Any) -> list[Any]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _named(sequence: Any, name: str) -> Any:
    for item in _items(sequence):
        _, value = _key(item, "name")
        if isinstance(value, yaml.ScalarNode) and value.value.lower() == name.lower():
            return item
    return None


def _entry_name(item: Any) -> str | None:
    if isinstance(item, yaml.ScalarNode):
        return str(item.value)
    if isinstance(item, yaml.MappingNode) and item.value:
        return str(item.value[0][0].value)
    return None


def _indented(text: str, column: int) -> str:
    pad = " " * column
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def _at_end(file: _File, node: Any) -> int:
    """Where text goes to follow *node*: the start of the line after its last line."""
    index = node.end_mark.index
    line_start = file.text.rfind("\n", 0, index) + 1
    if file.text[line_start:index].strip():  # ends mid-line: after that line
        newline = file.text.find("\n", index)
        return len(file.text) if newline < 0 else newline + 1
    return line_start


def _insert(file: _File, index: int, text: str) -> None:
    if index == len(file.text) and file.text and not file.text.endswith("\n"):
        text = "\n" + text
    file.edits.append((index, text))


class _Patcher:
    """Places proposals into the project's YAML files."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.files: dict[Path, _File] = {}
        self.not_placed: list[Proposal] = []
        for path in _project_files(self.project_dir, (".yml", ".yaml")):
            try:
                text = path.read_text(encoding="utf-8")
                root = yaml.compose(text, Loader=yaml.SafeLoader)
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            self.files[path] = _File(path, text, root)

    def _model_entry(self, model: str) -> tuple[_File, Any] | None:
        for file in self.files.values():
            _, models = _key(file.root, "models")
            entry = _named(models, model)
            if entry is not None:
                return file, entry
        return None

    def _new_file(self, model: str) -> _File:
        sql = next(
            (p for p in _project_files(self.project_dir, (".sql", ".py")) if p.stem == model),
            None,
        )
        folder = sql.parent if sql is not None else self.project_dir / "models"
        path = folder / f"_{model}__dbtproof.yml"
        text = f"version: 2\n\nmodels:\n  - name: {model}\n"
        file = _File(path, text, yaml.compose(text, Loader=yaml.SafeLoader), new=True)
        self.files[path] = file
        return file

    def place_data_tests(self, model: str, proposals: list[Proposal]) -> None:
        found = self._model_entry(model) or None
        if found is None:
            file = self._new_file(model)
            found = self._model_entry(model)
        assert found is not None
        file, entry = found
        if entry.flow_style:
            self.not_placed.extend(proposals)
            return
        key_column = entry.value[0][0].start_mark.column
        _, columns = _key(entry, "columns")
        by_column: dict[str, list[Proposal]] = {}
        for proposal in proposals:
            by_column.setdefault(str(proposal.column), []).append(proposal)
        new_columns = []
        for column, wanted in by_column.items():
            item = _named(columns, column)
            if item is None:
                new_columns.append((column, wanted))
            elif item.flow_style:
                self.not_placed.extend(wanted)
            else:
                self._into_column(file, item, wanted)
        if not new_columns:
            return
        text = "".join(self._column_text(column, wanted) for column, wanted in new_columns)
        if isinstance(columns, yaml.SequenceNode) and not columns.flow_style and columns.value:
            _insert(file, _at_end(file, columns), _indented(text, _item_column(columns)))
        elif columns is None:
            block = "columns:\n" + _indented(text, 2)
            _insert(file, _at_end(file, entry), _indented(block, key_column))
        else:
            self.not_placed.extend(p for _, wanted in new_columns for p in wanted)

    def _column_text(self, column: str, wanted: list[Proposal]) -> str:
        tests = "".join(_indented(p.yaml, 4) for p in wanted)
        return f"- name: {yaml.safe_dump(column).splitlines()[0]}\n  data_tests:\n{tests}"

    def _into_column(self, file: _File, item: Any, wanted: list[Proposal]) -> None:
        _, tests = _key(item, "data_tests")
        if tests is None:
            _, tests = _key(item, "tests")
        have = {_entry_name(entry) for entry in _items(tests)}
        wanted = [p for p in wanted if p.test is not None and p.test.test not in have]
        if not wanted:
            return
        text = "".join(p.yaml for p in wanted)
        if isinstance(tests, yaml.SequenceNode) and not tests.flow_style and tests.value:
            _insert(file, _at_end(file, tests), _indented(text, _item_column(tests)))
        elif tests is None:
            column = item.value[0][0].start_mark.column
            block = "data_tests:\n" + _indented(text, 2)
            _insert(file, _at_end(file, item), _indented(block, column))
        else:
            self.not_placed.extend(wanted)

    def place_unit_test(self, proposal: Proposal) -> None:
        assert proposal.unit is not None
        for file in self.files.values():
            _, units = _key(file.root, "unit_tests")
            if _named(units, str(proposal.unit["name"])) is not None:
                return  # written already
        found = self._model_entry(proposal.model)
        file = found[0] if found is not None else self._new_file(proposal.model)
        _, units = _key(file.root, "unit_tests")
        if isinstance(units, yaml.SequenceNode) and not units.flow_style and units.value:
            _insert(file, _at_end(file, units), _indented(proposal.yaml, _item_column(units)))
        elif units is None:
            _insert(file, len(file.text), "\nunit_tests:\n" + _indented(proposal.yaml, 2))
        else:
            self.not_placed.append(proposal)

    def results(self) -> dict[Path, tuple[str, str]]:
        """``path -> (old text, new text)`` of every file that changes."""
        changed = {}
        for path, file in self.files.items():
            if not file.edits:
                continue
            text = file.text
            at: dict[int, str] = {}
            for index, insert in file.edits:  # at one place, in the order given
                at[index] = at.get(index, "") + insert
            for index in sorted(at, reverse=True):
                text = text[:index] + at[index] + text[index:]
            try:
                yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise DbtproofError(
                    f"dbtproof: the proposals would leave {path} unreadable ({exc}); nothing "
                    f"was written. Add them by hand from `dbtproof propose`'s output."
                ) from None
            changed[path] = ("" if file.new else file.text, text)
        return changed


def _item_column(sequence: Any) -> int:
    """The column a block sequence's ``-`` stands at."""
    first = sequence.value[0]
    return max(0, first.start_mark.column - 2)


def _patcher(project_dir: Path, proposals: Iterable[Proposal]) -> _Patcher:
    patcher = _Patcher(project_dir)
    chosen = [p for p in proposals if p.passes]
    by_model: dict[str, list[Proposal]] = {}
    for proposal in chosen:
        if proposal.kind == "data_test":
            by_model.setdefault(proposal.model, []).append(proposal)
    for model, wanted in by_model.items():
        patcher.place_data_tests(model, wanted)
    for proposal in chosen:
        if proposal.kind == "unit_test":
            patcher.place_unit_test(proposal)
    return patcher


def yaml_patch(project_dir: Path, proposals: Iterable[Proposal]) -> str:
    """A unified diff adding the passing *proposals* to *project_dir*'s YAML files."""
    project_dir = Path(project_dir)
    parts = []
    for path, (old, new) in sorted(_patcher(project_dir, proposals).results().items()):
        name = path.relative_to(project_dir).as_posix()
        parts.extend(
            difflib.unified_diff(
                old.splitlines(True),
                new.splitlines(True),
                fromfile=f"a/{name}" if old else "/dev/null",
                tofile=f"b/{name}",
            )
        )
    return "".join(parts)


def apply_patch(project_dir: Path, proposals: Iterable[Proposal]) -> list[Path]:
    """Write the passing *proposals* into *project_dir*'s YAML files; the files written."""
    written = []
    for path, (_, new) in sorted(_patcher(Path(project_dir), proposals).results().items()):
        path.write_text(new, encoding="utf-8")
        written.append(path)
    return written
