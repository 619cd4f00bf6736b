"""Data: cases, real-format loaders, synthetic generators with known topology, the patch
pipeline (patches, transforms, normalisation, skeleton caching) and cross-validation splits.

Submodules that need torch (``patches``, ``transforms``) are imported on first use.
"""

from toposeg.data.case import Case
from toposeg.data.datasets import DATASETS, dataset_options, open_dataset
from toposeg.data.lazy import LazyCases
from toposeg.data.synthetic import SYNTHETIC, SyntheticCases, make_synthetic

_LAZY = {"PatchDataset": "toposeg.data.patches", "Augment": "toposeg.data.transforms",
         "normalize": "toposeg.data.transforms"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toposeg.data' has no attribute {name!r}")


__all__ = ["Augment", "Case", "DATASETS", "LazyCases", "PatchDataset", "SYNTHETIC", "SyntheticCases",
           "dataset_options", "make_synthetic", "normalize", "open_dataset"]
