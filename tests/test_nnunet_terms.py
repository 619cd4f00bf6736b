"""Topology terms on nnU-Net's outputs/targets (torch only, nnunetv2 not needed).

Expected values are hand formulas: a one-pixel-wide line whose prediction drops to p = 0.3 at
one pixel ("a gap") gives every HPM miner exactly that pixel as its hard set, so eq. 2 is
(0.3 - 1)^2 = 0.49; Skeleton Recall's tube of a one-pixel line (inside the label) is the line
itself, so 1 - recall = (1 - 0.3) / (L + 1) with smooth = 1.
"""

import math

import pytest
import torch

from toposeg.nnunet.terms import TERMS, TopologyCompoundLoss, TopologyTerm, complete_ignored, split_target

H, W, ROW, C0, C1, GAP = 9, 24, 4, 2, 22, 12
L = C1 - C0
BIG = 30.0  # logit margin: softmax/sigmoid within 1e-13 of 0/1


def _labels():
    y = torch.zeros(1, 1, H, W)
    y[0, 0, ROW, C0:C1] = 1
    return y


def _logits_softmax(labels: torch.Tensor, gap_prob=None, classes: int = 2) -> torch.Tensor:
    """Two-or-more-channel logits whose argmax is ``labels`` with margin BIG; at the gap pixel
    the probability of class 1 is exactly ``gap_prob`` (two channels)."""
    lab = labels[:, 0].long()
    logits = torch.full((1, classes, H, W), -BIG)
    logits.scatter_(1, lab.unsqueeze(1), BIG)
    if gap_prob is not None:
        logits[0, :, ROW, GAP] = -BIG
        logits[0, 0, ROW, GAP] = 0.0
        logits[0, 1, ROW, GAP] = math.log(gap_prob / (1 - gap_prob))
    return logits


@pytest.mark.parametrize("kind", ["thpm", "phpm", "shpm"])
def test_hpm_term_is_049_on_a_gap_and_zero_on_a_perfect_prediction(kind):
    y = _labels()
    term = TopologyTerm(kind)
    perfect = term(_logits_softmax(y), y)
    gap = term(_logits_softmax(y, gap_prob=0.3), y)
    assert float(perfect) == 0.0
    assert float(gap) == pytest.approx(0.49, abs=1e-6)


def test_gradient_of_the_hpm_term_only_at_the_gap():
    y = _labels()
    logits = _logits_softmax(y, gap_prob=0.3).requires_grad_(True)
    TopologyTerm("thpm")(logits, y).backward()
    nz = logits.grad.abs().sum(1)[0].nonzero().tolist()
    assert nz == [[ROW, GAP]]


def test_skeleton_recall_term_matches_the_hand_formula():
    y = _labels()
    term = TopologyTerm("skeleton_recall")
    assert float(term(_logits_softmax(y), y)) == pytest.approx(0.0, abs=1e-9)
    assert float(term(_logits_softmax(y, gap_prob=0.3), y)) == pytest.approx(0.7 / (L + 1), abs=1e-6)


def test_cldice_term_zero_when_perfect_positive_with_a_gap():
    y = _labels()
    term = TopologyTerm("cldice")
    assert float(term(_logits_softmax(y), y)) == pytest.approx(0.0, abs=1e-6)
    assert float(term(_logits_softmax(y, gap_prob=0.3), y)) > 0.01


@pytest.mark.parametrize("kind", sorted(TERMS))
def test_gap_under_the_ignore_label_costs_nothing(kind):
    y = _labels()
    y_ign = y.clone()
    y_ign[0, 0, ROW - 1:ROW + 2, GAP - 1:GAP + 2] = 2  # ignore label 2 over the gap (3x3 patch)
    logits = _logits_softmax(y, gap_prob=0.3)
    logits_perfect = _logits_softmax(y)
    term = TopologyTerm(kind, ignore_label=2)
    ignored = term(logits, y_ign)
    # reference: the same prediction scored where the gap is labelled -> a positive term
    assert float(TopologyTerm(kind)(logits, y)) > 0.0
    if kind in ("thpm", "phpm", "shpm"):
        assert float(ignored) == 0.0
    else:  # soft terms: no contribution from the ignored pixels -> as for the perfect prediction
        assert float(ignored) == pytest.approx(float(term(logits_perfect, y_ign)), abs=1e-6)


def test_ignore_label_completes_the_ground_truth_with_the_prediction():
    # a predicted blob entirely inside the ignore region is not a false positive
    y = _labels()
    y[0, 0, 0:3, 0:6] = 2
    pred_labels = _labels()
    pred_labels[0, 0, 0:3, 0:6] = 1
    logits = _logits_softmax(pred_labels)
    assert float(TopologyTerm("thpm", ignore_label=2)(logits, y)) == 0.0
    y_no_ignore = _labels()
    assert float(TopologyTerm("thpm")(logits, y_no_ignore)) == pytest.approx(1.0, abs=1e-6)
    # and the helper itself
    yy = torch.tensor([[True, False]]).reshape(1, 1, 1, 2)
    pp = torch.tensor([[False, True]]).reshape(1, 1, 1, 2)
    mm = torch.tensor([[True, False]]).reshape(1, 1, 1, 2)
    assert complete_ignored(yy, pp, mm).flatten().tolist() == [True, True]


def test_multi_class_one_vs_rest_mean_over_foreground_classes():
    # class 1: perfect line; class 2: a second line with a gap at p = 0.3 -> mean (0 + 0.49) / 2
    y = _labels()
    y[0, 0, ROW + 3, C0:C1] = 2
    logits = _logits_softmax(y, classes=3)
    logits[0, :, ROW + 3, GAP] = -BIG
    logits[0, 0, ROW + 3, GAP] = 0.0
    logits[0, 2, ROW + 3, GAP] = math.log(0.3 / 0.7)
    assert float(TopologyTerm("thpm")(logits, y)) == pytest.approx(0.49 / 2, abs=1e-6)


def test_region_based_targets_use_sigmoid_per_region_and_the_ignore_channel():
    y = _labels()
    regions = torch.cat([y, torch.zeros_like(y)], 1)  # target: region + ignore channel
    logits = torch.where(y.bool(), BIG, -BIG)
    logits[0, 0, ROW, GAP] = math.log(0.3 / 0.7)
    term = TopologyTerm("shpm", has_regions=True, ignore_label=3)
    assert float(term(logits, regions)) == pytest.approx(0.49, abs=1e-6)
    regions[0, 1, ROW, GAP] = 1  # now the gap pixel is ignored
    assert float(term(logits, regions)) == 0.0
    act, tgt, mask = split_target(logits, regions, has_regions=True, ignore_label=3)
    assert act == "sigmoid" and tgt.shape == logits.shape and mask.shape == (1, 1, H, W)


def test_split_target_errors_quote_what_was_received():
    logits = torch.zeros(1, 2, H, W)
    bad = _labels()
    bad[0, 0, 0, 0] = 5
    with pytest.raises(ValueError, match=r"values \[5\] outside 0\.\.1"):
        split_target(logits, bad, has_regions=False, ignore_label=None)
    with pytest.raises(ValueError, match=r"must be \(N, 1, \*S\) class indices, got shape \(1, 2, 9, 24\)"):
        split_target(logits, torch.zeros(1, 2, H, W), has_regions=False, ignore_label=None)
    with pytest.raises(ValueError, match=r"3 channel\(s\) for 2 region logits plus the ignore channel"):
        split_target(logits, torch.zeros(1, 2, H, W), has_regions=True, ignore_label=4)
    with pytest.raises(KeyError, match="unknown topology term 'hpm'"):
        TopologyTerm("hpm")


def test_compound_loss_deep_supervision_full_resolution_only_and_warmup():
    y = _labels()
    calls = []

    class Base(torch.nn.Module):
        def forward(self, out, tgt):
            calls.append((len(out), len(tgt)))
            return torch.tensor(1.0)

    logits = _logits_softmax(y, gap_prob=0.3)
    low = torch.zeros(1, 2, H // 2, W // 2)  # a lower scale the term must not see
    loss = TopologyCompoundLoss(Base(), TopologyTerm("thpm"), 0.5, deep_supervision=True)
    total = loss([logits, low], [y, torch.zeros(1, 1, H // 2, W // 2)])
    assert calls == [(2, 2)]  # nnU-Net's loss gets every scale
    assert float(total) == pytest.approx(1.0 + 0.5 * 0.49, abs=1e-6)
    assert float(loss.last_term) == pytest.approx(0.49, abs=1e-6)
    loss.active = False  # warm-up
    assert float(loss([logits, low], [y, y[:, :, ::2, ::2]])) == 1.0 and loss.last_term is None
    with pytest.raises(ValueError, match="topology weight must be a non-negative number, got -1"):
        TopologyCompoundLoss(Base(), TopologyTerm("thpm"), -1, deep_supervision=False)


def test_default_weights_follow_the_authors():
    assert {k: v["weight"] for k, v in TERMS.items()} == {
        "shpm": 0.5, "thpm": 0.5, "phpm": 0.5, "cldice": 1.0, "skeleton_recall": 1.0}
