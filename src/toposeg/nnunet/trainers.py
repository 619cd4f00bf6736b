"""nnU-Net v2 trainers with a toposeg topology term (needs ``pip install "toposeg[nnunet]"``).

Each trainer is nnU-Net's ``nnUNetTrainer`` -- same network, plans, data augmentation, Dice + CE
(or Dice + BCE for regions) with deep supervision -- plus ``topology_weight`` times one
:class:`toposeg.nnunet.terms.TopologyTerm` on the full-resolution output:

======================================  ===================  ========  =======================
trainer                                  term                 weight    source
======================================  ===================  ========  =======================
``nnUNetTrainerSHPM``                    SHPM hard-pixel MSE  0.5       Zhang et al., BMVC 2023
``nnUNetTrainerTHPM``                    THPM hard-pixel MSE  0.5       idem
``nnUNetTrainerPHPM``                    PHPM hard-pixel MSE  0.5       idem
``nnUNetTrainerClDice``                  1 - soft clDice      1.0       Shit et al., CVPR 2021
``nnUNetTrainerSkeletonRecall``          1 - skeleton recall  1.0       Kirchhoff et al., ECCV 2024
======================================  ===================  ========  =======================

Every setting is a class attribute; change it by subclassing (the subclass must live in a
module of a folder listed in ``nnUNet_extTrainer``)::

    from toposeg.nnunet.trainers import nnUNetTrainerSHPM

    class nnUNetTrainerSHPM_lam1(nnUNetTrainerSHPM):
        topology_weight = 1.0
        topology_warmup_epochs = 50

nnU-Net discovers the trainers through ``nnUNet_extTrainer=$(toposeg nnunet trainer-dir)``.
"""

from __future__ import annotations

from typing import Iterable

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from toposeg.nnunet.terms import TopologyCompoundLoss, TopologyTerm


class nnUNetTrainerTopology(nnUNetTrainer):
    """Base of the toposeg trainers: nnU-Net's loss + ``topology_weight`` x the term ``topology_term``.

    Class attributes (override in a subclass):

    * ``topology_term``: ``"shpm"``, ``"thpm"``, ``"phpm"``, ``"cldice"``, ``"skeleton_recall"``.
    * ``topology_weight``: lambda, the weight of the term next to nnU-Net's Dice + CE.
    * ``topology_warmup_epochs``: epochs trained with nnU-Net's loss alone before the term is
      switched on (default 0: from the first epoch).
    * ``hpm_threshold``: mining threshold ``t`` (default 0.6, the paper's); also completes the
      ground truth at ignore-label voxels.
    * ``skeleton_method`` / ``skeleton_backend``: :func:`toposeg.skeleton.skeletonize` rule and
      implementation (``"thin"`` / ``"auto"`` = torch on every device).
    * ``phpm_dims``: homology dimensions mined by PHPM (default ``(0, 1)``; ``(0,)`` for 3D
      vessels as in the paper).
    * ``cldice_iters``: soft-skeleton iterations (default 3). ``tube_radius``: Skeleton Recall
      tube (default 2).

    The term's last value is written to the training log once per epoch (mean over iterations).
    """

    topology_term: str = "shpm"
    topology_weight: float = 0.5
    topology_warmup_epochs: int = 0
    hpm_threshold: float = 0.6
    skeleton_method: str = "thin"
    skeleton_backend: str = "auto"
    phpm_dims: Iterable[int] = (0, 1)
    cldice_iters: int = 3
    tube_radius: int = 2

    def build_topology_term(self) -> TopologyTerm:
        """The term for this trainer's label layout (regions, ignore label) and attributes."""
        lm = self.label_manager
        return TopologyTerm(
            self.topology_term, has_regions=lm.has_regions, ignore_label=lm.ignore_label,
            threshold=self.hpm_threshold, skeleton_method=self.skeleton_method,
            skeleton_backend=self.skeleton_backend, phpm_dims=self.phpm_dims, cldice_iters=self.cldice_iters,
            tube_radius=self.tube_radius,
        )

    def _build_loss(self):
        return TopologyCompoundLoss(super()._build_loss(), self.build_topology_term(), self.topology_weight,
                                    deep_supervision=self.enable_deep_supervision)

    def topology_active(self, epoch: int) -> bool:
        """Whether the term is on in ``epoch`` (0-based): after ``topology_warmup_epochs``."""
        return epoch >= int(self.topology_warmup_epochs)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self._topology_values = []
        if isinstance(self.loss, TopologyCompoundLoss):
            self.loss.active = self.topology_active(self.current_epoch)
            state = "on" if self.loss.active else f"off (warm-up: {self.topology_warmup_epochs} epochs)"
            self.print_to_log_file(f"topology term {self.topology_term!r}, weight {self.topology_weight}: {state}")

    def train_step(self, batch: dict) -> dict:
        out = super().train_step(batch)
        value = getattr(self.loss, "last_term", None)
        if value is not None:
            self.__dict__.setdefault("_topology_values", []).append(float(value))
        return out

    def on_train_epoch_end(self, train_outputs):
        super().on_train_epoch_end(train_outputs)
        values = getattr(self, "_topology_values", [])
        if values:
            self.print_to_log_file(f"train topology term ({self.topology_term}): {sum(values) / len(values):.5f}")


class nnUNetTrainerSHPM(nnUNetTrainerTopology):
    """nnU-Net + 0.5 x SHPM term (skeleton-based hard pixels, eq. 6-8; GT skeleton on the fly)."""

    topology_term = "shpm"
    topology_weight = 0.5


class nnUNetTrainerTHPM(nnUNetTrainerTopology):
    """nnU-Net + 0.5 x THPM term (every misclassified pixel is hard, eq. 3)."""

    topology_term = "thpm"
    topology_weight = 0.5


class nnUNetTrainerPHPM(nnUNetTrainerTopology):
    """nnU-Net + 0.5 x PHPM term (critical pixels of persistence pairs, eq. 4-5)."""

    topology_term = "phpm"
    topology_weight = 0.5


class nnUNetTrainerClDice(nnUNetTrainerTopology):
    """nnU-Net + 1 x (1 - soft clDice); weight 1 keeps the authors' 1:1 ratio of Dice and clDice."""

    topology_term = "cldice"
    topology_weight = 1.0


class nnUNetTrainerSkeletonRecall(nnUNetTrainerTopology):
    """nnU-Net + 1 x (1 - soft recall on the tubed GT skeleton), the authors' weight."""

    topology_term = "skeleton_recall"
    topology_weight = 1.0


TRAINERS = {
    "nnUNetTrainerSHPM": nnUNetTrainerSHPM,
    "nnUNetTrainerTHPM": nnUNetTrainerTHPM,
    "nnUNetTrainerPHPM": nnUNetTrainerPHPM,
    "nnUNetTrainerClDice": nnUNetTrainerClDice,
    "nnUNetTrainerSkeletonRecall": nnUNetTrainerSkeletonRecall,
}

__all__ = ["TRAINERS", "nnUNetTrainerClDice", "nnUNetTrainerPHPM", "nnUNetTrainerSHPM",
           "nnUNetTrainerSkeletonRecall", "nnUNetTrainerTHPM", "nnUNetTrainerTopology"]
