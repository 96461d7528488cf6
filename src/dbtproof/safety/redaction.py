"""Secret values, and the registry that keeps them out of everything a run prints or leaves.

A run's secrets are the values of ``DBT_ENV_SECRET*`` environment variables (dbt's own
convention), what a credential provider minted, and the password/token/key fields of
the resolved target (written in profiles.yml, read from a plain variable through
``env_var()``, or from a ``DBT_ENV_SECRET_`` one). The per-run
:class:`~dbtproof.plugin.state.DbtproofState` owns one :class:`SecretRegistry` (``state.secrets``);
the plugin scrubs every pytest report, the terminal, the JUnit XML and the run's files
against it.

A credential provider (or any plugin) registers what it mints before the value can reach
any output, through :func:`dbtproof.register_secret`::

    import dbtproof

    dbtproof.register_secret(config, token, "minted by github-oidc")

A value is scrubbed as a whole and in the forms Python, JSON, URLs, XML and pytest print
it: repr-escaped (either quote, ASCII-only or not, bytes), JSON-escaped, URL-quoted,
XML/HTML-escaped, those forms escaped once more (a repr inside a repr), each
whitespace-separated part of :data:`MIN_PART_LENGTH` characters or more (``pprint`` wraps
long strings at spaces), and its ends next to an ellipsis (``saferepr`` cuts long reprs in
the middle).

Values shorter than :data:`MIN_SECRET_LENGTH` (6) characters are not registered:
scrubbing ``"dev"`` or ``"1234"`` everywhere would wreck every output (names, numbers,
SQL) while hiding nothing a guess would not find (tokens and keys are far longer; a
password that short is no secret anyway).

A *public* secret — one equal to a setting of the profile that is not secret (the user,
the adapter type, the database, schema or host: :meth:`SecretRegistry.add_public`) or to a
word of :data:`COMMON_WORDS` — is masked only where the text shows it *as* a secret: after
a secret setting's name and ``=`` or ``:`` (``password=postgres``, ``"token": "..."``) or
as a URL's password (``://user:postgres@host``). Elsewhere the text is that other value
(``adapter postgres``, ``the identity postgres``), which anyone reading the output or the
profile knows: masking it there would hide nothing, say which word the password is, and
make the output unreadable. ``dbtproof doctor`` warns about such a password
(:func:`public_secret_reason`). A plain setting the profile reads from a
``DBT_ENV_SECRET_`` variable (``user: "{{ env_var('DBT_ENV_SECRET_USER') }}"``) is declared
a secret, so its value is never public (:meth:`SecretRegistry.add_target`).
Nothing here imports dbt or pytest.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from dbtproof.project.discovery import env_var_names_in
from dbtproof.project.targets import PLAIN_KEYS, known_adapter_types

#: Values shorter than this are not secrets the registry scrubs (see the module's doc).
MIN_SECRET_LENGTH = 6
#: A whitespace-separated part of a value is scrubbed on its own from this length.
MIN_PART_LENGTH = 8
#: What a secret is replaced with in text (dbt writes the same).
MARKER = "*****"
#: dbt treats every environment variable whose name starts with this as a secret.
SECRET_ENV_PREFIX = "DBT_ENV_SECRET"
#: Setting names whose values are secret (``password``, ``token``, ``private_key``,
#: ``client_secret``, ``bearer_token``, ``private_key_passphrase``, ``aws_secret_access_key``,
#: ``keyfile_json``'s ``private_key`` ...), matched anywhere in a setting's name.
SECRET_SETTING = re.compile(
    r"password|passwd|passphrase|secret|token|private_key|api_?key|access_key", re.IGNORECASE
)
#: ... unless the name says the value only points at one (``private_key_path``, ``token_uri``).
NOT_SECRET_SETTING = re.compile(r"_(uri|url|path|file|dir|env|type|method)$", re.IGNORECASE)
#: Characters no printed form escapes (so a run of them is in every form of a value).
_UNESCAPED_RUN = re.compile(r"[A-Za-z0-9_.~-]{4,}")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
#: Words a password may be but a text shows for other reasons (adapters, dbt's and
#: dbtproof's own words, the usual default passwords): a secret equal to one (any case)
#: is public (see the module's doc).
COMMON_WORDS = frozenset(
    {
        *known_adapter_types(),
        *("postgres", "postgresql", "redshift", "snowflake", "bigquery", "databricks"),
        *("duckdb", "spark", "trino", "athena", "sqlserver", "fabric", "clickhouse"),
        *("password", "passw0rd", "secret", "changeme", "default", "public", "admin"),
        *("localhost", "dbtproof", "superuser", "database", "schema", "warehouse"),
    }
)
#: What a text shows just before a secret it names as one: a secret setting's name
#: (``PGPASSWORD``, ``"token"``, ``DBT_ENV_SECRET_X``) then ``=``, ``:``, ``=>``, a YAML
#: block's ``|`` or ``>``, an XML tag's end or only a space (``--password X``), and quotes.
_NAMED_AS_SECRET = re.compile(
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|private_key|access_key)[\w.-]*"
    r"(?:['\"\\\]]|&quot;|&#39;){0,3}"
    r"(?:\s*(?:=>|[:=])\s*(?:[|>][-+]?\s+)?|>|&gt;|\s+)(?:['\"\\]|&quot;|&#39;|b')*\Z",
    re.IGNORECASE,
)
#: A URL's user part just before its password (``scheme://user:``).
_URL_PASSWORD = re.compile(r"://[^\s/@:]*:\Z")


class Secret:
    """A secret value: its ``repr`` and ``str`` never show it; :meth:`reveal` does."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        #: Where the value comes from (``"DBT_ENV_SECRET_TOKEN"``, ``"minted by X"``).
        self.source = source

    def reveal(self) -> str:
        """The value itself: to hand to the one thing that needs it, never to print."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MARKER} from {self.source})"

    def __str__(self) -> str:
        return MARKER

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled: it would leave the process in clear text")


def _python_escape(value: str, quote_char: str, ascii_only: bool) -> str:
    """*value* as Python's ``repr`` writes it between quotes of *quote_char* (``""``: a
    quote escapes nothing), with non-ASCII letters escaped when *ascii_only* (``ascii()``)."""
    out = []
    for char in value:
        code = ord(char)
        if char == "\\" or (quote_char and char == quote_char):
            out.append("\\" + char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif char.isprintable() and not (ascii_only and code > 127):
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _escaped_forms(value: str) -> set[str]:
    """*value* escaped once, in every way Python and JSON write a string."""
    forms = {
        _python_escape(value, quote_char, ascii_only)
        for quote_char in ("'", '"', "")
        for ascii_only in (False, True)
    }
    forms.add(repr(value.encode("utf-8", "surrogatepass"))[2:-1])
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return forms


def printed_forms(value: str) -> list[str]:
    """Every form *value* may be printed in (itself among them), longest first."""
    first = {value} | _escaped_forms(value)
    for quoted in (quote(value, safe=""), quote(value), quote_plus(value)):
        first |= {quoted, _PERCENT_ESCAPE.sub(lambda m: m.group().lower(), quoted)}
    xml_text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    first |= {xml_text, html.escape(value), html.escape(value, quote=False)}
    first.add(
        xml_text.replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#09;")
    )
    second = {again for form in first for again in _escaped_forms(form)}
    return sorted(first | second, key=len, reverse=True)


class _Entry:
    """A registered value with its printed forms, grouped by the piece of the value each
    group prints (the whole value, or one whitespace-separated part of it)."""

    __slots__ = ("grams", "groups", "secret", "truncatable")

    def __init__(self, secret: Secret) -> None:
        value = secret.reveal()
        self.secret = secret
        # pprint wraps a long string at whitespace: each part on its own is a secret too,
        # when it is long enough not to be a common word (a passphrase's "correct")
        parts = [p for p in value.split() if len(p) >= MIN_PART_LENGTH and p != value]
        #: The forms of the value, then of each part.
        self.groups = [_Forms(piece) for piece in (value, *parts)]
        #: The forms whose ends saferepr may leave beside an ellipsis.
        self.truncatable = [f for f in self.groups[0].forms if len(f) > MIN_SECRET_LENGTH]
        #: Every piece of :data:`MIN_SECRET_LENGTH` characters of those forms: text beside
        #: an ellipsis that is none of them holds no end of the value.
        self.grams = {
            form[i : i + MIN_SECRET_LENGTH]
            for form in self.truncatable
            for i in range(len(form) - MIN_SECRET_LENGTH + 1)
        }


class _Forms:
    """The printed forms of one piece of a secret, and how to find them in a text fast."""

    __slots__ = ("anchor", "forms", "offsets", "piece", "public")

    def __init__(self, piece: str) -> None:
        self.piece = piece
        #: Whether the piece is public (see the module's doc): masked only where a text
        #: shows it as a secret (:meth:`secret_spans`). Set by the registry.
        self.public = False
        #: Longest first.
        self.forms = printed_forms(piece)
        runs = _UNESCAPED_RUN.findall(piece)
        #: The longest run of characters no printed form escapes, so that every form holds
        #: it (None: no run of 4): a text without it shows none of the forms.
        self.anchor = max(runs, key=len) if runs else None
        #: Each form with the places the anchor has in it.
        self.offsets = [(form, _places(form, self.anchor)) for form in self.forms]

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where *text* shows one of the forms (the longest, where several start at one place)."""
        if self.anchor is None:
            for form in self.forms:
                start = text.find(form)
                while start != -1:
                    yield start, start + len(form)
                    start = text.find(form, start + 1)
            return
        at = text.find(self.anchor)
        while at != -1:
            for form, places in self.offsets:
                starts = (at - p for p in places if p <= at and text.startswith(form, at - p))
                start = next(starts, -1)
                if start >= 0:
                    yield start, start + len(form)
                    break
            at = text.find(self.anchor, at + 1)

    def secret_spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where *text* shows the piece; for a public piece, only where it shows it as a
        secret (after a secret setting's name, or as a URL's password)."""
        for start, end in self.spans(text):
            if not self.public or _shown_as_secret(text, start, end):
                yield start, end


def _shown_as_secret(text: str, start: int, end: int) -> bool:
    """Whether *text* shows what is at ``start:end`` as a secret's value."""
    before = text[max(0, start - 80) : start]
    if _NAMED_AS_SECRET.search(before):
        return True
    return bool(_URL_PASSWORD.search(before)) and text.startswith("@", end)


def public_secret_reason(value: str, settings: Mapping[str, Any]) -> str | None:
    """Why the secret *value* is public (see the module's doc), given a target's plain
    *settings*: ``"equals its user"``, ``"is a common word"``; None when it is not."""
    names = [name for name, plain in plain_settings(settings) if plain == value]
    if names:
        return f"equals its {' and '.join(names)}"
    if value.casefold() in COMMON_WORDS:
        return "is a common word"
    return None


def public_secrets(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, why)`` of each secret setting of a target's rendered *settings* whose value
    is public (:func:`public_secret_reason`); values too short to be secrets left out."""
    found = []
    for name, value in _secret_settings(settings):
        text = str(value)
        reason = public_secret_reason(text, settings) if len(text) >= MIN_SECRET_LENGTH else None
        if reason is not None:
            found.append((name, reason))
    return found


def plain_settings(settings: Mapping[str, Any] | Any) -> list[tuple[str, str]]:
    """``(name, value)`` of each setting of *settings* (a target's, or dbt's credentials
    object) that names a place or identity and is no secret (the user, the adapter type,
    the database, the host: :data:`~dbtproof.project.targets.PLAIN_KEYS`), as text; unrendered
    templates left out. Any other setting may hold a secret (``pass``, a DSN) and is not
    one of these."""
    if not isinstance(settings, Mapping):
        settings = getattr(settings, "__dict__", {})
    found = []
    for name in sorted(PLAIN_KEYS & {str(key) for key in settings}):
        value = settings[name]
        text = "" if isinstance(value, bool) or value is None else str(value)
        if isinstance(value, (str, int, float)) and text and "{{" not in text and "{%" not in text:
            found.append((name, text))
    return found


def _places(text: str, piece: str | None) -> list[int]:
    """Every index of *piece* in *text*."""
    found: list[int] = []
    index = text.find(piece) if piece else -1
    while index != -1:
        found.append(index)
        index = text.find(piece, index + 1)  # type: ignore[arg-type]
    return found


def _replace_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """*text* with each span (overlapping ones merged) replaced by :data:`MARKER`."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, last = [], 0
    for start, end in merged:
        pieces += [text[last:start], MARKER]
        last = end
    return "".join([*pieces, text[last:]])


class SecretRegistry:
    """The secret values of one run, and the scrubbing of text, reports and files.

    ``add(value, source)`` registers a value (a str or a :class:`Secret`); ``scrub(text)``
    replaces every registered value, in each of its printed forms, with :data:`MARKER`.
    *on_new_value* is called once with each new value (the plugin masks it on GitHub).
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        on_new_value: Callable[[str], None] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._entries: dict[str, _Entry] = {}
        #: Values of settings that are no secret (:meth:`add_public`).
        self._public: set[str] = set()
        #: Values of ``DBT_ENV_SECRET*`` variables a plain setting's template reads
        #: (``user: "{{ env_var('DBT_ENV_SECRET_USER') }}"``): declared secret, never
        #: public, however dbt's rendered settings show them (:meth:`add_target`).
        self._declared: set[str] = set()
        self.on_new_value = on_new_value

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<SecretRegistry: {len(self)} secrets>"

    def sources(self) -> list[str]:
        """Where each registered value comes from (never a value)."""
        return [entry.secret.source for entry in self._entries.values()]

    def public_sources(self) -> list[str]:
        """Where each public value (see the module's doc) comes from (never a value)."""
        return [entry.secret.source for entry in self._entries.values() if entry.groups[0].public]

    def _mark_public(self, entry: _Entry) -> None:
        for group in entry.groups:
            group.public = (
                group.piece in self._public and group.piece not in self._declared
            ) or group.piece.casefold() in COMMON_WORDS

    # -- registering -------------------------------------------------------------------

    def add(self, value: str | Secret | None, source: str) -> bool:
        """Register *value* (from *source*, a description such as ``"minted by X"``).

        Returns whether it is registered: a value shorter than :data:`MIN_SECRET_LENGTH`
        (or empty, or None) is not. A value with whitespace around it is registered as
        it is and stripped.
        """
        if value is None:
            return False
        secret = value if isinstance(value, Secret) else Secret(str(value), source)
        added = False
        for text in dict.fromkeys((secret.reveal(), secret.reveal().strip())):
            if len(text) < MIN_SECRET_LENGTH:
                continue
            if text not in self._entries:
                self._entries[text] = entry = _Entry(
                    secret if text == secret.reveal() else Secret(text, secret.source)
                )
                self._mark_public(entry)
                if self.on_new_value is not None:
                    self.on_new_value(text)
            added = True
        return added

    def add_environment(self) -> int:
        """Register the values of the ``DBT_ENV_SECRET*`` variables set now; return how many
        were new. Values seen once stay registered after their variable is removed."""
        before = len(self)
        # Names first: reading every value of the environment costs more than this does.
        for name in [n for n in self._environ if n.startswith(SECRET_ENV_PREFIX)]:
            value = self._environ.get(name)
            if value is not None and value not in self._entries:
                self.add(value, name)
        return len(self) - before

    def add_public(self, settings: Mapping[str, Any] | Any, *names: str) -> None:
        """Note the values of the settings of *settings* that are no secret (the user, the
        adapter type, the database...) and the *names* (the profile's, the target's): a
        secret equal to one is public (module's doc)."""
        new = {value for _, value in plain_settings(settings)} | {n for n in names if n}
        new -= self._public
        if new:
            self._public |= new
            for entry in self._entries.values():
                self._mark_public(entry)

    def add_target(self, settings: Mapping[str, Any], source: str) -> int:
        """Register the secret fields of a target as profiles.yml writes them (raw), and
        note its plain values (:meth:`add_public`).

        A literal value is registered as it is; a template (``{{ env_var('PG_PASSWORD') }}``)
        registers the value of each variable it reads that is set. Return how many.
        A plain setting read from a ``DBT_ENV_SECRET*`` variable stays a secret: its value
        is never public, though dbt's rendered settings show it as the user or host.
        """
        before = len(self)
        for name in PLAIN_KEYS & {str(key) for key in settings}:
            value = settings[name]
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                for variable in env_var_names_in(value):
                    declared = self._environ.get(variable)
                    if variable.startswith(SECRET_ENV_PREFIX) and declared:
                        self._declared.add(declared)
        self.add_public(settings)
        for entry in self._entries.values():
            self._mark_public(entry)
        for name, value in _secret_settings(settings):
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                for variable in env_var_names_in(value):
                    self.add(self._environ.get(variable), f"{source} {name} (${variable})")
            else:
                self.add(str(value), f"{source} {name}")
        return len(self) - before

    def add_credentials(self, credentials: Any, source: str) -> int:
        """Register the secret fields of dbt's resolved credentials object (rendered values)."""
        if credentials is None:
            return 0
        before = len(self)
        self.add_public(credentials)
        for name, value in _secret_settings({"credentials": credentials}):
            self.add(str(value), f"{source} {name.removeprefix('credentials.')}")
        return len(self) - before

    # -- scrubbing text ----------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """*text* with every registered value, in each printed form, replaced by ``*****``."""
        if not self._entries or not text:
            return text
        spans = [
            span
            for entry in self._entries.values()
            for group in entry.groups
            for span in group.secret_spans(text)
        ]
        if spans:
            text = _replace_spans(text, spans)
        if "..." in text or "\u2026" in text:
            text = self._scrub_truncated(text)
        return text

    def contains_secret(self, text: str) -> bool:
        """Whether *text* shows a registered value in any printed form."""
        return self.scrub(text) != text

    def _scrub_truncated(self, text: str) -> str:
        """The ends of a value that ``saferepr`` cut in the middle (``'tok...en'``)."""
        spans: list[tuple[int, int]] = []
        for start, end in _ellipses(text):
            before = text[start - MIN_SECRET_LENGTH : start] if start >= MIN_SECRET_LENGTH else ""
            after = text[end : end + MIN_SECRET_LENGTH]
            for entry in self._entries.values():
                if entry.groups[0].public:  # its ends are no secret either
                    continue
                check_before, check_after = before in entry.grams, after in entry.grams
                if not (check_before or check_after):
                    continue
                for form in entry.truncatable:
                    k = _prefix_before(text, start, form) if check_before else 0
                    if k:
                        spans.append((start - k, start))
                    k = _suffix_after(text, end, form) if check_after else 0
                    if k:
                        spans.append((end, end + k))
        return _replace_spans(text, spans) if spans else text

    def scrub_bytes(self, data: bytes) -> bytes:
        """*data* with every form of every value (UTF-8) overwritten by as many ``*``:
        the length of each field stays, so a binary file (msgpack, pickle) stays readable."""
        for entry in self._entries.values():
            for group in entry.groups:
                for form in group.forms:
                    raw = form.encode("utf-8", "surrogatepass")
                    if raw in data:
                        data = _overwrite(data, raw, group.public)
        return data

    # -- scrubbing files ---------------------------------------------------------------

    def scrub_file(self, path: Path) -> bool:
        """Scrub the file *path* in place (text: :meth:`scrub`; binary: :meth:`scrub_bytes`).

        Returns whether it changed.
        """
        if not self._entries:
            return False
        try:
            data = path.read_bytes()
        except OSError:
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\x00" not in text:
            scrubbed = self.scrub(text).encode("utf-8")
        else:
            scrubbed = self.scrub_bytes(data)
        if scrubbed == data:
            return False
        path.write_bytes(scrubbed)
        return True

    def scrub_tree(self, folder: Path, skip: Iterable[Path] = ()) -> list[Path]:
        """Scrub every file under *folder* except those under a path of *skip*; return
        the files that changed."""
        if not self._entries:  # nothing to look for
            return []
        skipped = {os.path.abspath(p) for p in skip}
        changed = []
        for top, folders, names in os.walk(os.path.abspath(folder)):
            folders[:] = sorted(f for f in folders if os.path.join(top, f) not in skipped)
            for name in sorted(names):
                path = Path(top, name)
                if str(path) in skipped or path.is_symlink() or not path.is_file():
                    continue
                if self.scrub_file(path):
                    changed.append(path)
        return changed

    # -- scrubbing pytest's reports and terminal ---------------------------------------

    def scrub_writes(self, writer: Any) -> None:
        """Make *writer* (pytest's terminal writer: every line of the terminal goes through
        its ``write``) scrub each text before writing it; once per writer."""
        write = writer.write
        if getattr(write, "scrubs_secrets", False):
            return

        def scrubbing_write(msg: str, **kwargs: Any) -> None:
            write(self.scrub(msg), **kwargs)

        scrubbing_write.scrubs_secrets = True  # type: ignore[attr-defined]
        writer.write = scrubbing_write

    def scrub_report(self, report: Any) -> None:
        """Scrub a pytest report in place: its failure representation (traceback entries,
        locals, crash message, sections), captured output and logging, user properties
        and xfail reason."""
        if not self._entries:
            return
        report.longrepr = self.scrub_longrepr(getattr(report, "longrepr", None))
        sections = getattr(report, "sections", None)
        if sections:
            report.sections = [(title, self.scrub(content)) for title, content in sections]
        properties = getattr(report, "user_properties", None)
        if properties:
            report.user_properties = [
                (name, self.scrub(value) if isinstance(value, str) else value)
                for name, value in properties
            ]
        if isinstance(getattr(report, "wasxfail", None), str):
            report.wasxfail = self.scrub(report.wasxfail)

    def scrub_longrepr(self, longrepr: Any) -> Any:
        """A report's ``longrepr`` (a str, a skip tuple, or a terminal representation,
        changed in place) with no secret. A representation of a kind this does not
        know is replaced by its scrubbed text when its text still shows a secret."""
        if not self._entries or longrepr is None:
            return longrepr
        scrubbed = self._scrub_object(longrepr, set())
        if hasattr(scrubbed, "toterminal") and not type(scrubbed).__module__.startswith("_pytest."):
            text = str(scrubbed)
            if self.contains_secret(text):
                return self.scrub(text)
        return scrubbed

    def _scrub_object(self, value: Any, seen: set[int]) -> Any:
        """*value* with every string in it scrubbed; terminal representations (objects
        with ``toterminal``) are changed in place, lists and tuples copied."""
        if isinstance(value, str):
            return self.scrub(value)
        if id(value) in seen:
            return value
        seen.add(id(value))
        if isinstance(value, list):
            return [self._scrub_object(item, seen) for item in value]
        if isinstance(value, tuple):
            items = [self._scrub_object(item, seen) for item in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        if hasattr(value, "toterminal") and hasattr(value, "__dict__"):
            for name, item in list(vars(value).items()):
                new = self._scrub_object(item, seen)
                if new is not item:
                    object.__setattr__(value, name, new)
        return value


def _secret_settings(settings: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of each scalar under a secret setting name, in nested mappings,
    lists and objects too (a DuckDB ``secrets:`` entry's ``bearer_token``, in profiles.yml
    a mapping, in dbt-duckdb's resolved credentials an object; ``keyfile_json``'s
    ``private_key``)."""
    return ((name, value) for name, value, secret in _scalars(settings, "", False, 0) if secret)


def _scalars(value: Any, path: str, secret: bool, depth: int) -> Iterator[tuple[str, Any, bool]]:
    """``(name, value, whether secret)`` of every scalar of *value* (a setting, a mapping
    of settings, a list, an object), named by its path; a scalar is secret when the name
    of the setting it is in (or of a list holding it) says so."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        if path:
            yield path, value, secret
    elif depth >= 8 or value is None or isinstance(value, bool):
        return
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _scalars(item, f"{path}[{index}]", secret, depth + 1)
    else:
        if isinstance(value, Mapping):
            items = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            items = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            items = vars(value)
        else:
            return
        for key, item in items.items():
            name = str(key)
            named = bool(SECRET_SETTING.search(name)) and not NOT_SECRET_SETTING.search(name)
            yield from _scalars(item, f"{path}.{name}" if path else name, named, depth + 1)


def _overwrite(data: bytes, raw: bytes, public: bool) -> bytes:
    """*data* with each *raw* overwritten by as many ``*`` (*public*: only where shown as
    a secret, see :func:`_shown_as_secret`)."""
    if not public:
        return data.replace(raw, b"*" * len(raw))
    text = data.decode("latin-1")  # one character per byte: the offsets are the bytes'
    form = raw.decode("latin-1")
    out = bytearray(data)
    at = text.find(form)
    while at != -1:
        if _shown_as_secret(text, at, at + len(form)):
            out[at : at + len(raw)] = b"*" * len(raw)
        at = text.find(form, at + 1)
    return bytes(out)


def _ellipses(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each ``...`` and ``\u2026`` in *text*."""
    for mark in ("...", "\u2026"):
        index = text.find(mark)
        while index != -1:
            yield index, index + len(mark)
            index = text.find(mark, index + len(mark))


def _prefix_before(text: str, end: int, form: str) -> int:
    """The length of the longest beginning of *form* (at least :data:`MIN_SECRET_LENGTH`
    long) that *text* holds just before *end*; 0 if none."""
    head = form[:MIN_SECRET_LENGTH]
    start = text.find(head, max(0, end - len(form) + 1), end)
    while start != -1 and end - start >= MIN_SECRET_LENGTH:
        if form.startswith(text[start:end]):
            return end - start
        start = text.find(head, start + 1, end)
    return 0


def _suffix_after(text: str, start: int, form: str) -> int:
    """The length of the longest end of *form* (at least :data:`MIN_SECRET_LENGTH` long)
    that *text* holds from *start*; 0 if none."""
    piece = text[start : start + len(form) - 1]
    if len(piece) < MIN_SECRET_LENGTH:
        return 0
    head = piece[:MIN_SECRET_LENGTH]
    index = form.find(head, 1)
    while index != -1:
        k = len(form) - index
        if piece[:k] == form[index:]:
            return k
        index = form.find(head, index + 1)
    return 0


def github_mask_commands(value: str) -> list[str]:
    """The GitHub Actions lines that mask *value* in the job's log: ``::add-mask::`` for
    the value, for the forms Python and JSON escape it in and its URL-quoted form (most
    values have just one form), and for each line of a multi-line value; with the
    command's own escaping of ``%``, CR and LF."""
    lines = value.splitlines()
    masked = [value, *_escaped_forms(value), quote(value, safe="")]
    if len(lines) > 1:
        masked += [line for line in lines if len(line) >= MIN_SECRET_LENGTH]
    commands = []
    for text in dict.fromkeys(masked):
        escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        commands.append(f"::add-mask::{escaped}")
    return commands
