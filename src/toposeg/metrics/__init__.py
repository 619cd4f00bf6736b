"""Per-case evaluation metrics on whole binary images/volumes (NumPy), and an accumulator.

Definitions: docs/evaluation.md.
"""

from toposeg.metrics.accumulator import Evaluator, MetricAccumulator
from toposeg.metrics.betti import betti_errors, betti_numbers, euler_characteristic
from toposeg.metrics.betti_matching import betti_matching_error
from toposeg.metrics.case import evaluate_case
from toposeg.metrics.cldice import cldice
from toposeg.metrics.decomposition import DECOMPOSITION_KEYS, component_errors
from toposeg.metrics.local_betti import local_betti_error
from toposeg.metrics.overlap import dice, iou, miou
from toposeg.metrics.paper_protocol import paper_clean
from toposeg.metrics.partition import are, partition_labels, voi
from toposeg.metrics.postprocess import remove_small_objects

__all__ = [
    "DECOMPOSITION_KEYS",
    "Evaluator",
    "MetricAccumulator",
    "are",
    "betti_errors",
    "betti_matching_error",
    "betti_numbers",
    "cldice",
    "component_errors",
    "dice",
    "euler_characteristic",
    "evaluate_case",
    "iou",
    "local_betti_error",
    "miou",
    "paper_clean",
    "partition_labels",
    "remove_small_objects",
    "voi",
]
