"""What toposeg recommends training with, per dataset kind, and on what evidence.

The recommendation is chosen by the rule of docs/results.md ("How the recommended method is
chosen"): validation splits only, the same rule for every method. It may be the paper's SHPM, a
variant, a rival, or the plain baseline; ``evidence`` says which study chose it and how sure it is.
``toposeg demo`` trains the recommended method beside the baseline and the paper's SHPM, and
``configs/recommended/`` holds a config per dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recommendation:
    """A fine-tuning loss for :func:`toposeg.losses.build_loss` and why it was chosen.

    Attributes:
        loss: registry name (``toposeg.losses.LOSSES``).
        params: keyword arguments of that loss.
        evidence: one sentence: which study, which rule, how many folds and seeds, provisional or not.
    """

    loss: str
    params: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""


_ISBI = ("chosen by toposeg's validation rule (docs/results.md) on the ISBI 2012 quick protocol, 5 folds x 3 seeds, "
         "among the baseline, clDice, Skeleton Recall, THPM, PHPM, the paper's SHPM and SHPM variants (screened on "
         "seed 0); on the 20 test sections, against the equal-budget baseline, it lowered the beta0 error by 4.1 "
         "[95 % CI 3.0, 5.3] and the beta1 error by 3.2 [2.0, 4.5], Dice equal, ARE 0.011 [0.003, 0.020] worse")

_VESSELS = ("chosen by toposeg's validation rule (docs/results.md) on the synthetic vessels2d quick protocol, "
            "3 folds x 3 seeds, among the baseline, clDice, Skeleton Recall, THPM, PHPM, the paper's SHPM and "
            "shpm_plus; on the 15 test images, against the equal-budget baseline, it lowered the beta0 error by 7.0 "
            "[95 % CI 4.1, 10.3], the beta1 error by 0.7 [0.2, 1.2] and ARE by 0.027 [0.010, 0.047], "
            "Dice 0.005 [0.003, 0.008] lower")

#: dataset kind -> recommendation (kinds without an entry fall back to :data:`DEFAULT`)
RECOMMENDED: dict[str, Recommendation] = {
    "isbi2012": Recommendation("cldice", {}, _ISBI),
    "vessels2d": Recommendation("cldice", {}, _VESSELS),
}
DEFAULT = Recommendation(
    "cldice", {},
    "no toposeg study on this data kind yet: the method chosen on both kinds studied, ISBI 2012 (" + _ISBI
    + ") and synthetic vessels (" + _VESSELS + ")")


def recommended(kind: str) -> Recommendation:
    """The recommendation for a dataset kind (``"vessels2d"``, ``"isbi2012"``, ...); kinds not in
    :data:`RECOMMENDED` get :data:`DEFAULT`. Raises TypeError for a non-string kind."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a dataset kind name (str), got {type(kind).__name__} {kind!r}")
    return RECOMMENDED.get(kind, DEFAULT)
