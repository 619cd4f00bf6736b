"""A lazy, picklable sequence of cases: items are read on ``__getitem__``."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from toposeg.data.case import Case


class LazyCases(Sequence):
    """``len`` and ``ids`` are known up front; ``cases[i]`` calls ``read(i)`` (a picklable
    callable such as a ``functools.partial`` of a module-level function), so the sequence can be
    handed to DataLoader workers. Nothing is cached here; :class:`toposeg.data.PatchDataset`
    caches what it reads per worker."""

    def __init__(self, ids: Sequence[str], read: Callable[[int], Case], *, description: str = "") -> None:
        self.ids = list(ids)
        self._read = read
        self.description = description

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"case index must be an int or slice, got {type(i).__name__}")
        j = int(i) + len(self) if i < 0 else int(i)
        if not 0 <= j < len(self):
            raise IndexError(f"case index {i} out of range for {len(self)} cases")
        return self._read(j)

    def __repr__(self) -> str:
        return f"LazyCases({len(self)} cases{', ' + self.description if self.description else ''})"
