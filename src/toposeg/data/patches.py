"""Random-patch training dataset with foreground oversampling, augmentation, normalisation and
cached ground-truth skeletons."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from toposeg.data.case import Case
from toposeg.data.transforms import NORMALIZATIONS, PAD_MODES, Augment, normalize, pad_to

DEFAULT_PATCH = {2: (256, 256), 3: (72, 128, 128)}


def _digest(label: np.ndarray) -> str:
    h = hashlib.sha1(np.packbits(label, axis=None).tobytes())
    h.update(str(label.shape).encode())
    return h.hexdigest()


def _cache_path(cache_dir: Union[str, Path], case_id: str, key: str) -> Path:
    safe = lambda x: re.sub(r"[^A-Za-z0-9._-]", "_", x)  # noqa: E731
    return Path(cache_dir) / f"{safe(case_id)}.{safe(key)}.skeleton.npz"


def cached_skeleton(label: np.ndarray, case_id: str, cache_dir: Union[None, str, Path] = None, *,
                    skeleton_method: str = "thin", skeleton_backend: str = "auto") -> np.ndarray:
    """``toposeg.skeleton.skeletonize(label, method=skeleton_method, backend=skeleton_backend)``,
    stored on disk when ``cache_dir`` is given.

    The file is ``cache_dir/<case_id>.<key>.skeleton.npz`` where ``key`` =
    :func:`toposeg.skeleton.skeleton_cache_key` ``(skeleton_method)`` (rule and its version,
    e.g. ``"thin-v1"``); it stores that key and a digest of the label. A file whose key or digest
    does not match (the rule or its version changed, the label changed) or that cannot be read
    is recomputed and overwritten, so a changed rule never returns a stale skeleton. The key
    names the rule only: the backends of one rule give identical skeletons.

    Args:
        label: bool 2D ``(H, W)`` / 3D ``(D, H, W)`` ground truth.
        case_id: file-name stem (characters other than ``A-Za-z0-9._-`` become ``_``).
        cache_dir: folder of the cache, created when needed; ``None``: no disk cache.
        skeleton_method, skeleton_backend: ``method`` / ``backend`` of ``skeletonize``
            (defaults ``"thin"`` / ``"auto"``).

    Returns:
        bool array shaped like ``label``.

    Raises:
        KeyError / ValueError: from ``skeletonize`` (unknown rule, rule not defined in this
        dimensionality).
    """
    from toposeg.skeleton import skeleton_cache_key, skeletonize

    key = skeleton_cache_key(skeleton_method)

    def compute() -> np.ndarray:
        return np.asarray(skeletonize(label, method=skeleton_method, backend=skeleton_backend), dtype=bool)

    if cache_dir is None:
        return compute()
    path = _cache_path(cache_dir, case_id, key)
    digest = _digest(label)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["digest"]) == digest and str(f["key"]) == key:
                    return np.unpackbits(f["bits"], count=label.size).reshape(label.shape).astype(bool)
        except Exception:  # unreadable or old-format cache file: recompute
            pass
    skel = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, bits=np.packbits(skel, axis=None), digest=np.array(digest), key=np.array(key))
    os.replace(tmp, path)
    return skel


class PatchDataset(Dataset):
    """Random patches from a sequence of :class:`Case`; ``len`` = ``samples_per_epoch``.

    Sample ``i`` is a dict ``{"image": (C, *P) float32, "label": (1, *P) float32 in {0, 1},
    "skeleton": (1, *P) bool (only with skeleton=True), "id": str}`` drawn from case
    ``i % len(cases)``.

    Args:
        cases: any sequence of cases (a list, :func:`toposeg.data.open_dataset` output).
        patch_size: ``(H, W)`` / ``(D, H, W)`` or an int for every axis; default 256 x 256 in 2D,
            72 x 128 x 128 in 3D. Cases smaller than the patch are padded (see ``pad_mode``).
        fg_prob: probability of centring the patch on a random foreground pixel (foreground
            oversampling); otherwise the patch position is uniform.
        augment: an :class:`Augment`, ``True`` for the default one, or ``None``/``False``.
        normalization: ``"zscore"`` (default, per image and channel), ``"minmax"`` or ``"none"``,
            after clipping to ``hu_window`` when given (CT).
        pad_mode: image padding, ``"reflect"`` (default) or ``"constant"`` (0 = the image mean
            after z-scoring); labels are padded with background.
        skeleton: also return the ground-truth skeleton (computed once per case, cached in memory
            and, with ``cache_dir``, on disk, keyed by rule and version: :func:`cached_skeleton`).
        skeleton_method, skeleton_backend: rule and implementation of that skeleton
            (``method`` / ``backend`` of :func:`toposeg.skeleton.skeletonize`; defaults
            ``"thin"``, ``"auto"``). Checked here: an unknown name or a rule that does not
            exist in the cases' dimensionality raises at construction.
        seed: ``None`` (default): randomness comes from torch's RNG, which DataLoader seeds
            differently in every worker and every epoch (reproducible under
            ``torch.manual_seed``). An int: sample ``i`` depends only on ``(seed, epoch, i)``,
            whatever the number of workers; call :meth:`set_epoch` each epoch (as with
            ``DistributedSampler``) to get different patches.
        cache_cases: keep loaded, normalised cases in memory (per worker process). Call
            :meth:`precompute` before creating workers to load (and skeletonize) once.
    """

    def __init__(
        self, cases: Sequence[Case], patch_size: Union[None, int, Sequence[int]] = None, *,
        samples_per_epoch: Optional[int] = None, fg_prob: float = 0.33, augment: Union[bool, Augment, None] = True,
        normalization: str = "zscore", hu_window: Optional[Sequence[float]] = None, pad_mode: str = "reflect",
        skeleton: bool = False, cache_dir: Union[None, str, Path] = None, seed: Optional[int] = None,
        cache_cases: bool = True, skeleton_method: str = "thin", skeleton_backend: str = "auto",
    ) -> None:
        if len(cases) == 0:
            raise ValueError("PatchDataset needs at least one case, got an empty sequence")
        if not 0.0 <= float(fg_prob) <= 1.0:
            raise ValueError(f"fg_prob must be in [0, 1], got {fg_prob!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {list(PAD_MODES)}, got {pad_mode!r}")
        if augment is True:
            augment = Augment()
        elif augment is False:
            augment = None
        if augment is not None and not isinstance(augment, Augment):
            raise TypeError(f"augment must be an Augment, True, False or None, got {type(augment).__name__}")
        first = cases[0]
        self.ndim = first.label.ndim
        if patch_size is None:
            patch = DEFAULT_PATCH[self.ndim]
        elif isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
            patch = (int(patch_size),) * self.ndim
        else:
            patch = tuple(int(p) for p in patch_size)
        if len(patch) != self.ndim or min(patch) < 1:
            raise ValueError(f"patch_size must give {self.ndim} positive sizes for {self.ndim}D cases, got {patch_size!r}")
        n = len(cases) if samples_per_epoch is None else int(samples_per_epoch)
        if n < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch!r}")
        self.cases, self.patch_size, self.samples_per_epoch = cases, patch, n
        self.fg_prob, self.augment, self.normalization = float(fg_prob), augment, normalization
        self.hu_window = None if hu_window is None else tuple(hu_window)
        self.pad_mode, self.skeleton, self.cache_dir = pad_mode, bool(skeleton), cache_dir
        self.seed, self.cache_cases, self.epoch = seed, cache_cases, 0
        if self.skeleton:
            from toposeg.skeleton import resolve_backend

            resolve_backend(skeleton_method, skeleton_backend, "cpu", self.ndim)  # fail early
        self.skeleton_method, self.skeleton_backend = skeleton_method, skeleton_backend
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Vary the patches between epochs when ``seed`` is an int."""
        self.epoch = int(epoch)

    def precompute(self) -> "PatchDataset":
        """Load (and skeletonize) every case now, e.g. before DataLoader workers fork."""
        for i in range(len(self.cases)):
            self._entry(i)
        return self

    def _entry(self, i: int) -> dict:
        if i in self._cache:
            return self._cache[i]
        case = self.cases[i]
        if case.label.ndim != self.ndim:
            raise ValueError(f"case {case.id!r} is {case.label.ndim}D but the dataset is {self.ndim}D")
        image = normalize(case.image, self.normalization, hu_window=self.hu_window)
        skel = cached_skeleton(case.label, case.id, self.cache_dir, skeleton_method=self.skeleton_method,
                               skeleton_backend=self.skeleton_backend) if self.skeleton else None
        image, label, skel = pad_to(image, case.label, self.patch_size, mode=self.pad_mode, skeleton=skel)
        entry = {"id": case.id, "image": image, "label": label, "skeleton": skel, "fg": np.flatnonzero(label)}
        if self.cache_cases:
            self._cache[i] = entry
        return entry

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng([int(torch.randint(0, 2**62, (1,)).item()), index])
        return np.random.default_rng([int(self.seed), self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"sample index {index} out of range for {self.samples_per_epoch} samples")
        rng = self._rng(index)
        e = self._entry(index % len(self.cases))
        shape, patch = e["label"].shape, self.patch_size
        if e["fg"].size and rng.random() < self.fg_prob:
            centre = np.unravel_index(e["fg"][rng.integers(e["fg"].size)], shape)
            start = [min(max(c - p // 2, 0), s - p) for c, p, s in zip(centre, patch, shape)]
        else:
            start = [int(rng.integers(0, s - p + 1)) for p, s in zip(patch, shape)]
        sl = tuple(slice(a, a + p) for a, p in zip(start, patch))
        image, label = e["image"][(slice(None),) + sl], e["label"][sl]
        skel = e["skeleton"][sl] if e["skeleton"] is not None else None
        if self.augment is not None:
            image, label, skel = self.augment(rng, image, label, skel)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "label": torch.from_numpy(np.ascontiguousarray(label, dtype=np.float32)[None]),
            "id": e["id"],
        }
        if skel is not None:
            sample["skeleton"] = torch.from_numpy(np.ascontiguousarray(skel)[None])
        return sample
