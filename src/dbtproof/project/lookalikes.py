"""Names as they look: Unicode's confusables (UTS #39) applied to target names.

A name's skeleton is NFKC, casefolded, without accents or invisible characters, each
character replaced by the prototype Unicode's ``confusables.txt`` gives it (the data as
the ``confusable-homoglyphs`` package ships it), so two names that look alike have one
skeleton (``prоd`` with a Cyrillic ``о``, ``ᴘrod`` with a small capital ``P``, ``pr0d``).
Where a prototype is not ASCII but the letters confusable with it are one ASCII letter in
another case (``ᴘ``: a Cherokee ``ꮲ`` whose capital looks like ``P``), that letter is taken.

Nothing here imports dbt; the data is read when a :class:`Lookalikes` is made.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

#: Unicode categories dropped from a name: combining marks, format and control characters.
_DROPPED = frozenset({"Mn", "Me", "Cf", "Cc"})


def _confusables() -> Mapping[str, Sequence[Mapping[str, str]]]:
    """confusable-homoglyphs' table: each character (or sequence) of ``confusables.txt``
    with the ones it is confusable with, in the file's order (a source before its
    prototype)."""
    from importlib import resources  # only for a name outside ASCII

    data = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    loaded: dict[str, Any] = json.loads(data.read_text(encoding="utf-8"))
    return loaded


#: What each printable ASCII character (casefolded) reads as, from the same data: a
#: name of ASCII only is read without loading it (tests/plugin/test_protected_targets.py checks
#: this against the data).
ASCII_PROTOTYPES: Mapping[str, str] = MappingProxyType(
    {'"': "''", "%": "º/₀", "0": "o", "1": "l", "`": "'", "m": "rn", "|": "l"}
)


class Lookalikes:
    """The skeletons of names (:meth:`skeleton`), from Unicode's confusables; the data is
    loaded the first time a name holds a character outside ASCII."""

    def __init__(self) -> None:
        #: source character -> its prototype (confusables.txt's mapping, one way).
        self._prototype: dict[str, str] | None = None
        #: prototype -> the characters that map to it.
        self._sources: dict[str, list[str]] = {}
        self._letters: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        """Each single character's prototype from the confusables data (and each
        prototype's sources), read on first use and kept."""
        if self._prototype is None:
            table = _confusables()
            order = {key: index for index, key in enumerate(table)}
            self._prototype = {}
            for key, entries in table.items():
                if len(key) != 1 or len(entries) != 1:
                    continue  # a sequence, or a prototype of several sources
                partner = entries[0]["c"]
                # a source has one entry, its prototype; a prototype with one source is
                # the second of the pair in the file's order
                if (
                    len(partner) > 1
                    or len(table.get(partner, ())) > 1
                    or order[key] < order[partner]
                ):
                    self._prototype[key] = partner
                    self._sources.setdefault(partner, []).append(key)
        return self._prototype

    def letter(self, char: str) -> str:
        """What *char* (casefolded) reads as (:meth:`from_data`; ASCII from
        :data:`ASCII_PROTOTYPES`)."""
        if char.isascii():
            return ASCII_PROTOTYPES.get(char, char)
        known = self._letters.get(char)
        if known is None:
            known = self._letters[char] = self.from_data(char)
        return known

    def from_data(self, char: str) -> str:
        """What *char* (casefolded) reads as in the data: its prototype, casefolded when
        ASCII, else the one ASCII letter or digit the characters confusable with it read
        as in another case."""
        prototypes = self._load()
        prototype = prototypes.get(char, char)
        if prototype.isascii():
            return prototype.casefold()
        candidates = set()
        for member in (prototype, *self._sources.get(prototype, ())):
            for variant in {member.casefold(), member.upper(), member.lower()} - {member}:
                if len(variant) != 1:
                    continue
                other = prototypes.get(variant, variant)
                if other.isascii() and other.isalnum():
                    candidates.add(other.casefold())
        return candidates.pop() if len(candidates) == 1 else prototype

    def skeleton(self, name: str, keep: str = "") -> str:
        """*name* as it looks: NFKC, casefolded, trimmed, without accents or invisible
        characters, each character its confusables prototype; characters in *keep* (a
        glob's ``*?[]!``) stay as they are."""
        text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name).casefold())
        mapped = "".join(
            char if char in keep else self.letter(char)
            for char in text
            if unicodedata.category(char) not in _DROPPED
        )
        mapped = unicodedata.normalize("NFD", mapped)
        kept = "".join(char for char in mapped if unicodedata.category(char) not in _DROPPED)
        return unicodedata.normalize("NFC", kept).strip()
