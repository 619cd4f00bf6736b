"""Checks on data roots and file lists shared by the real-format loaders (run when a dataset is
opened, so mistakes fail before any work)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from toposeg.io import short_list


def as_root(root, kind: str) -> Path:
    """``root`` as an existing Path.

    Raises:
        ValueError: ``root`` is None (``"open_dataset('<kind>') needs a data root ..."``).
        FileNotFoundError: nothing at ``root``.
    """
    if root is None:
        raise ValueError(f"open_dataset({kind!r}) needs a data root folder, got root=None")
    path = Path(root)
    if not path.exists():
        raise FileNotFoundError(f"{kind}: data root not found: {path}")
    return path


def refuse_empty_files(paths: Iterable[Path], where: str) -> None:
    """ValueError listing every empty (0-byte) file among ``paths`` (a failed download or copy),
    e.g. ``"<where>: empty (0-byte) files: a.png, b.png"``; a file that cannot be stat-ed is
    named the same way."""
    empty = []
    for p in paths:
        try:
            if Path(p).stat().st_size == 0:
                empty.append(str(p))
        except OSError as exc:
            raise ValueError(f"{where}: cannot read {p} ({exc.strerror or exc})") from exc
    if empty:
        raise ValueError(f"{where}: empty (0-byte) file(s), re-download or re-copy them: {short_list(empty)}")
