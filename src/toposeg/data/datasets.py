"""``open_dataset(kind, root, **options)``: one registry for real formats and synthetic kinds."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Callable, Optional, Sequence, Union

from toposeg.data.case import Case
from toposeg.data.cremi import open_cremi
from toposeg.data.imagecas import open_imagecas
from toposeg.data.loaders import open_folder, open_isbi2012, open_roads
from toposeg.data.synthetic import SYNTHETIC, SyntheticCases


def open_synthetic(kind: str, root=None, *, n: int = 16, size: Union[int, Sequence[int]] = 128, seed: int = 0) -> SyntheticCases:
    """``n`` generated cases (lazy, deterministic in ``(seed, index)``). ``root`` must be None:
    to read a dataset written by ``toposeg synth``, use ``kind="folder"``."""
    if root is not None:
        raise ValueError(f"synthetic kind {kind!r} generates its data, so root must be None, got {root!r} "
                         "(read a dataset written by `toposeg synth` with kind='folder')")
    return SyntheticCases(kind, n, size=size, seed=seed)


DATASETS: dict[str, Callable[..., Sequence[Case]]] = {
    "folder": open_folder,
    "isbi2012": open_isbi2012,
    "cremi": open_cremi,
    "roads": open_roads,
    "imagecas": open_imagecas,
    **{kind: partial(open_synthetic, kind) for kind in SYNTHETIC},
}


def dataset_options(kind: str) -> list[str]:
    """Option names accepted by ``open_dataset(kind, ...)``."""
    if kind not in DATASETS:
        raise KeyError(f"unknown dataset kind {kind!r}; valid: {sorted(DATASETS)}")
    params = inspect.signature(DATASETS[kind]).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def open_dataset(kind: str, root: Optional[object] = None, **options) -> Sequence[Case]:
    """A sequence of :class:`Case` (``.id``, ``.image`` ``(C, *S)`` float32, ``.label`` ``(*S)``
    bool); real formats are read lazily on ``dataset[i]``, ``dataset.ids`` lists the ids and
    ``dataset.label_foreground`` the label polarity (``"nonzero"``, ``"bright"`` or ``"dark"``:
    the rule that turns the kind's mask files into labels; see
    :class:`toposeg.data.lazy.LazyCases`). Empty (0-byte) files are refused here.

    Raises:
        KeyError: unknown ``kind`` (lists the valid ones).
        TypeError: an option the kind does not take (names it and lists the valid options).
    """
    valid = dataset_options(kind)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"open_dataset({kind!r}): unknown option(s) {unknown}; valid: {valid}")
    return DATASETS[kind](root, **options)
