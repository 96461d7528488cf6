"""MkDocs hook: the reference pages' tables, generated from the definitions in the code.

A page holds a marker where a generated part goes:

- ``<!-- dbtproof:options -->``: every command-line option the pytest plugin registers;
- ``<!-- dbtproof:ini -->``: every ini key it registers, with its type and default;
- ``<!-- dbtproof:cli -->``: the ``--help`` of the ``dbtproof`` command and of each subcommand.

The plugin and the command are found through their entry points (``pytest11`` and
``console_scripts``), as pytest and pip find them, so no module path of dbtproof is named here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

OPTIONS = "<!-- dbtproof:options -->"
INI = "<!-- dbtproof:ini -->"
CLI = "<!-- dbtproof:cli -->"


class OptionRecorder:
    """Stands for pytest's parser in ``pytest_addoption``: keeps what the plugin registers."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: list[dict[str, Any]] = []

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> Any:
        """The plugin's option group: options added to it are recorded as the parser's."""
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        """Record a command-line option."""
        self.options.append((names, attrs))

    def addini(self, name: str, help: str, type: str | None = None, **rest: Any) -> None:
        """Record an ini key."""
        self.ini.append({"name": name, "help": help, "type": type, **rest})


def recorded_options() -> OptionRecorder:
    """What dbtproof's pytest plugin registers, through its ``pytest11`` entry point."""
    (plugin,) = entry_points(group="pytest11", name="dbtproof")
    recorder = OptionRecorder()
    plugin.load().pytest_addoption(recorder)
    return recorder


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _flag(names: tuple[str, ...], attrs: dict[str, Any]) -> str:
    flag = " / ".join(names)
    if attrs.get("action") in ("store_true", "store_false"):
        return f"`{flag}`"
    metavar = attrs.get("metavar") or names[0].lstrip("-").replace("-", "_").upper()
    if attrs.get("nargs") == "?":
        return f"`{flag}[={metavar}]`"
    return f"`{flag} {metavar}`"


def options_table(recorder: OptionRecorder) -> str:
    """The command-line options as a Markdown table (option, its ini key, help)."""
    ini_names = {key["name"] for key in recorder.ini}
    rows = ["| option | ini key of the same name | what it does |", "|---|---|---|"]
    for names, attrs in recorder.options:
        key = names[0].lstrip("-").replace("-", "_")
        ini = f"`{key}`" if key in ini_names else ""
        repeat = " (repeatable)" if attrs.get("action") == "append" else ""
        help_text = _cell(attrs.get("help", ""))
        rows.append(f"| {_flag(names, attrs)} | {ini} | {help_text}{repeat} |")
    return "\n".join(rows) + "\n"


def ini_table(recorder: OptionRecorder) -> str:
    """The ini keys as a Markdown table (key, type, default, help)."""
    rows = ["| ini key | type | default | what it sets |", "|---|---|---|---|"]
    for key in recorder.ini:
        default = key.get("default")
        if isinstance(default, list):
            default = " ".join(default)
        shown = "" if default in (None, "") else f"`{_cell(default)}`"
        kind = key["type"] or "string"
        rows.append(f"| `{key['name']}` | {kind} | {shown} | {_cell(key['help'])} |")
    return "\n".join(rows) + "\n"


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def command_help(args: list[str]) -> str:
    """What ``dbtproof <args> --help`` prints, through the ``console_scripts`` entry point."""
    (script,) = entry_points(group="console_scripts", name="dbtproof")
    main = script.load()
    out = io.StringIO()
    with _columns(100), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*args, "--help"])
    return out.getvalue()


def cli_reference() -> str:
    """The ``--help`` of the command and of every subcommand, one section each."""
    sections = []
    pending = [[]]
    while pending:
        args = pending.pop(0)
        text = command_help(args)
        usage = text.split("\n\n", 1)[0]
        found = re.search(r"\{([a-z][\w,-]*)\}", usage)
        if found:
            pending.extend([*args, sub] for sub in found.group(1).split(","))
        title = " ".join(["dbtproof", *args])
        sections.append(f"## `{title}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: fills the markers of a page with what the code defines."""
    if OPTIONS in markdown or INI in markdown:
        recorder = recorded_options()
        markdown = markdown.replace(OPTIONS, options_table(recorder))
        markdown = markdown.replace(INI, ini_table(recorder))
    if CLI in markdown:
        markdown = markdown.replace(CLI, cli_reference())
    return markdown
