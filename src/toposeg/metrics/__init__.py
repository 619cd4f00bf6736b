"""Per-case evaluation metrics on whole binary images/volumes (NumPy)."""

from toposeg.metrics.betti import betti_errors, betti_numbers
from toposeg.metrics.case import evaluate_case
from toposeg.metrics.overlap import dice, iou, miou

__all__ = ["betti_errors", "betti_numbers", "dice", "evaluate_case", "iou", "miou"]
