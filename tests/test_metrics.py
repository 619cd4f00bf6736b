"""Per-case metrics and the accumulator vs independent references (skimage.metrics, hand cases)."""

import math

import numpy as np
import pytest
import torch
from skimage.measure import label as sk_label
from skimage.metrics import adapted_rand_error, variation_of_information
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg.metrics import (
    MetricAccumulator,
    are,
    cldice,
    dice,
    evaluate_case,
    iou,
    miou,
    partition_labels,
    remove_small_objects,
    voi,
)
from toposeg.metrics.partition import are_from_labels, voi_from_labels

KEYS_2D = {"dice", "iou", "miou", "cldice", "voi", "voi_split", "voi_merge", "are", "are_precision",
           "are_recall", "betti0_error", "betti1_error"}


def random_membranes(shape, rng, p=0.35):
    return rng.random(shape) < p


def sk_partition(mask, bg_conn):
    """Independent partition labelling: background components (skimage), foreground = 0."""
    return sk_label(~mask, background=0, connectivity=bg_conn)


# ---------------------------------------------------------------- VOI / ARE


def test_voi_are_from_labels_equal_skimage_random_labelings():
    rng = np.random.default_rng(0)
    for shape, kt, ks in [((30, 40), 4, 6), ((10, 12, 9), 3, 9), ((50, 50), 400, 300)]:
        t = rng.integers(0, kt, shape)
        s = rng.integers(0, ks, shape)
        np.testing.assert_allclose(voi_from_labels(t, s), variation_of_information(t, s), rtol=1e-12, atol=1e-12)
        e, sk_prec, sk_rec = adapted_rand_error(t, s)
        # skimage returns precision and recall swapped w.r.t. its docstring (scikit-image #6485)
        np.testing.assert_allclose(are_from_labels(t, s), (e, sk_rec, sk_prec), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # skimage's own 0/0
def test_voi_are_large_label_product_and_empty_true_labels():
    rng = np.random.default_rng(1)
    t = rng.permutation(4000).reshape(40, 100)  # 4000 x 4000 label product >> pixels
    s = rng.integers(0, 4000, (40, 100))
    np.testing.assert_allclose(voi_from_labels(t, s), variation_of_information(t, s), rtol=1e-12)
    e, sk_prec, sk_rec = adapted_rand_error(t, s)
    np.testing.assert_allclose(are_from_labels(t, s), (e, sk_rec, sk_prec), rtol=1e-12)
    # true image all label 0 (all ignored by ARE): every Rand ratio is 0/0 -> NaN, not a warning
    assert all(math.isnan(v) for v in are_from_labels(np.zeros((3, 3), int), np.ones((3, 3), int)))


@pytest.mark.parametrize("t, s, exc, match", [
    (np.zeros((2, 2), int), np.zeros((2, 3), int), ValueError, r"same shape, got \(2, 2\) and \(2, 3\)"),
    (np.full((2, 2), -1), np.zeros((2, 2), int), ValueError, r"true_labels must be non-negative.*-1"),
    (np.zeros((2, 2), int), np.full((2, 2), 0.5), TypeError, r"test_labels must be an integer label image.*float64"),
])
def test_voi_are_from_labels_bad_input(t, s, exc, match):
    for fn in (voi_from_labels, are_from_labels):
        with pytest.raises(exc, match=match):
            fn(t, s)


@pytest.mark.parametrize("shape,conn,bg", [((40, 45), None, 1), ((40, 45), 4, 2), ((9, 10, 11), None, 1),
                                            ((9, 10, 11), 6, 3)])
def test_evaluate_case_voi_are_equal_skimage_on_partitions(shape, conn, bg):
    rng = np.random.default_rng(2)
    for _ in range(3):
        gt = random_membranes(shape, rng)
        pred = gt ^ (rng.random(shape) < 0.1)
        lt, lp = sk_partition(gt, bg), sk_partition(pred, bg)
        np.testing.assert_array_equal(partition_labels(gt, connectivity=conn) > 0, lt > 0)
        r = evaluate_case(pred, gt, connectivity=conn)
        split, merge = variation_of_information(lt, lp)
        e, prec, rec = adapted_rand_error(lt, lp)
        assert r["voi_split"] == pytest.approx(split, abs=1e-12)
        assert r["voi_merge"] == pytest.approx(merge, abs=1e-12)
        assert r["voi"] == pytest.approx(split + merge, abs=1e-12)
        assert (r["are"], r["are_precision"], r["are_recall"]) == pytest.approx((e, rec, prec), rel=1e-12)
        assert voi(pred, gt, connectivity=conn)["voi"] == r["voi"]
        assert are(pred, gt, connectivity=conn)["are"] == r["are"]


def test_voi_are_hand_case_full_value_and_argument_order():
    # a vertical membrane splits a 4x5 image into two 8-pixel cells; the prediction misses it
    gt = np.zeros((4, 5), bool)
    gt[:, 2] = True
    pred = np.zeros_like(gt)
    r = evaluate_case(pred, gt)
    h_gt = -(2 * 0.4 * math.log2(0.4) + 0.2 * math.log2(0.2))  # entropy of gt labels (8, 8, 4 px)
    assert r["voi_split"] == pytest.approx(0.0, abs=1e-15)
    assert r["voi_merge"] == pytest.approx(h_gt)  # the two cells were merged
    assert r["voi"] == pytest.approx(h_gt)  # not halved (the paper's code reported h_gt / 2)
    # ARE ignores gt label 0 (the membrane): 16 px, gt cells 8 + 8, one predicted cell of 16
    sum_p2, sum_gt2, sum_pred2 = 64 + 64 - 16, 64 + 64 - 16, 256 - 16
    assert r["are"] == pytest.approx(1 - sum_p2 / (0.5 * sum_gt2 + 0.5 * sum_pred2))
    assert r["are_precision"] == pytest.approx(sum_p2 / sum_pred2)  # a false merge lowers precision
    assert r["are_recall"] == pytest.approx(sum_p2 / sum_gt2) == 1.0
    swapped = adapted_rand_error(sk_partition(pred, 1), sk_partition(gt, 1))[0]
    assert abs(r["are"] - swapped) > 0.05  # the paper's swapped arguments give another number


def test_split_is_over_segmentation():
    gt = np.zeros((4, 5), bool)
    pred = gt.copy()
    pred[:, 2] = True  # spurious membrane splits the single gt cell
    r = evaluate_case(pred, gt)
    assert r["voi_split"] > 0 and r["voi_merge"] == pytest.approx(0.0, abs=1e-15)


def test_are_nan_when_gt_is_all_foreground():
    r = evaluate_case(np.zeros((4, 4), bool), np.ones((4, 4), bool))
    assert math.isnan(r["are"]) and r["dice"] == 0.0


# ---------------------------------------------------------------- overlap


def test_overlap_hand_values_and_undefined():
    p = np.array([[1, 1, 0, 0]], bool)
    t = np.array([[0, 1, 1, 0]], bool)
    assert dice(p, t) == pytest.approx(0.5)
    assert iou(p, t) == pytest.approx(1 / 3)
    assert miou(p, t) == pytest.approx((1 / 3 + 1 / 3) / 2)
    z = np.zeros((3, 3), bool)
    assert math.isnan(dice(z, z)) and math.isnan(iou(z, z)) and miou(z, z) == 1.0
    assert dice(z, ~z) == 0.0


# ---------------------------------------------------------------- clDice


def reference_cldice(p, t):
    sp, st = sk_skeletonize(p, method="zhang"), sk_skeletonize(t, method="zhang")
    tprec = (sp & t).sum() / sp.sum()
    tsens = (st & p).sum() / st.sum()
    return 2 * tprec * tsens / (tprec + tsens), tprec, tsens


def test_cldice_matches_reference_on_shapes():
    rng = np.random.default_rng(3)
    from scipy import ndimage

    for _ in range(3):
        t = ndimage.binary_dilation(rng.random((48, 48)) < 0.02, iterations=3)
        p = ndimage.binary_dilation(t ^ (rng.random(t.shape) < 0.05))
        ref = reference_cldice(p, t)
        r = cldice(p, t, skeleton_method="zhang")  # the rule scikit-image implements
        assert (r["cldice"], r["cldice_tprec"], r["cldice_tsens"]) == pytest.approx(ref)
        assert 0 < r["cldice"] < 1  # the paper's single-channel clDice was identically 0


def test_cldice_edge_cases():
    z = np.zeros((9, 9), bool)
    line = z.copy()
    line[4, 1:8] = True
    assert cldice(line, line)["cldice"] == 1.0
    assert math.isnan(cldice(z, z)["cldice"])
    r = cldice(z, line)  # structure entirely missed
    assert r["cldice"] == 0.0 and math.isnan(r["cldice_tprec"]) and r["cldice_tsens"] == 0.0
    r = cldice(line, z)  # entirely spurious
    assert r["cldice"] == 0.0 and r["cldice_tprec"] == 0.0 and math.isnan(r["cldice_tsens"])


def test_cldice_default_rule_keeps_3d_bars_of_even_width():
    # issue 11: scikit-image's Lee thinning (the old CPU default in 3D) returns an empty skeleton
    # for a 4x4 bar, so clDice of a perfect prediction was NaN and a 3x3 bar inside it scored 0.
    v = np.zeros((48, 12, 12), bool)
    v[4:44, 4:8, 4:8] = True  # 4x4 cross-section, 40 voxels long
    inner = np.zeros_like(v)
    inner[4:44, 5:8, 5:8] = True  # 3x3 bar inside it, same length
    assert evaluate_case(v, v)["cldice"] == 1.0
    r = cldice(inner, v)
    # by hand: S(inner) lies inside inner, which lies inside v -> Tprec = 1 exactly; S(v) is a
    # curve along the bar's axis, inside the 2x2 core (rows/cols 5..6) that inner covers, so
    # Tsens = 1 up to the skeleton's ends -> clDice close to 1.
    assert r["cldice_tprec"] == 1.0 and r["cldice"] >= 0.9
    # the parameters are passed on: Lee by name reproduces the old failure
    lee = evaluate_case(v, v, skeleton_method="lee", skeleton_backend="skimage")
    assert math.isnan(lee["cldice"])
    assert cldice(inner, v, skeleton_method="lee")["cldice"] == 0.0 or math.isnan(
        cldice(inner, v, skeleton_method="lee")["cldice"])
    acc = MetricAccumulator(skeleton_method="lee")
    assert math.isnan(acc.update(v, v)["cldice"]) and MetricAccumulator().update(v, v)["cldice"] == 1.0


def test_cldice_skeleton_parameters_bad_values():
    m = np.zeros((6, 6), bool)
    m[2, 1:5] = True
    with pytest.raises(KeyError, match=r"unknown skeleton method 'medial'"):
        cldice(m, m, skeleton_method="medial")
    with pytest.raises(KeyError, match=r"unknown skeleton backend 'gpu'"):
        evaluate_case(m, m, skeleton_backend="gpu")
    with pytest.raises(ValueError, match=r"'lee' is not defined for 2D"):
        evaluate_case(m, m, skeleton_method="lee")


# ---------------------------------------------------------------- evaluate_case


def test_evaluate_case_keys_2d_and_3d_and_torus_regression():
    rng = np.random.default_rng(4)
    r2 = evaluate_case(rng.random((16, 16)) < 0.5, rng.random((16, 16)) < 0.5)
    assert KEYS_2D <= set(r2) and "betti2_error" not in r2
    z, y, x = np.indices((9, 20, 20), dtype=float)
    torus = (np.hypot(y - 9.5, x - 9.5) - 6) ** 2 + (z - 4) ** 2 <= 2.2**2
    cut = torus.copy()
    cut[:, :, 9:11] = False  # a slab through the centre cuts the ring twice: two arcs, no loop
    r3 = evaluate_case(cut, torus)
    assert KEYS_2D | {"betti2_error"} <= set(r3)
    assert (r3["betti0_gt"], r3["betti1_gt"], r3["betti2_gt"]) == (1, 1, 0)
    assert (r3["betti0_pred"], r3["betti1_pred"]) == (2, 0)
    assert r3["betti1_error"] == 1.0 and r3["betti2_error"] == 0.0


def test_evaluate_case_perfect_prediction_and_inputs_untouched():
    rng = np.random.default_rng(5)
    gt = (rng.random((20, 20)) < 0.4).astype(np.uint8)
    pred = torch.from_numpy(gt.copy())
    before = gt.copy()
    r = evaluate_case(pred, gt)
    np.testing.assert_array_equal(gt, before)
    assert r["dice"] == 1.0 and r["cldice"] == 1.0 and r["voi"] == 0.0 and r["are"] == pytest.approx(0.0)
    assert all(r[f"betti{k}_error"] == 0 for k in (0, 1))


def test_evaluate_case_euler_and_betti_match_references():
    from skimage.measure import euler_number

    gudhi = pytest.importorskip("gudhi")

    def gudhi_betti(mask, vertices):  # sublevel set at 0 of the binary image (see test_topology.py)
        f = np.where(mask, 0.0, 1.0)
        cc = gudhi.CubicalComplex(vertices=f) if vertices else gudhi.CubicalComplex(top_dimensional_cells=f)
        cc.compute_persistence(homology_coeff_field=2, min_persistence=-1)
        iv = [np.asarray(cc.persistence_intervals_in_dimension(k)).reshape(-1, 2) for k in range(mask.ndim)]
        return [int(np.count_nonzero((i[:, 0] <= 0) & (i[:, 1] > 0.5))) for i in iv]

    rng = np.random.default_rng(6)
    for shape in [(30, 31), (8, 9, 10)]:
        for conn, sk_conn, vertices in [(None, len(shape), False), ({2: 4, 3: 6}[len(shape)], 1, True)]:
            p, t = rng.random(shape) < 0.5, rng.random(shape) < 0.4
            r = evaluate_case(p, t, connectivity=conn)
            assert r["euler_pred"] == euler_number(p, connectivity=sk_conn)
            assert r["euler_gt"] == euler_number(t, connectivity=sk_conn)
            bp, bt = gudhi_betti(p, vertices=vertices), gudhi_betti(t, vertices=vertices)
            for k in range(len(shape)):
                assert (r[f"betti{k}_pred"], r[f"betti{k}_gt"]) == (bp[k], bt[k])
                assert r[f"betti{k}_error"] == abs(bp[k] - bt[k])


def test_evaluate_case_connectivity_changes_betti():
    m = np.zeros((5, 5), bool)
    m[1, 1] = m[2, 2] = True
    z = np.zeros_like(m)
    assert evaluate_case(m, z)["betti0_error"] == 1
    assert evaluate_case(m, z, connectivity=4)["betti0_error"] == 2


@pytest.mark.parametrize(
    "pred,target,kw,exc,match",
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, ValueError, r"same shape, got \(4, 4\) and \(4, 5\)"),
        (np.array([[0, 255]]), np.zeros((1, 2)), {}, ValueError, r"pred must be binary.*found values \[0, 255\]"),
        (np.zeros((2, 2)), np.full((2, 2), 0.5), {}, ValueError, r"target must be binary.*\[0.5\]"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"connectivity": 26}, ValueError, "got 26"),
        ("a.png", np.zeros((2, 2)), {}, TypeError, "got str"),
    ],
)
def test_evaluate_case_bad_input(pred, target, kw, exc, match):
    with pytest.raises(exc, match=match):
        evaluate_case(pred, target, **kw)


# ---------------------------------------------------------------- accumulator


def test_accumulator_nan_aware_and_per_case():
    acc = MetricAccumulator()
    line = np.zeros((8, 8), bool)
    line[4, 1:7] = True
    half = line.copy()
    half[4, 4:] = False
    z = np.zeros_like(line)
    r1 = acc.update(line, line, case_id="a")
    r2 = acc.update(half, line, case_id="b")
    acc.update(z, z, case_id="empty")
    s = acc.compute()
    assert s["dice"]["n"] == 3 and s["dice"]["n_valid"] == 2
    vals = [r1["dice"], r2["dice"]]
    assert s["dice"]["mean"] == pytest.approx(np.mean(vals)) and s["dice"]["std"] == pytest.approx(np.std(vals))
    assert s["betti0_error"]["n_valid"] == 3  # defined for empty masks
    rows = acc.per_case()
    assert [r["case_id"] for r in rows] == ["a", "b", "empty"] and math.isnan(rows[2]["dice"])
    assert list(rows[0])[0] == "case_id"


def test_accumulator_metric_dicts_and_errors():
    acc = MetricAccumulator()
    acc.update({"dice": 0.5}, case_id="x")
    acc.update({"dice": 1.0, "are": 0.1}, "y")  # case id may be positional for rows
    s = acc.compute()
    assert s["dice"]["mean"] == 0.75 and s["are"] == {"mean": 0.1, "std": 0.0, "n_valid": 1, "n": 2}
    assert math.isnan(acc.per_case()[0]["are"]) and acc.per_case()[1]["case_id"] == "y"
    with pytest.raises(ValueError, match="duplicate case_id 'x'"):
        acc.update({"dice": 0.1}, case_id="x")
    with pytest.raises(TypeError, match="takes no target mask, got ndarray"):
        acc.update({"dice": 0.1}, np.zeros((2, 2)), case_id="w")
    with pytest.raises(TypeError, match="needs a target"):
        acc.update(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="'dice': str"):
        acc.update({"dice": "high"}, case_id="z")
    empty = MetricAccumulator()
    assert empty.compute() == {} and empty.per_case() == []


# ---------------------------------------------------------------- post-processing


def test_remove_small_objects_prediction_only():
    m = np.zeros((10, 10), bool)
    m[1:4, 1:4] = True  # 9 px
    m[7, 7] = m[8, 8] = True  # 2 px, 8-connected
    before = m.copy()
    out = remove_small_objects(m, 3)
    np.testing.assert_array_equal(m, before)
    assert out.sum() == 9 and not out[7, 7]
    assert remove_small_objects(m, 2).sum() == 11  # diagonal pair is one 8-connected object
    assert remove_small_objects(m, 2, connectivity=4).sum() == 9
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        remove_small_objects(m, -1)
