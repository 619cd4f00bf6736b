"""Figure inputs: predictions given as one mask, a list, or a name -> mask mapping."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from toposeg.topology._inputs import as_mask


def named_masks(preds: Any) -> dict[str, np.ndarray]:
    """``{name: bool mask}``; a list gets "prediction 1", "prediction 2", ... (or "prediction")."""
    if isinstance(preds, Mapping):
        items = list(preds.items())
    elif isinstance(preds, (list, tuple)):
        items = [(f"prediction {i + 1}" if len(preds) > 1 else "prediction", p) for i, p in enumerate(preds)]
    else:
        items = [("prediction", preds)]
    if not items:
        raise ValueError("preds must contain at least one prediction, got none")
    return {str(k): as_mask(v, f"prediction {k!r}") for k, v in items}
