"""A lazy, picklable sequence of cases: items are read on ``__getitem__``."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from toposeg.data.case import Case


class LazyCases(Sequence):
    """``len`` and ``ids`` are known up front; ``cases[i]`` calls ``read(i)`` (a picklable
    callable such as a ``functools.partial`` of a module-level function), so the sequence can be
    handed to DataLoader workers. Nothing is cached here; :class:`toposeg.data.PatchDataset`
    caches what it reads per worker.

    ``label_foreground`` is the label polarity of the dataset: the rule that turns its mask
    files into the bool labels — ``"nonzero"``, ``"bright"`` or ``"dark"``, see
    :func:`toposeg.data.labels.binarize` — so that an engine can record it (in checkpoints) and
    tools that read the same files (``evaluate``, ``mine``, ``graph``) use the same rule. Kinds
    without mask files give the rule of the masks toposeg writes from their labels (bool saved
    as 0/255 or 0/1: ``"nonzero"``); CREMI, whose membranes are derived from neuron ids, is one
    of them. ``None`` when unknown. ``label_source`` says in words where the label comes from.
    """

    def __init__(self, ids: Sequence[str], read: Callable[[int], Case], *, description: str = "",
                 label_foreground: Optional[str] = None, label_source: str = "") -> None:
        self.ids = list(ids)
        self._read = read
        self.description = description
        self.label_foreground = label_foreground
        self.label_source = label_source

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
        desc = f", {self.description}" if self.description else ""
        fg = f", label_foreground={self.label_foreground!r}" if self.label_foreground else ""
        return f"LazyCases({len(self)} cases{desc}{fg})"
