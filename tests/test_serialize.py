import json
import math

import numpy as np

from toposeg.reports.serialize import dumps, nan_if_none


def test_dumps_writes_null_for_undefined_values():
    text = dumps({"a": float("nan"), "b": [1.5, float("inf"), np.float32(2.0)], "c": np.int64(3)})
    assert json.loads(text) == {"a": None, "b": [1.5, None, 2.0], "c": 3}
    assert "NaN" not in text and "Infinity" not in text


def test_nan_if_none():
    assert math.isnan(nan_if_none(None)) and nan_if_none(0.25) == 0.25


def test_write_rows(tmp_path):
    import csv

    from toposeg.reports.serialize import write_rows

    path = write_rows(tmp_path / "a.csv", [{"id": "x", "v": 1 / 3}, {"id": "y", "v": float("nan")}], float_format=".3g")
    assert list(csv.reader(open(path))) == [["id", "v"], ["x", "0.333"], ["y", "nan"]]
    assert write_rows(tmp_path / "empty.csv", []).read_text() == ""
