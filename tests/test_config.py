import pytest
import yaml

from toposeg.config import Config, load_config, parse_override, save_config, to_dict


def test_defaults_follow_the_paper():
    c = load_config()
    assert c.train.pretrain.lr == 0.01 and c.train.finetune.lr == 0.001
    assert c.train.pretrain.optimizer == "sgd"


def test_base_chain_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  kind: isbi2012\n  patch: [128, 128]\ntrain:\n  val_every: 50\n")
    (tmp_path / "shpm.yaml").write_text("base: base.yaml\nname: isbi-shpm\nmethod:\n  loss: shpm\n  params: {lam: 0.5, threshold: 0.6}\n")
    c = load_config(tmp_path / "shpm.yaml", ["train.finetune.steps=7", "data.patch=[64, 64]"])
    assert c.name == "isbi-shpm" and c.data.kind == "isbi2012" and c.data.patch == (64, 64)
    assert c.train.val_every == 50 and c.train.finetune.steps == 7
    assert c.train.finetune.lr == 0.001  # a partial section keeps its own defaults
    assert c.method.params == {"lam": 0.5, "threshold": 0.6}


def test_round_trip(tmp_path):
    c = load_config(overrides=["name=x", "train.grad_clip=1.5"])
    path = save_config(c, tmp_path / "resolved.yaml")
    assert load_config(path) == c
    assert yaml.safe_load(path.read_text())["train"]["grad_clip"] == 1.5
    assert to_dict(Config())["data"]["patch"] == [256, 256]


@pytest.mark.parametrize(
    "override, error, match",
    [
        ("train.finetun.steps=5", KeyError, r"train: unknown key\(s\) \['finetun'\]; valid: \['pretrain', 'finetune'"),
        ("bogus=1", KeyError, r"unknown key\(s\) \['bogus'\]"),
        ("train.val_every=abc", ValueError, "train.val_every: expected int, got str 'abc'"),
        ("train.val_every=true", ValueError, "train.val_every: expected int, got bool True"),
        ("data.patch=5", ValueError, "data.patch: expected a list, got 5"),
        ("train.pretrain=3", ValueError, "train.pretrain: expected a mapping, got int 3"),
        ("name", ValueError, "override must look like key.path=value, got 'name'"),
        ("name=", ValueError, "name: may not be null"),
    ],
)
def test_bad_overrides(override, error, match):
    with pytest.raises(error, match=match):
        load_config(overrides=[override])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="a config must be a mapping, got list"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="circular 'base' reference"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_parse_override_types():
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
