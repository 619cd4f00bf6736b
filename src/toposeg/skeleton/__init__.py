"""Topology-preserving skeletonization (thinning) for 2D images and 3D volumes.

``skeletonize(mask, method="thin", backend="auto")`` thins a batch ``(N, 1, *S)`` on any device
or one NumPy array; the rule (``method``) is separate from the implementation (``backend``).
See :mod:`toposeg.skeleton.api` and ``docs/skeleton.md``.
"""

from toposeg.skeleton._thin3d import is_simple
from toposeg.skeleton.api import (
    AUTO_RULE,
    BACKENDS,
    DEFAULT_METHOD,
    METHODS,
    SKELETON_VERSIONS,
    resolve_backend,
    skeleton_cache_key,
    skeletonize,
)

#: cache key of the default rule (``skeleton_cache_key("thin")``)
SKELETON_VERSION = skeleton_cache_key(DEFAULT_METHOD)

__all__ = [
    "AUTO_RULE", "BACKENDS", "DEFAULT_METHOD", "METHODS", "SKELETON_VERSION", "SKELETON_VERSIONS",
    "is_simple", "resolve_backend", "skeleton_cache_key", "skeletonize",
]
