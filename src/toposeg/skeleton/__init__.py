"""Exact skeletonization (topology-preserving thinning) for 2D images and 3D volumes.

``skeletonize(mask, backend="auto")`` thins a batch ``(N, 1, *S)`` on any device; see
:mod:`toposeg.skeleton.api` and ``docs/skeleton.md``.
"""

from toposeg.skeleton._thin3d import is_simple
from toposeg.skeleton.api import AUTO_RULE, BACKENDS, resolve_backend, skeletonize

__all__ = ["AUTO_RULE", "BACKENDS", "is_simple", "resolve_backend", "skeletonize"]
