import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toposeg.cli import build_parser, error_message, main
from toposeg.commands import COMMANDS
from toposeg.commands._common import choose_threads, default_threads

PLANNED = ["demo", "synth", "train", "predict", "evaluate", "cv", "bench", "mine", "graph", "render", "nnunet"]
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "toposeg"


def run_cli(*args, env=None):
    """The installed console script, as a user runs it: (exit status, stdout, stderr)."""
    full_env = {**os.environ, "TOPOSEG_THREADS": "1", **(env or {})}
    p = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=full_env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def one_error_line(err: str, command: str) -> str:
    """The stderr of a refused command: exactly one line ``toposeg CMD: error: ...``, no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"toposeg {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_help_lists_planned_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in PLANNED:
        assert name in out
    assert set(PLANNED) <= set(COMMANDS)


def test_every_command_has_help_without_repeated_or_empty_defaults(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "(default: None)" not in text and "(default: False)" not in text, name
        # a help text that already speaks of its default gets no second "(default: ...)"
        for chunk in text.split("--")[1:]:
            assert chunk.lower().count("default") <= 1 or "(default:" not in chunk, (name, chunk)


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: toposeg" in capsys.readouterr().out


def test_thread_rule():
    # measured on the 2-core development machine: one thread several times faster than two
    assert [default_threads(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [1, 1, 1, 2, 4, 8, 8]
    assert choose_threads(3, "5", cores=16) == (3, "--threads")
    assert choose_threads(None, "5", cores=16) == (5, "TOPOSEG_THREADS")
    assert choose_threads(None, None, cores=16) == (8, "default rule for 16 cores")
    with pytest.raises(ValueError, match="--threads must be >= 1, got 0"):
        choose_threads(0, None)
    with pytest.raises(ValueError, match="TOPOSEG_THREADS must be a positive integer, got 'two'"):
        choose_threads(None, "two")


def test_threads_flag_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--threads", "3", "synth", "vessels2d"]).threads == 3
    assert parser.parse_args(["synth", "vessels2d", "--threads", "2"]).threads == 2
    assert parser.parse_args(["synth", "vessels2d"]).threads is None


def test_error_messages_are_one_clean_line():
    assert error_message(KeyError("unknown loss 'shpn'; valid: ['shpm']")) == "unknown loss 'shpn'; valid: ['shpm']"
    missing = ModuleNotFoundError("No module named 'skan'", name="skan")
    assert error_message(missing) == "this feature needs skan, which is not installed: pip install 'toposeg[graph]'"
    assert error_message(ModuleNotFoundError("No module named 'foo'", name="foo")) is None  # a bug: traceback
    assert error_message(IsADirectoryError(21, "Is a directory", "configs")) == "configs: is a folder, expected a file"
    assert error_message(RuntimeError("boom")) is None


# ---------------------------------------------------------------- the real console script


def test_console_script_user_errors(tmp_path):
    """Each mistake is refused before any work with one `error:` line and exit status 2."""
    (tmp_path / "empty.png").write_bytes(b"")
    rc, _, err = run_cli("mine", "--image", tmp_path / "empty.png", "--label", tmp_path / "empty.png",
                         "--prediction", tmp_path / "empty.png", "--out", tmp_path / "f.png")
    assert rc == 2 and "empty.png: file is empty (0 bytes)" in one_error_line(err, "mine")
    assert "imageio" not in err and not (tmp_path / "f.png").exists()

    # a config folder given as the config file, and a real-data config without --data-root
    rc, _, err = run_cli("train", ROOT / "configs" / "isbi2012_quick", "--out", tmp_path / "runs")
    assert rc == 2 and "is a folder; expected a YAML config file" in one_error_line(err, "train")
    rc, _, err = run_cli("train", ROOT / "configs" / "isbi2012_quick" / "unet.yaml", "--out", tmp_path / "runs")
    line = one_error_line(err, "train")
    assert rc == 2 and "--data-root is required" in line and "'isbi2012'" in line and "open_dataset" not in line
    assert not (tmp_path / "runs").exists()

    # a YAML file and a folder given as the checkpoint
    (tmp_path / "img.npy").write_bytes(b"")
    np.save(tmp_path / "img.npy", np.zeros((8, 8), np.float32))
    rc, _, err = run_cli("predict", "--checkpoint", ROOT / "configs" / "base.yaml", "--input", tmp_path / "img.npy",
                         "--out", tmp_path / "p")
    line = one_error_line(err, "predict")
    assert rc == 2 and "base.yaml is not a checkpoint (a YAML/text file)" in line and "weights_only" not in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pt").write_bytes(b"PK\x03\x04")
    rc, _, err = run_cli("predict", "--checkpoint", tmp_path / "run", "--input", tmp_path / "img.npy",
                         "--out", tmp_path / "p")
    assert rc == 2 and "is a folder; pass a checkpoint file such as" in one_error_line(err, "predict")
    assert "best.pt" in err and not (tmp_path / "p").exists()

    # the renamed option
    rc, _, err = run_cli("evaluate", "--pred", tmp_path, "--gt", tmp_path, "--gt-foreground", "dark")
    assert rc == 2 and "--gt-foreground was removed; use --label-foreground {nonzero,bright,dark}" in err


def test_console_script_missing_extra(tmp_path):
    """A missing optional dependency ends in one line with the pip command, not a traceback."""
    blocker = tmp_path / "block" / "skan"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'skan'\", name='skan')\n")
    mask = np.zeros((16, 16), np.uint8)
    mask[8, 2:14] = 1
    np.save(tmp_path / "m.npy", mask)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), os.environ.get("PYTHONPATH", "")])}
    rc, _, err = run_cli("graph", "--gt", tmp_path / "m.npy", "--pred", tmp_path / "m.npy", "--out", tmp_path / "g",
                         env=env)
    assert rc == 2 and "pip install 'toposeg[graph]'" in one_error_line(err, "graph")
    assert not (tmp_path / "g").exists()


def test_threads_recorded_in_run_metadata(tmp_path):
    m = np.zeros((6, 6), np.uint8)
    m[2, 1:5] = 1
    (tmp_path / "p").mkdir()
    np.save(tmp_path / "p" / "a.npy", m)
    rc, out, err = run_cli("evaluate", "--pred", tmp_path / "p", "--gt", tmp_path / "p", "--out", tmp_path / "e",
                           "--threads", "2", "--no-progress")
    assert rc == 0, err
    threads = json.loads((tmp_path / "e" / "summary.json").read_text())["threads"]
    assert threads["torch_threads"] == 2 and threads["chosen_by"] == "--threads"


def test_demo_quick_end_to_end(tmp_path, capsys):
    assert main(["demo", "--quick", "--no-progress", "--recommended", "cldice", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'table.md'}" in out
    results = json.loads((tmp_path / "results.json").read_text())
    methods = ["U-Net (pre-trained)", "U-Net, fine-tuned BCE+Dice", "U-Net + SHPM (paper)",
               "U-Net + cldice (recommended)"]
    assert list(results["summary"]) == methods
    for method in methods:
        assert set(results["summary"][method]) >= {"dice", "iou", "betti0_error", "betti1_error"}
        assert len(results["per_case"][method]) == results["config"]["n_test"]
    assert {k: results["recommended"][k] for k in ("loss", "params", "source", "row")} == {
        "loss": "cldice", "params": {}, "source": "--recommended", "row": "U-Net + cldice (recommended)"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "finetune_bce_dice", "finetune_recommended", "finetune_shpm", "pretrain"]
    table = (tmp_path / "table.md").read_text()
    assert "| Method | Dice ↑ | IoU ↑ | β0 error ↓ | β1 error ↓ |" in table
    assert "\nRecommended for vessels2d: `cldice`, the row “U-Net + cldice (recommended)”" in table
    assert "Evidence: chosen by the user (--recommended cldice, the loss's default parameters)" in table
    from skimage.io import imread

    fig = imread(tmp_path / "figure.png")  # 2 cases x (image, truth, 3 predictions, 2 hard-pixel overlays)
    assert fig.ndim == 3 and fig.shape[0] > 100 and fig.shape[1] > 1500


def test_demo_bad_options(tmp_path, capsys):
    # there is no --patch option: the message names what the user can change (the patch sizes are the
    # documented 64 px, and 32 px with --quick)
    assert main(["demo", "--size", "32", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err == ("toposeg demo: error: --size must be at least the patch size 64, got "
                                       "--size 32 (--quick uses 64 px images with 32 px patches)\n")
    assert main(["demo", "--quick", "--size", "8", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == ("toposeg demo: error: --size must be at least the patch size 32, got "
                                       "--size 8 (--quick uses 64 px images with 32 px patches)\n")
    # an explicit --n-test 0 is no longer replaced by --quick's 2: it is refused, naming the option
    assert main(["demo", "--quick", "--n-test", "0", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == "toposeg demo: error: --n-test must be >= 1, got 0\n"
    assert main(["demo", "--quick", "--finetune-steps", "-1", "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == "toposeg demo: error: --finetune-steps must be >= 0, got -1\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, expected", [
    # no flags: DemoConfig's documented defaults
    ([], dict(size=128, n_train=24, n_test=8, pretrain_steps=500, finetune_steps=250, patch=64, batch_size=8,
              n_figure=3)),
    # --quick alone: the values its help lists
    (["--quick"], dict(size=64, n_train=4, n_test=2, pretrain_steps=4, finetune_steps=2, patch=32, batch_size=2,
                       n_figure=2)),
    # explicit flags win over --quick, in either order; what the user did not give stays quick
    (["--quick", "--finetune-steps", "0", "--size", "96", "--n-train", "3", "--n-test", "1", "--pretrain-steps",
      "0"], dict(size=96, n_train=3, n_test=1, pretrain_steps=0, finetune_steps=0, patch=32, batch_size=2,
                 n_figure=2)),
    (["--pretrain-steps", "7", "--quick"], dict(size=64, n_train=4, n_test=2, pretrain_steps=7, finetune_steps=2,
                                                patch=32, batch_size=2, n_figure=2)),
    # an explicit flag without --quick changes only itself
    (["--finetune-steps", "0"], dict(size=128, n_train=24, n_test=8, pretrain_steps=500, finetune_steps=0,
                                     patch=64, batch_size=8, n_figure=3)),
])
def test_demo_explicit_options_win_over_quick(argv, expected, tmp_path, monkeypatch):
    import toposeg.engine.demo as demo_engine

    seen = []
    monkeypatch.setattr(demo_engine, "run_demo", lambda cfg, out: seen.append(cfg))  # the command imports it late
    assert main(["demo", *argv, "--no-progress", "--out", str(tmp_path / "d")]) == 0
    (cfg,) = seen
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_demo_quick_with_explicit_finetune_steps_end_to_end(tmp_path):
    # the attack-pass example: `demo --quick --finetune-steps 3` used to run 2 fine-tuning steps
    out = tmp_path / "d"
    assert main(["demo", "--quick", "--finetune-steps", "3", "--n-test", "1", "--no-recommended", "--no-progress",
                 "--out", str(out)]) == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["finetune_steps"], config["n_test"], config["pretrain_steps"], config["size"]) == (3, 1, 4, 64)
    for stage in ("finetune_bce_dice", "finetune_shpm"):  # each fine-tuning logged exactly steps 1, 2, 3
        log = [json.loads(line) for line in (out / stage / "log.jsonl").read_text().splitlines() if line.strip()]
        assert [row["step"] for row in log if "loss" in row] == [1, 2, 3]
    assert len(json.loads((out / "results.json").read_text())["per_case"]["U-Net + SHPM (paper)"]) == 1


def test_demo_rejects_an_unknown_recommended_loss_before_any_work(tmp_path, capsys):
    assert main(["demo", "--quick", "--recommended", "dice", "--out", str(tmp_path / "d")]) == 2
    from toposeg.losses import LOSSES

    err = capsys.readouterr().err  # the registry's names, however many it has (at least these)
    assert err == ("toposeg demo: error: unknown loss 'dice' for the recommended method (--recommended); "
                   f"valid: {sorted(LOSSES)}\n")
    assert {"bce_dice", "cldice", "shpm", "skeleton_recall"} <= set(LOSSES)
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--recommended", "cldice", "--no-recommended", "--out", str(tmp_path / "d")])
    assert exit_.value.code == 2
    assert "not allowed with argument --recommended" in capsys.readouterr().err


def test_staged_output_is_whole_or_absent(tmp_path):
    from toposeg.commands._common import staged_output, staged_file

    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError, match="midway"):
        with staged_output(out, overwrite=False) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("midway")
    assert list(tmp_path.iterdir()) == []  # no output, no temporary folder, no created parents
    with staged_output(out, overwrite=False) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "old.txt").write_text("1")
        (tmp / "f.txt").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["f.txt", "sub"]
    (out / "user.txt").write_text("keep")
    with pytest.raises(ValueError, match="already holds files; choose another folder or pass --overwrite"):
        with staged_output(out, overwrite=False):
            pass
    with staged_output(out, overwrite=True) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("2")
        (tmp / "f.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["f.txt", "sub", "user.txt"]
    assert [p.name for p in (out / "sub").iterdir()] == ["new.txt"]  # a written folder replaces the old one whole
    assert (out / "f.txt").read_text() == "2" and (out / "user.txt").read_text() == "keep"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]

    fig = tmp_path / "x" / "fig.png"
    with pytest.raises(RuntimeError):
        with staged_file(fig, overwrite=False) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("midway")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="is a folder; expected a file name"):
        with staged_file(out, overwrite=True):
            pass


def test_a_file_where_a_folder_is_expected(tmp_path, capsys):
    (tmp_path / "data.png").write_bytes(b"x")
    config = ROOT / "configs" / "isbi2012_quick" / "unet.yaml"
    assert main(["train", str(config), "--data-root", str(tmp_path / "data.png"), "--out", str(tmp_path / "r")]) == 2
    assert "--data-root " + str(tmp_path / "data.png") + " is a file; expected the dataset folder" in \
        capsys.readouterr().err
    assert main(["evaluate", "--pred", str(tmp_path / "data.png"), "--gt", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "data.png: is a file, expected a folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()
