"""What toposeg recommends (toposeg.recommend) and the configs under configs/recommended/ agree."""

from pathlib import Path

import pytest

from toposeg.config import load_config
from toposeg.losses import LOSSES, build_loss
from toposeg.recommend import DEFAULT, RECOMMENDED, recommended

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "recommended"


def test_every_recommendation_builds_and_says_why():
    for rec in [DEFAULT, *RECOMMENDED.values()]:
        assert rec.loss in LOSSES
        build_loss(rec.loss, **rec.params)
        assert len(rec.evidence) > 40  # a sentence, not a placeholder


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_recommended_configs_train_the_recommended_loss(path):
    cfg = load_config(path)
    rec = recommended(cfg.data.kind)
    assert cfg.method.loss == rec.loss
    assert {k: v for k, v in cfg.method.params.items() if k in rec.params} == rec.params


def test_recommended_rejects_a_non_string_kind():
    assert recommended("no-such-kind") is DEFAULT
    with pytest.raises(TypeError, match="kind must be a dataset kind name"):
        recommended(3)
