"""What the subcommands share: flag definitions, the torch thread rule, checks that run before any
work, and the staged output rule (an output is whole or absent).

Shared flags (one name for one idea): ``--out`` (where results go), ``--device``, ``--seed``,
``--set`` (config overrides, train/cv), ``--label-foreground {nonzero,bright,dark}`` (every
command that reads labels), ``--overwrite`` (every one-shot output command), and the global
``--threads``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union

from toposeg.data.labels import FOREGROUND_RULES

PathLike = Union[str, Path]

# ---------------------------------------------------------------- flags


def image_size(text: str):
    """argparse type for ``--size``: ``"128"`` -> 128, ``"72x128x128"`` -> (72, 128, 128)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be an int or DxHxW / HxW, got {text!r}") from None
    return parts[0] if len(parts) == 1 else tuple(parts)


def add_out(parser: argparse.ArgumentParser, default: Optional[str], help: str = "output folder") -> None:
    parser.add_argument("--out", default=default, required=default is None, help=help)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an existing non-empty output (files and folders of the same name are "
                             "replaced, others kept); without it such an output is refused before any work")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute; auto = cuda when available, else cpu")


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help="random seed")


def add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="config override (repeatable)")


def add_experiment_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that run the training protocol (train, cv)."""
    parser.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic kinds)")
    add_out(parser, "runs")
    parser.add_argument("--seed", default="0", metavar="SEEDS",
                        help="seed(s): one (3), a list (0,1,2) or a range (0-2); each seed changes the network "
                             "initialisation and the patch sampling, not the fold split; runs go to "
                             "OUT/seed{S}/fold{K}/")
    add_device(parser)
    add_set(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out (finished stages are always reused)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


class _Renamed(argparse.Action):
    """A removed flag: using it is an error naming its replacement."""

    def __init__(self, option_strings, dest, replacement: str = "", **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was removed; use {self.replacement}")


def add_label_foreground(parser: argparse.ArgumentParser, what: str = "the ground truth",
                         default_note: str = "default: nonzero") -> None:
    """``--label-foreground {nonzero,bright,dark}`` (default None: the command decides, see
    :func:`resolve_label_foreground`); the old ``--gt-foreground`` is an error naming it."""
    parser.add_argument(
        "--label-foreground", choices=FOREGROUND_RULES, default=None,
        help=f"which value of {what} is the structure: nonzero pixels, the bright or the dark level of a "
             f"two-level mask (0/1, 0/255; ISBI 2012 membranes are dark); {default_note}")
    parser.add_argument("--gt-foreground", action=_Renamed, dest="_removed_gt_foreground",
                        replacement="--label-foreground {nonzero,bright,dark}")


def resolve_label_foreground(flag: Optional[str], *sources: tuple[Optional[str], str]) -> tuple[str, str]:
    """``(rule, where it came from)``: the flag, else the first source that sets one
    (``(value, description)`` pairs, e.g. predict.json, the checkpoint), else ``"nonzero"``."""
    if flag is not None:
        return flag, "--label-foreground"
    for value, where in sources:
        if value is not None:
            if value not in FOREGROUND_RULES:
                raise ValueError(f"{where}: label_foreground must be one of {list(FOREGROUND_RULES)}, got {value!r}")
            return value, where
    return "nonzero", "default"


def warn_foreground_fraction(mask_or_fraction, rule: str, what: str) -> None:
    """Print the >50 % foreground warning (polarity probably inverted) to stderr, if it applies."""
    import sys

    from toposeg.data.labels import foreground_fraction_warning

    text = foreground_fraction_warning(mask_or_fraction, rule, "--label-foreground", what=what)
    if text:
        print(text, file=sys.stderr)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available on this machine")
    return name


# ---------------------------------------------------------------- threads

THREADS_ENV = "TOPOSEG_THREADS"
_THREADS: dict = {}


def cpu_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int) -> int:
    """The CLI's torch intra-op thread count for a machine with ``cores`` cores: 1 on up to 2
    cores (measured: one thread several times faster than two on a shared 2-core machine, where
    OpenMP threads wait for each other), else ``min(cores // 2, 8)`` (half the cores leaves
    room for data loading and other processes; more than 8 rarely pays off for these models)."""
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    return 1 if cores <= 2 else min(cores // 2, 8)


def choose_threads(flag: Optional[int] = None, env: Optional[str] = None, cores: Optional[int] = None) -> tuple[int, str]:
    """``(threads, source)``: ``--threads`` if given, else ``$TOPOSEG_THREADS``, else
    :func:`default_threads` of the machine. Raises ValueError for a value < 1 or not an integer."""
    if flag is not None:
        if flag < 1:
            raise ValueError(f"--threads must be >= 1, got {flag}")
        return flag, "--threads"
    if env is not None and env.strip():
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return value, THREADS_ENV
    cores = cpu_cores() if cores is None else cores
    return default_threads(cores), f"default rule for {cores} cores"


def apply_threads(flag: Optional[int] = None) -> dict:
    """Set torch's intra-op thread count by :func:`choose_threads` (the CLI entry point only;
    library code never sets it) and remember how it was chosen for :func:`thread_settings`."""
    import torch

    n, source = choose_threads(flag, os.environ.get(THREADS_ENV))
    torch.set_num_threads(n)
    _THREADS.clear()
    _THREADS.update(threads=n, source=source)
    return thread_settings()


def thread_settings() -> dict:
    """``{"torch_threads", "chosen_by", "cpu_cores"}`` for run metadata: the thread count torch
    uses now and how it was chosen (``--threads``, ``TOPOSEG_THREADS``, the default rule, or
    torch's own default when the toposeg CLI did not set it)."""
    import torch

    chosen = _THREADS.get("source") if _THREADS.get("threads") == torch.get_num_threads() else None
    return {"torch_threads": torch.get_num_threads(), "chosen_by": chosen or "torch default (not set by the CLI)",
            "cpu_cores": cpu_cores()}


# ---------------------------------------------------------------- inputs checked before work

_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save zip archive, legacy pickle


def check_checkpoint_file(path: PathLike, flag: str = "--checkpoint") -> Path:
    """``path`` if it looks like a torch checkpoint file; a folder, an empty file or a text/YAML
    file is a ValueError naming ``flag`` (before torch reads it)."""
    from toposeg.io import check_readable

    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.pt"))[:3] or sorted(p.glob("*/*.pt"))[:3]
        hint = f" such as {', '.join(str(f) for f in found)}" if found else " (a .pt file written by toposeg train)"
        raise ValueError(f"{flag} {p} is a folder; pass a checkpoint file{hint}")
    if not p.exists():
        raise FileNotFoundError(f"{flag} {p}: no such file")
    check_readable(p)
    with open(p, "rb") as f:
        head = f.read(4)
    if not any(head.startswith(m) for m in _CHECKPOINT_MAGIC):
        kind = "a YAML/text file" if p.suffix.lower() in (".yaml", ".yml", ".json", ".txt") or head.isascii() else \
            "not a torch file"
        raise ValueError(f"{flag} {p} is not a checkpoint ({kind}); pass the .pt file written by toposeg train, "
                         "e.g. runs/seed0/fold0/<config>/final.pt")
    return p


def load_checkpoint_model(path: PathLike, device: str, flag: str = "--checkpoint"):
    """``(model, inference settings or {})`` from a checkpoint written by toposeg train.

    ``payload["inference"]`` (format version 2): window, overlap, normalization, hu_window,
    threshold, label_foreground, spatial_dims, in_channels. Older checkpoints give ``{}``.
    """
    from toposeg.engine.checkpoint import load_checkpoint, load_model

    check_checkpoint_file(path, flag)
    payload = load_checkpoint(path, map_location="cpu")
    inference = payload.get("inference") or {}
    if not isinstance(inference, dict):
        raise ValueError(f"{path}: checkpoint field 'inference' must be a mapping, got {type(inference).__name__}")
    return load_model(path, device), dict(inference)


def model_layout(model) -> tuple[int, int]:
    """(spatial_dims, in_channels) from the model's first convolution."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return (2 if isinstance(m, nn.Conv2d) else 3), m.in_channels
    raise ValueError("cannot tell the model's spatial dims: it has no Conv2d/Conv3d layer")


def window_for(flag: Optional[list], inference: dict, nd: int) -> tuple[tuple[int, ...], str]:
    """Sliding window: ``--window`` (1 or ``nd`` sizes), else the checkpoint's, else 256² / 128³."""
    if flag is not None:
        if len(flag) == 1:
            window, source = (flag[0],) * nd, "--window"
        elif len(flag) == nd:
            window, source = tuple(flag), "--window"
        else:
            raise ValueError(f"--window takes 1 or {nd} sizes for a {nd}D model, got {flag}")
    elif inference.get("window") is not None:
        w = inference["window"]
        window, source = ((int(w),) * nd if isinstance(w, int) else tuple(int(v) for v in w)), "checkpoint"
        if len(window) != nd:
            raise ValueError(f"checkpoint window {w} does not fit a {nd}D model")
    else:
        window, source = ((256,) * 2 if nd == 2 else (128,) * 3), "default"
    if min(window) < 1:
        raise ValueError(f"--window sizes must be >= 1, got {list(window)}")
    return tuple(int(v) for v in window), source


def setting(flag_value, inference: dict, key: str, default, flag: str, *, none_is_a_value: bool = False):
    """``(value, source)``: the flag if given, else ``inference[key]``, else ``default``.
    ``none_is_a_value``: a checkpoint value None is a setting (e.g. no HU window), not "unknown"."""
    if flag_value is not None:
        return flag_value, flag
    if key in inference and (inference[key] is not None or none_is_a_value):
        return inference[key], "checkpoint"
    return default, "default"


def read_input(path: PathLike, flag: str):
    """:func:`toposeg.io.read_array` of a file given by ``flag``; its errors (a folder, a missing,
    empty or unreadable file, an unsupported type) start with the flag: ``--label x: is a folder,
    expected a file (...)``."""
    from toposeg.io import read_array

    try:
        return read_array(path)
    except (ValueError, OSError) as exc:
        raise flagged(exc, flag) from None


def flagged(exc: Exception, flag: str) -> Exception:
    """``exc`` with its message prefixed by ``flag`` (same type for FileNotFoundError and
    IsADirectoryError, else ValueError)."""
    message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    kind = type(exc) if type(exc) in (FileNotFoundError, IsADirectoryError, NotADirectoryError) else ValueError
    return kind(f"{flag} {message}")


# ---------------------------------------------------------------- outputs: whole or absent


def resolved(path: PathLike, flag: str) -> Path:
    """``Path(path).resolve()``; a symbolic link loop on the way is a ValueError naming ``flag``
    (``Path.resolve`` raises RuntimeError on Python < 3.13, OSError after)."""
    path = Path(path)
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise ValueError(f"{flag} {path}: symbolic link loop ({exc}); give a real folder or file name") from None


def check_out_path(out: PathLike, flag: str = "--out") -> Path:
    """``out`` as a Path if it can be an output path at all, else ValueError naming ``flag``:
    an empty name (``--out ""``, which would mean the current folder), a symbolic link loop
    (``ln -s b a; ln -s a b``), or a path under an existing file (``afile/x``: nothing can be
    created there). Runs before any work; what exists at ``out`` itself is left to the caller."""
    if str(out).strip() == "":
        raise ValueError(f"{flag} is empty; give a folder or file name")
    out = Path(out)
    resolved(out, flag)
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {out} lies under {parent}, which is a file; give a folder")
            break
    return out


def check_output(out: PathLike, overwrite: bool, flag: str = "--out", *, file: bool = False) -> Path:
    """Refuse (ValueError) an existing non-empty output folder (or an existing output file) unless
    ``overwrite``; a file where a folder is expected (or the reverse) is always refused, and so
    are the paths :func:`check_out_path` refuses (empty, a link loop, under a file)."""
    out = check_out_path(out, flag)
    if file:
        if out.is_dir():
            raise ValueError(f"{flag} {out} is a folder; expected a file name")
        if out.exists() and not overwrite:
            raise ValueError(f"{flag} {out} already exists; choose another name or pass --overwrite")
        return out
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file; expected a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{flag} {out} already holds files; choose another folder or pass --overwrite")
    return out


def check_apart(out: PathLike, inputs: dict, flag: str = "--out", *, writes: tuple = (), files: bool = False) -> Path:
    """Refuse (ValueError, before any work) an output that would write into an input:

    - ``out`` equal to or inside an input folder (the results would land among the inputs, and a
      later run would read them as inputs),
    - ``out`` equal to an input file (it would be replaced),
    - an input file directly in the folder ``out`` whose name is one of ``writes`` (the names the
      command writes there; it would be replaced).

    - an input file or folder that is, or lies inside, an entry ``out/NAME`` with ``NAME`` one
      of ``writes`` (with ``--overwrite`` that entry is replaced, a folder removed whole),

    and the paths :func:`check_out_path` refuses (empty, a link loop, under a file).

    ``inputs``: ``{flag: path or None}``; paths are compared after resolving symbolic links. An
    input that does not exist is skipped (its reader says "no such file"). ``files``: the inputs
    are files (a folder among them is left to the reader's "is a folder" error). Returns ``out``
    as a Path.
    """
    out = check_out_path(out, flag)
    target = resolved(out, flag)
    for name, value in inputs.items():
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            continue
        source = resolved(path, name)
        replaced = [w for w in writes if source == target / w or source.is_relative_to(target / w)]
        if replaced and not (files and path.is_dir()) and target != source:
            if source == target / replaced[0]:
                raise ValueError(f"{flag} {out}: {name} {path} is in it and has the name of an output "
                                 f"({replaced[0]}); it would be overwritten: choose another folder")
            raise ValueError(f"{flag} {out}: {name} {path} lies inside {out / replaced[0]}, an output this "
                             "command writes (replaced whole); it would be deleted: choose another folder")
        if path.is_dir():
            if files:
                continue
            if target == source:
                raise ValueError(f"{flag} {out} is the {name} folder; the results would be written among the "
                                 f"inputs: choose an output folder outside {name} {path}")
            if target.is_relative_to(source):
                raise ValueError(f"{flag} {out} lies inside the {name} folder {path}; the results would be written "
                                 "among the inputs: choose an output folder outside it")
        elif target == source:
            raise ValueError(f"{flag} {out} is the {name} file; it would be overwritten: choose another name")
    return out


def check_run_folder(out: PathLike, data_root: Optional[PathLike] = None, flag: str = "--out") -> Path:
    """The run folder of ``train``/``cv``, checked before any work (ValueError, quoting both paths):

    - ``out`` is an existing file, or lies under one: the runs need a folder
      (``OUT/seed{S}/fold{K}/<config name>/``); ``out`` or ``data_root`` is empty (``""``);
      ``out`` is a symbolic link loop;
    - ``out`` equals or lies inside ``data_root`` (the dataset is read-only input: runs written
      there would mix with the data, and a dataset reader may take them for cases).

    Unlike :func:`check_output`, an existing non-empty folder is fine (finished runs are reused).
    Returns ``out`` as a Path.
    """
    out = check_out_path(out, flag)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file; give a folder (runs are written to "
                         f"{flag} FOLDER/seed{{S}}/fold{{K}}/<config name>/)")
    if data_root is not None:
        if str(data_root).strip() == "":
            raise ValueError("--data-root is empty; give the dataset folder")
        check_apart(out, {"--data-root": data_root})
    return out


def same_input_warning(pred: tuple[str, Optional[PathLike]], gt: tuple[str, Optional[PathLike]]) -> Optional[str]:
    """The warning text when a prediction and a ground truth input (``(flag, path)`` each) are
    the same file or folder after resolving symbolic links, else None (also when either is None
    or does not exist). Scoring a mask against itself gives perfect scores: almost surely a
    mistake, but not refused (a self-comparison is a legitimate sanity check)."""
    (flag_p, p), (flag_g, g) = pred, gt
    if p is None or g is None:
        return None
    pp, pg = Path(p), Path(g)
    if not (pp.exists() and pg.exists()) or pp.resolve() != pg.resolve():
        return None
    kind = "folder" if pp.is_dir() else "file"
    shown = f"{flag_p} {p} and {flag_g} {g}" if str(p) != str(g) else f"{flag_p} and {flag_g} ({p})"
    return (f"warning: {shown} are the same {kind}: the prediction is scored against itself, so perfect scores "
            f"are expected; probably a mistake (give the predictions to {flag_p} and the ground truth to "
            f"{flag_g}); running anyway")


def warn_same_input(pred: tuple[str, Optional[PathLike]], gt: tuple[str, Optional[PathLike]]) -> bool:
    """Print :func:`same_input_warning` to stderr if it applies; True when it did."""
    import sys

    text = same_input_warning(pred, gt)
    if text:
        print(text, file=sys.stderr)
    return text is not None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


@contextlib.contextmanager
def staged_output(out: PathLike, overwrite: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield a temporary sibling folder of ``out``; on success its entries are moved into ``out``
    (``out`` itself is created by one rename when it does not exist), on any error it is deleted
    together with parent folders it created — so the output is whole or absent.

    With ``overwrite`` an existing ``out`` keeps entries the command does not write; each written
    file or folder replaces the one of the same name.
    """
    out = check_output(out, overwrite, flag)
    created = _missing_parents(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        check_output(out, overwrite, flag)  # nothing appeared meanwhile
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if not out.exists():
            os.replace(tmp, out)
            return
        for entry in sorted(tmp.iterdir()):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for parent in created:  # nearest first
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_file(out: PathLike, overwrite: bool, flag: str = "--out") -> Iterator[Path]:
    """Like :func:`staged_output` for one file: yields a temporary sibling path with the same
    extension, renamed over ``out`` on success and deleted on error."""
    out = check_output(out, overwrite, flag, file=True)
    created = _missing_parents(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.partial-", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for parent in created:
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
