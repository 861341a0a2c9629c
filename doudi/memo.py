"""Values derived from tables, kept while those very tables are alive.

A training run asks for the cohort and features of one world at many dates, and a scoring server
sees the same region tables on every call: deriving the same numbers from them again is most of the
work. Worlds are immutable once built (as ``load_world`` returns them), so a table's identity stands
for its content; an entry is used only while the very same tables are alive (weak references) and of
the same length, so a freed table whose id is reused is never mistaken for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sized
from typing import Any, TypeVar

T = TypeVar("T")


class TableMemo:
    """A small first-in-first-out store of values keyed by tables' identity plus other keys."""

    def __init__(self, kept: int):
        self._kept = kept
        self._entries: dict[tuple[Any, ...], tuple[tuple[tuple[weakref.ref[Any], int], ...], Any]] = {}

    def get(self, tables: tuple[Sized, ...], key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """``compute()`` for these tables and ``key``, or the value kept from an earlier call."""
        memo_key = (*(id(table) for table in tables), *key)
        hit = self._entries.get(memo_key)
        if hit is not None and all(ref() is table and length == len(table)
                                   for (ref, length), table in zip(hit[0], tables, strict=True)):
            return hit[1]
        value = compute()
        if len(self._entries) >= self._kept:
            self._entries.pop(next(iter(self._entries)))
        self._entries[memo_key] = (tuple((weakref.ref(table), len(table)) for table in tables), value)
        return value
