"""Topology of binary images/volumes: Betti numbers and Euler characteristic with a declared,
dual connectivity pair (2D foreground 8 / background 4, 3D 26 / 6 by default)."""

from toposeg.topology.betti import (
    CONNECTIVITIES,
    DEFAULT_CONNECTIVITY,
    betti_numbers,
    connected_components,
    euler_characteristic,
    resolve_connectivity,
    structure,
)

__all__ = [
    "CONNECTIVITIES",
    "DEFAULT_CONNECTIVITY",
    "betti_numbers",
    "connected_components",
    "euler_characteristic",
    "resolve_connectivity",
    "structure",
]
