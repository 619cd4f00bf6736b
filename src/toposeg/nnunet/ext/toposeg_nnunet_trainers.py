"""Entry module for nnU-Net's trainer discovery (``nnUNet_extTrainer`` points at this folder).

nnU-Net imports every module of the folders listed in ``nnUNet_extTrainer`` as a top-level
module and looks the ``-tr`` class name up in it. This module only re-exports the trainers of
:mod:`toposeg.nnunet.trainers`, so each class exists once, under its real module path.
"""

from toposeg.nnunet.trainers import *  # noqa: F401,F403
from toposeg.nnunet.trainers import __all__  # noqa: F401
