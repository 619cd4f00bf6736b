"""Road/vessel graphs from binary masks, route planning and APLS (the paper's Fig. 1).

Needs the ``graph`` extra (networkx, skan): ``pip install 'toposeg[graph]'``; they are imported
on first use, so ``import toposeg.graph`` is cheap.
"""

from toposeg.graph.apls import apls, apls_report, control_points
from toposeg.graph.extract import BACKENDS, graph_pixels, mask_to_graph, path_length, skeleton_to_graph
from toposeg.graph.routes import DEFAULT_SNAP, Route, RoutePlan, insert_points, plan_routes, sample_pairs

__all__ = [
    "BACKENDS", "DEFAULT_SNAP", "Route", "RoutePlan", "apls", "apls_report", "control_points", "graph_pixels",
    "insert_points", "mask_to_graph", "path_length", "plan_routes", "sample_pairs", "skeleton_to_graph",
]
