from pathlib import Path

import pytest
import yaml

from toposeg.config import Config, load_config, parse_override, save_config, to_dict


ROOT = Path(__file__).resolve().parents[1]


def test_defaults_follow_the_paper():
    c = load_config()
    # the paper's protocol: SGD, lr 0.01 pre-training / 0.001 fine-tuning, 32-64-128 U-Net, 256^2 patches
    assert c.train.pretrain.lr == 0.01 and c.train.finetune.lr == 0.001
    assert c.train.pretrain.optimizer == "sgd"
    assert (c.train.pretrain.steps, c.train.finetune.steps, c.train.val_every) == (4000, 2000, 250)
    assert c.model.params["features"] == [32, 64, 128] and c.data.patch == (256, 256)


def test_base_yaml_sets_nothing_the_code_defaults_are_the_one_source():
    base = yaml.safe_load((ROOT / "configs" / "base.yaml").read_text())
    assert base in (None, {})
    assert load_config(ROOT / "configs" / "base.yaml") == Config()
    assert "num_workers" not in to_dict(Config())["data"]  # accepted and ignored before: removed
    with pytest.raises(KeyError, match=r"--set data.num_workers=2: unknown key 'data.num_workers' \(data: valid keys"):
        load_config(overrides=["data.num_workers=2"])


def test_every_shipped_config_loads():
    for path in sorted((ROOT / "configs").glob("*/*.yaml")):
        load_config(path)


@pytest.mark.parametrize(
    "override, match",
    [
        ("data.patch=[abc, 12.5]", r"data.patch: expected 2 positive ints \(the model has spatial_dims=2\), got \['abc', 12.5\]"),
        ("data.patch=[64, 64, 64]", r"data.patch: expected 2 positive ints .* got \[64, 64, 64\]"),
        ("inference.overlap=1.5", r"inference.overlap: expected a number in \[0, 1\), got 1.5"),
        ("inference.threshold=1", r"inference.threshold: expected a number in \(0, 1\), got 1.0"),
        ("inference.window=[0, 64]", r"inference.window: expected 2 positive ints"),
        ("train.pretrain.steps=-5", r"train.pretrain.steps: expected an int >= 1, got -5"),
        ("train.finetune.steps=0", r"train.finetune.steps: expected an int >= 1, got 0"),
        ("train.finetune.lr=0", r"train.finetune.lr: expected a number > 0, got 0.0"),
        ("train.pretrain.optimizer=rmsprop", r"train.pretrain.optimizer: expected one of \['adam', 'sgd'\], got 'rmsprop'"),
        ("data.hu_window=[800, -200]", r"data.hu_window: expected \[low, high\] with low < high \(or null\), got \[800, -200\]"),
        ("data.batch_size=0", r"data.batch_size: expected an int >= 1 \(per process\), got 0"),
        ("data.val_fraction=1", r"data.val_fraction: expected a number in \[0, 1\), got 1.0"),
        ("data.folds=1", r"data.folds: expected an int >= 2, got 1"),
        ("data.foreground_oversampling=2", r"data.foreground_oversampling: expected a number in \[0, 1\], got 2.0"),
        ("data.normalization=l2", r"data.normalization: expected one of \['zscore', 'minmax', 'none'\], got 'l2'"),
        ("data.kind=tiff", r"data.kind: expected one of \[.*'isbi2012'.*\], got 'tiff'"),
        ("train.select_metric=betti2_error", r"train.select_metric: expected one of \[.*\], got 'betti2_error'"),
        ("train.val_every=0", r"train.val_every: expected an int >= 1 \(steps\), got 0"),
        ("train.plateau_factor=1.5", r"train.plateau_factor: expected a number in \(0, 1\), got 1.5"),
        ("train.grad_clip=-1", r"train.grad_clip: expected a number > 0 \(or null\), got -1.0"),
        ("train.amp=fp8", r"train.amp: expected one of \['none', 'bf16', 'fp16'\], got 'fp8'"),
        ("train.checkpoint_every=0", r"train.checkpoint_every: expected an int >= 1 \(steps\), got 0"),
        ("model.params.norm=layer", r"model.params \(.*\): norm must be one of \['group', 'batch', 'instance'\], got 'layer'"),
        ("model.params.feature=[8, 16]", r"model.params: unknown parameter\(s\) \['feature'\] for model 'unet'"),
        ("name=pretrain", r"name: expected a non-empty folder name .*, got 'pretrain'"),
        ("name=a/b", r"name: expected a non-empty folder name"),
        ("method.loss=shpn", r"method.loss: unknown loss 'shpn'; valid: \['bce_dice', 'cldice', 'phpm', 'shpm', 'shpm_plus', 'skeleton_recall', 'thpm'\]"),
        ("method.params.lamda=0.5", r"method.params: unknown parameter\(s\) \['lamda'\] for loss 'shpm'; valid: \[.*'lam'"),
    ],
)
def test_every_value_is_validated_at_load_naming_its_key(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml", [override])


def test_loader_hu_window_is_checked_at_load():
    with pytest.raises(ValueError, match=r"data.options.hu_window: expected \[low, high\] with low < high \(or null\), got \[800, -200\]"):
        load_config(ROOT / "configs" / "icas_d" / "shpm.yaml", ["data.options.hu_window=[800, -200]"])


def test_3d_config_accepts_3d_patch_and_betti2():
    c = load_config(ROOT / "configs" / "vessels3d" / "shpm.yaml", ["train.select_metric=betti2_error"])
    assert c.data.patch == (72, 128, 128) and c.model.params["spatial_dims"] == 3


def test_changing_the_loss_resets_the_method_params():
    shpm = load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml")
    assert "lam" in shpm.method.params
    c = load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml", ["method.loss=cldice"])
    assert c.method.loss == "cldice" and c.method.params == {}
    # params given with the new loss are kept (and checked against it)
    c = load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml", ["method.loss=thpm", "method.params.lam=0.2"])
    assert c.method.params["lam"] == 0.2
    with pytest.raises(ValueError, match=r"method.params: unknown parameter\(s\) \['lam'\] for loss 'cldice'"):
        load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml", ["method.loss=cldice", "method.params.lam=0.2"])
    # the same loss named again keeps the file's parameters
    assert load_config(ROOT / "configs" / "isbi2012" / "shpm.yaml", ["method.loss=shpm"]).method.params == shpm.method.params


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
        ("train.finetun.steps=5", KeyError, r"--set train.finetun.steps=5: unknown key 'train.finetun'; did you mean "
                                            r"train.finetune.steps or .* \(train: valid keys: \['pretrain', 'finetune'"),
        ("bogus=1", KeyError, r"--set bogus=1: unknown key 'bogus' \(valid top-level sections: \['name', 'data', "
                              r"'model', 'train', 'method', 'inference'\]\)"),
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


@pytest.mark.parametrize("text, what", [("", r"0 bytes"), ("# only a comment\n\n   # another\n", "only comments and blank lines")])
def test_empty_config_file_is_refused_naming_it(tmp_path, text, what):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"^{path}: config file is empty \({what}\); write {{}} for a config"):
        load_config(path)
    (tmp_path / "child.yaml").write_text("base: empty.yaml\nname: x\n")  # also as a base
    with pytest.raises(ValueError, match=rf"^{path}: config file is empty"):
        load_config(tmp_path / "child.yaml")
    path.write_text("{}  # explicit: every default\n")
    assert load_config(path) == Config()


def test_binary_file_as_config_says_it_is_not_yaml(tmp_path):
    from skimage.io import imsave

    import numpy as np

    png = tmp_path / "label.png"
    imsave(png, np.zeros((8, 8), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match=rf"^{png}: not a YAML/JSON text file \(binary content") as exc:
        load_config(png)
    assert "utf" not in str(exc.value).lower()
    (tmp_path / "nul.yaml").write_bytes(b"name: a\x00b\n")  # valid UTF-8 with a NUL byte: binary too
    with pytest.raises(ValueError, match="not a YAML/JSON text file"):
        load_config(tmp_path / "nul.yaml")


def test_invalid_yaml_and_missing_base_are_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: a\ndata: [unclosed\n")
    with pytest.raises(ValueError) as exc:
        load_config(tmp_path / "bad.yaml")
    assert str(exc.value).startswith(f"{tmp_path / 'bad.yaml'}: invalid YAML at line 3, column 1: ")
    assert "\n" not in str(exc.value)
    (tmp_path / "child.yaml").write_text("base: nothere.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"child.yaml: base nothere.yaml: no such config file"):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "num.yaml").write_text("base: 3\n")
    with pytest.raises(ValueError, match=r"num.yaml: base must be a file name \(relative to this file\), got 3"):
        load_config(tmp_path / "num.yaml")


@pytest.mark.parametrize("override, hint", [
    ("loss.lam=1", "did you mean method.params.lam?"),       # lam: SHPM's lambda (eq. 1)
    ("lam=1", "did you mean method.params.lam?"),
    ("loss=cldice", "did you mean method.loss?"),
    ("method.lam=1", "did you mean method.params.lam?"),
    ("model.features=[8, 16]", "did you mean model.params.features?"),
    ("steps=10", "did you mean train.pretrain.steps or train.finetune.steps?"),
    ("loss.x=1", None),                                      # no loss has x: only the sections
])
def test_unknown_override_key_hints_the_key_meant(override, hint):
    with pytest.raises(KeyError) as exc:
        load_config(overrides=[override])
    msg = exc.value.args[0]
    assert msg.startswith(f"--set {override}: unknown key ")
    if hint is None:
        assert "did you mean" not in msg
        assert msg.endswith("(valid top-level sections: ['name', 'data', 'model', 'train', 'method', 'inference'])")
    else:
        assert hint in msg


def test_override_value_that_is_not_yaml_or_not_a_mapping():
    with pytest.raises(ValueError) as exc:
        load_config(overrides=["data.patch=[1,"])
    assert str(exc.value) == ("--set data.patch=[1,: the value is not valid YAML (line 1, column 4: expected the node "
                              "content, but found '<stream end>'); quote it or close its brackets, e.g. "
                              "data.patch=[128,128]")
    with pytest.raises(ValueError, match=r"^method.params: expected dict, got int 3$"):  # AttributeError before
        load_config(overrides=["method.params=3"])
    # a later override replaces the non-mapping (the last --set wins), no crash
    assert load_config(overrides=["method.params=3", "method.params.lam=0.5"]).method.params == {"lam": 0.5}
