"""Strict JSON: NaN and infinities (undefined metrics) are written as ``null``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np


def json_safe(obj: Any) -> Any:
    """Copy of ``obj`` with non-finite floats replaced by ``None`` (recursively)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes the non-standard ``NaN``/``Infinity`` tokens."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def nan_if_none(value: Any) -> float:
    """Read back a metric written by :func:`dumps` (``null`` = undefined = NaN)."""
    return math.nan if value is None else float(value)


def write_rows(path: Union[str, Path], rows: Sequence[Mapping[str, Any]], *, float_format: Optional[str] = None) -> Path:
    """CSV with one row per dict (columns from the first row); floats formatted with
    ``float_format`` (e.g. ``".10g"``) when given. No rows: an empty file."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: format(v, float_format) if float_format and isinstance(v, float) else v
                                 for k, v in row.items()})
    return path
