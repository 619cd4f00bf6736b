"""Paired statistics (reports.paired) and the paper-protocol clean-up, against hand counts."""

import math

import numpy as np
import pytest

from toposeg.metrics.paper_protocol import paper_clean
from toposeg.reports.paired import bootstrap_ci, case_means, paired_comparison, paired_figure, paired_markdown, wilcoxon_p


def test_wilcoxon_exact_small_sample():
    # 6 positive differences with distinct ranks: exact two-sided p = 2 / 2**6 (hand count)
    assert wilcoxon_p([1, 2, 3, 4, 5, 6]) == pytest.approx(2 / 64)
    # signs +1 -2 +3: W+ = 4 of total 6; 8 sign patterns, |W+ - 3| >= 1 in 6 of them -> p = 6/8
    assert wilcoxon_p([1, -2, 3]) == pytest.approx(0.75)
    assert wilcoxon_p([0, 0, 0]) == 1.0
    assert math.isnan(wilcoxon_p([]))


def test_bootstrap_ci_constant_and_coverage():
    assert bootstrap_ci([0.5] * 7) == (0.5, 0.5)
    # normal data: the percentile CI of the mean is close to mean ± 1.96 s / sqrt(n)
    rng = np.random.default_rng(1)
    d = rng.normal(2.0, 1.0, 400)
    lo, hi = bootstrap_ci(d, n_boot=4000)
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert lo == pytest.approx(d.mean() - half, abs=0.03) and hi == pytest.approx(d.mean() + half, abs=0.03)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.5"):
        bootstrap_ci([1.0], confidence=1.5)


def _rows():
    rows = []
    for seed in (0, 1):
        for i, case in enumerate(["f0/a", "f0/b", "f1/c", "f1/d"]):
            rows.append({"method": "unet", "case": case, "seed": seed, "betti0_error": 10 + i + seed})
            rows.append({"method": "shpm", "case": case, "seed": seed, "betti0_error": 8 + i + 3 * seed})
    rows.append({"method": "shpm", "case": "f1/e", "seed": 0, "betti0_error": None})  # undefined: dropped
    return rows


def test_paired_comparison_averages_seeds_first():
    rows = _rows()
    means = case_means(rows, "betti0_error")
    assert means["unet"]["f0/a"] == 10.5 and means["shpm"]["f0/a"] == 9.5  # (8 + 11) / 2
    res = paired_comparison(rows, baseline="unet", metrics=["betti0_error"])
    s = res["shpm"]["betti0_error"]
    assert s["n"] == 4 and s["n_dropped"] == 1
    assert s["diffs"] == {"f0/a": -1.0, "f0/b": -1.0, "f1/c": -1.0, "f1/d": -1.0}
    assert s["mean_diff"] == -1.0 and s["ci_low"] == -1.0 and s["ci_high"] == -1.0
    assert s["p_wilcoxon"] == pytest.approx(2 / 16)
    md = paired_markdown(res, ["betti0_error"], baseline="unet")
    assert "| shpm | -1.000 [-1.000, -1.000] (p=0.12, n=4) |" in md
    with pytest.raises(KeyError, match="baseline 'bce' not among the methods"):
        paired_comparison(rows, baseline="bce", metrics=["betti0_error"])


def test_paired_figure(tmp_path):
    res = paired_comparison(_rows(), baseline="unet", metrics=["betti0_error"])
    path = paired_figure(tmp_path / "paired.png", res, ["betti0_error"], baseline="unet")
    assert path.is_file() and path.stat().st_size > 1000


def test_paper_clean_thresholds_by_hand():
    m = np.zeros((40, 60), bool)
    m[1:10, 1:12] = True          # 99 px object -> removed
    m[20:30, 1:11] = True         # 100 px object -> kept
    m[1:15, 30:50] = True         # big object with a 9 px hole (filled) ...
    m[3:6, 33:36] = False
    m[8:10, 40:45] = False        # ... and a 10 px hole (kept)
    out = paper_clean(m)
    assert not out[1:10, 1:12].any()
    assert out[20:30, 1:11].all()
    assert out[3:6, 33:36].all()
    assert not out[8:10, 40:45].any()
    assert m[3:6, 33:36].sum() == 0  # input untouched
    # connectivity 1: two diagonal 60 px blocks are two objects of < 100 px, both removed
    d = np.zeros((30, 30), bool)
    d[0:6, 0:10] = True
    d[6:12, 10:20] = True
    assert not paper_clean(d).any()
    with pytest.raises(ValueError, match=r"2D masks only, got shape \(2, 3, 4\)"):
        paper_clean(np.zeros((2, 3, 4), bool))
