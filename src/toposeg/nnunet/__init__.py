"""toposeg inside nnU-Net v2: topology trainers, dataset conversion, evaluation of predictions.

* :func:`trainer_dir` -- the folder to put in ``nnUNet_extTrainer`` so that ``nnUNetv2_train
  ... -tr nnUNetTrainerSHPM`` (THPM, PHPM, ClDice, SkeletonRecall) finds the trainers of
  :mod:`toposeg.nnunet.trainers` (that module needs ``nnunetv2``: ``pip install "toposeg[nnunet]"``).
* :mod:`toposeg.nnunet.terms` -- the topology terms on nnU-Net's outputs and targets (torch only).
* :func:`convert_dataset` -- any ``toposeg.data.open_dataset`` kind to nnU-Net's raw format.
* :func:`evaluate_folder` -- per-case, per-class topology metrics of an nnU-Net prediction folder.

Tested with nnunetv2 2.8.1 (the ``nnUNet_extTrainer`` extension point first appeared in
2.8.0, whose trainer and discovery code is identical); see :data:`NNUNET_REQUIREMENT`.
"""

from __future__ import annotations

from pathlib import Path

#: the nnunetv2 versions the ``nnunet`` extra allows (the tested range)
NNUNET_REQUIREMENT = "nnunetv2>=2.8.0,<2.9"

#: the trainer class names nnU-Net can find in :func:`trainer_dir`
TRAINER_NAMES = ("nnUNetTrainerSHPM", "nnUNetTrainerTHPM", "nnUNetTrainerPHPM", "nnUNetTrainerClDice",
                 "nnUNetTrainerSkeletonRecall")


def trainer_dir() -> Path:
    """Absolute folder for ``nnUNet_extTrainer``: it holds one module that re-exports the trainers."""
    return (Path(__file__).resolve().parent / "ext").resolve()


def __getattr__(name: str):
    lazy = {"convert_dataset": "toposeg.nnunet.convert", "evaluate_folder": "toposeg.nnunet.evaluate",
            "TopologyTerm": "toposeg.nnunet.terms", "TopologyCompoundLoss": "toposeg.nnunet.terms"}
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'toposeg.nnunet' has no attribute {name!r}")


__all__ = ["NNUNET_REQUIREMENT", "TRAINER_NAMES", "TopologyCompoundLoss", "TopologyTerm", "convert_dataset",
           "evaluate_folder", "trainer_dir"]
