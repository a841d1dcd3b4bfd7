"""A sorted set of strings with O(log n) insert, remove and seek: the key-name index of a local bucket.

A plain sorted list costs a memmove of the whole list per insert (seconds for 300,000 keys arriving in
random order); this keeps the names in chunks of about ``_CHUNK`` and bisects the chunks' maxima first,
as ``sortedcontainers.SortedList`` does, without adding a dependency for one use.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

#: Chunks split at twice this size; big enough that the list of chunks stays short, small enough that
#: an insert into one chunk is a short memmove.
_CHUNK = 1000


class SortedNames:
    """Distinct strings in code-point order (Python's ``str`` order, which is moto's listing order)."""

    def __init__(self) -> None:
        self._chunks: list[list[str]] = []
        self._maxes: list[str] = []  # _maxes[i] == _chunks[i][-1]; no chunk is empty

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            yield from chunk

    def add(self, name: str) -> None:
        """Insert ``name``; nothing happens if it is already there."""
        if not self._chunks:
            self._chunks.append([name])
            self._maxes.append(name)
            return
        at = min(bisect_left(self._maxes, name), len(self._chunks) - 1)
        chunk = self._chunks[at]
        i = bisect_left(chunk, name)
        if i < len(chunk) and chunk[i] == name:
            return
        chunk.insert(i, name)
        self._maxes[at] = chunk[-1]
        if len(chunk) > 2 * _CHUNK:
            self._chunks[at:at + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            self._maxes[at:at + 1] = [chunk[_CHUNK - 1], chunk[-1]]

    def discard(self, name: str) -> None:
        """Remove ``name`` if it is there."""
        at = bisect_left(self._maxes, name)
        if at == len(self._chunks):
            return
        chunk = self._chunks[at]
        i = bisect_left(chunk, name)
        if chunk[i] != name:
            return
        del chunk[i]
        if chunk:
            self._maxes[at] = chunk[-1]
        else:
            del self._chunks[at], self._maxes[at]

    def first_from(self, bound: str, *, inclusive: bool) -> str | None:
        """The smallest name ``>= bound`` (``inclusive``) or ``> bound``, or None if there is none."""
        bisect = bisect_left if inclusive else bisect_right
        at = bisect(self._maxes, bound)
        if at == len(self._chunks):
            return None
        chunk = self._chunks[at]
        return chunk[bisect(chunk, bound)]
