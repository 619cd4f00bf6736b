"""Exact skeletonization (topology-preserving thinning) for 2D images and 3D volumes."""

from toposeg.skeleton.api import BACKENDS, skeletonize

__all__ = ["BACKENDS", "skeletonize"]
