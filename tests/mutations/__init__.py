"""Catalogues of plausible student mistakes, one file per lesson (`05_autograd.py`), run by `tests/mutation.py`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    """One edit a student might make to one solution cell, and the test that must catch it.

    `find` must occur exactly once in the cell named `cell` (a grade_id); `find`/`replace` may be tuples of
    equal length, applied in order. Caught means: running the lesson in order, the first cell that raises is
    `caught_by`, and its error (`ename: evalue`) matches the regex `message`, case-insensitively.
    """

    name: str
    cell: str
    find: str | tuple[str, ...]
    replace: str | tuple[str, ...]
    caught_by: str
    message: str

    def edits(self) -> list[tuple[str, str]]:
        finds = (self.find,) if isinstance(self.find, str) else self.find
        replaces = (self.replace,) if isinstance(self.replace, str) else self.replace
        if len(finds) != len(replaces):
            raise ValueError(f"{self.name}: {len(finds)} texts to find but {len(replaces)} replacements")
        return list(zip(finds, replaces))
