"""Seeded k-fold cross-validation splits, written once to ``splits.json`` and reused.

Each fold has ``train``, ``val`` (carved from the training folds, for LR schedules and
checkpoint selection) and ``test`` ids. ``contiguous=True`` keeps the given id order (serial
sections such as ISBI 2012 and CREMI: a neighbouring section is almost the same image) and uses
contiguous test blocks; the validation sections are the ones right next to the test block, so
no training section touches a test section. Otherwise ids are shuffled with ``seed``.

Which datasets are serial sections is known per dataset kind (:func:`serial_sections`), so the
protocol picks contiguous folds for them without a config flag (``data.contiguous`` overrides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

VERSION = 2  # 2: contiguous folds take the validation sections next to the test block

#: dataset kinds whose cases are consecutive sections of one volume, in order
SERIAL_SECTION_KINDS = frozenset({"isbi2012", "cremi"})


def serial_sections(kind: str, cases: object = None) -> bool:
    """Whether the cases of dataset ``kind`` are serial sections (neighbours nearly identical).

    A dataset object that knows (an attribute ``serial_sections``) decides; otherwise the kind:
    ``isbi2012`` (a 30-section stack) and ``cremi`` (125 sections per volume) are, every other
    kind (separate images/volumes, synthetic cases) is not.
    """
    flag = getattr(cases, "serial_sections", None)
    if isinstance(flag, bool):
        return flag
    return kind in SERIAL_SECTION_KINDS


def _check_ids(ids: Sequence[str]) -> list[str]:
    ids = [str(i) for i in ids]
    dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dup:
        raise ValueError(f"case ids must be unique, duplicated: {dup[:10]}")
    return ids


def make_folds(ids: Sequence[str], k: int = 5, *, seed: int = 0, val_fraction: float = 0.2,
               contiguous: bool = False) -> list[dict[str, list[str]]]:
    """``k`` folds of ``{"train", "val", "test"}`` id lists; the test sets partition ``ids``.

    ``val`` holds ``round(val_fraction * n_train)`` (at least 1 when ``val_fraction > 0``) ids
    of the training folds: random ones, or with ``contiguous=True`` the ids nearest the test
    block in the given order, alternately after and before it (``b, a-1, b+1, a-2, ...`` for a
    test block ``[a, b)``), so that the training ids never touch a test id (a buffer on both
    sides needs ``n_val >= 2``, on one side when the block is at an end of the order).
    """
    ids = _check_ids(ids)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    if len(ids) < k:
        raise ValueError(f"k={k} folds need at least {k} cases, got {len(ids)}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    order = list(ids) if contiguous else [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    blocks = [list(b) for b in np.array_split(np.array(order, dtype=object), k)]
    folds = []
    for f in range(k):
        test = blocks[f]
        rest = [i for b in range(k) if b != f for i in blocks[b]]
        n_val = 0 if val_fraction == 0 else max(1, int(round(val_fraction * len(rest))))
        if n_val >= len(rest):
            raise ValueError(f"val_fraction={val_fraction} leaves no training cases in fold {f} ({len(rest)} available)")
        if contiguous:
            a = sum(len(blocks[b]) for b in range(f))
            b_end = a + len(test)
            near = []
            for dist in range(len(order)):
                near += [j for j in (b_end + dist, a - 1 - dist) if 0 <= j < len(order) and not a <= j < b_end]
            val = [order[j] for j in near[:n_val]]
        else:
            val = [rest[i] for i in np.random.default_rng([seed, f]).permutation(len(rest))[:n_val]]
        vset = set(val)
        folds.append({"train": sorted_by(ids, [i for i in rest if i not in vset]), "val": sorted_by(ids, val),
                      "test": sorted_by(ids, test)})
    return folds


def sorted_by(order: Sequence[str], subset: Sequence[str]) -> list[str]:
    pos = {i: n for n, i in enumerate(order)}
    return sorted(subset, key=pos.__getitem__)


def load_or_create_splits(path: Union[str, Path], ids: Sequence[str], k: int = 5, *, seed: int = 0,
                          val_fraction: float = 0.2, contiguous: bool = False) -> list[dict[str, list[str]]]:
    """Read ``path`` if it exists (checking it matches ``ids`` and the parameters), else make
    the folds and write them there. Never silently regenerates: a mismatch is a ValueError."""
    path = Path(path)
    ids = _check_ids(ids)
    params = {"version": VERSION, "k": int(k), "seed": int(seed), "val_fraction": float(val_fraction),
              "contiguous": bool(contiguous)}
    if path.is_file():
        folds = read_splits(path, ids)
        stored = json.loads(path.read_text())
        diff = {key: (stored.get(key), v) for key, v in params.items() if stored.get(key) != v}
        if diff:
            raise ValueError(f"{path} was made with different parameters (stored, requested): {diff}; "
                             "delete it or pass the stored parameters")
        return folds
    folds = make_folds(ids, k, seed=seed, val_fraction=val_fraction, contiguous=contiguous)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**params, "ids": ids, "folds": folds}, indent=1))
    os.replace(tmp, path)
    return folds


def read_splits(path: Union[str, Path], ids: Sequence[str]) -> list[dict[str, list[str]]]:
    """Folds stored in ``path``, validated against the current case ``ids``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        folds = data["folds"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid splits file ({type(exc).__name__}: {exc})") from exc
    want = set(_check_ids(ids))
    have = set(data.get("ids", []))
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise ValueError(f"{path} does not match the cases: {len(missing)} case id(s) not in the file "
                         f"{missing[:5]}, {len(extra)} id(s) in the file but not among the cases {extra[:5]}")
    tests = [i for f in folds for i in f["test"]]
    if sorted(tests) != sorted(want):
        raise ValueError(f"{path}: the test sets of its folds do not partition the case ids")
    for n, f in enumerate(folds):
        parts = [set(f["train"]), set(f["val"]), set(f["test"])]
        if sum(map(len, parts)) != len(want) or set().union(*parts) != want:
            raise ValueError(f"{path}: fold {n} train/val/test do not partition the case ids")
    return folds


def get_fold(folds: Sequence[dict], fold: int) -> dict[str, list[str]]:
    """Fold ``fold`` (0-based); out of range is a ValueError."""
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < len(folds):
        raise ValueError(f"fold must be an int in [0, {len(folds) - 1}], got {fold!r}")
    return folds[int(fold)]


def select(cases: Sequence, ids: Sequence[str]) -> list:
    """The cases whose ``id`` is in ``ids``, in the order of ``ids`` (reads lazy cases)."""
    index = {c: n for n, c in enumerate(getattr(cases, "ids", None) or [c.id for c in cases])}
    missing = [i for i in ids if i not in index]
    if missing:
        raise ValueError(f"ids not among the cases: {missing[:10]}")
    return [cases[index[i]] for i in ids]
