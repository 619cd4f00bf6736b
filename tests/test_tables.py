import pytest

from toposeg.reports.tables import markdown_table


def test_markdown_table_bolds_best_per_direction():
    results = {
        "a": {"dice": {"mean": 0.9, "std": 0.1}, "betti1_error": {"mean": 3.0, "std": 1.0}},
        "b": {"dice": {"mean": 0.8, "std": 0.1}, "betti1_error": {"mean": 1.0, "std": 0.5}},
    }
    table = markdown_table(results, ["dice", "betti1_error"])
    lines = table.splitlines()
    assert lines[0] == "| Method | Dice ↑ | β1 error ↓ |"
    assert lines[2] == "| a | **0.900 ± 0.100** | 3.000 ± 1.000 |"
    assert lines[3] == "| b | 0.800 ± 0.100 | **1.000 ± 0.500** |"


def test_markdown_table_unknown_metric():
    with pytest.raises(KeyError, match="unknown metrics \\['hausdorff'\\]"):
        markdown_table({}, ["hausdorff"])


def test_one_row_table_has_no_bold():
    from toposeg.reports.tables import markdown_table

    table = markdown_table({"unet": {"dice": {"mean": 0.8, "std": 0.1}}}, ["dice"])
    assert "**" not in table and "| unet | 0.800 ± 0.100 |" in table
