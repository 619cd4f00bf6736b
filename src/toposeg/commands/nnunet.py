"""`toposeg nnunet`: use toposeg from nnU-Net v2 (trainer folder, dataset conversion, evaluation).

* ``toposeg nnunet trainer-dir`` prints the folder for ``nnUNet_extTrainer``.
* ``toposeg nnunet convert --kind KIND [--data-root ROOT] --out nnUNet_raw/DatasetXXX_Name``
  writes any ``toposeg.data.open_dataset`` kind in nnU-Net's raw format.
* ``toposeg nnunet evaluate --pred DIR --gt DIR`` scores nnU-Net label-map predictions per case
  and per class (topology metrics), excluding the ignore label (see docs/nnunet.md); an alias of
  ``toposeg evaluate --nnunet`` (same code, same outputs).
"""

from __future__ import annotations

import argparse
import sys

from toposeg.commands._common import image_size

HELP = "nnU-Net v2: trainer folder for nnUNet_extTrainer, dataset conversion, per-class evaluation."

_CONNECTIVITIES = (4, 8, 6, 26)


def configure(parser: argparse.ArgumentParser) -> None:
    from toposeg.data import DATASETS

    sub = parser.add_subparsers(dest="nnunet_command", metavar="ACTION")
    p = sub.add_parser("trainer-dir", help="print the folder to put in nnUNet_extTrainer",
                       description="Print the folder to export as nnUNet_extTrainer, e.g. "
                                   "export nnUNet_extTrainer=$(toposeg nnunet trainer-dir)")
    p.set_defaults(_nnunet=_trainer_dir)

    p = sub.add_parser("convert", help="write a toposeg dataset in nnU-Net's raw format",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Write a dataset (any --kind of toposeg.data.open_dataset) as "
                                   "nnUNet_raw/DatasetXXX_Name: dataset.json, imagesTr/, labelsTr/.")
    p.add_argument("--kind", required=True, choices=sorted(DATASETS), help="dataset kind")
    p.add_argument("--data-root", default=None, help="dataset folder (not for synthetic kinds)")
    p.add_argument("--out", required=True,
                   help="DatasetXXX_Name folder (e.g. $nnUNet_raw/Dataset501_Vessels), or a parent folder "
                        "together with --id and --name")
    p.add_argument("--id", type=int, default=None, help="dataset id 1..999 (with --name, when --out is a parent)")
    p.add_argument("--name", default=None, help="dataset name (letters, digits, _ and -)")
    p.add_argument("--label-name", default=None, help="name of label 1 in dataset.json (default: by kind)")
    p.add_argument("--file-ending", default="auto", choices=["auto", ".png", ".tif", ".nii.gz"],
                   help="auto: 2D .png for 8-bit integer images else .tif (float32), 3D .nii.gz")
    p.add_argument("--n", type=int, default=None, help="synthetic kinds: number of cases (default 16)")
    p.add_argument("--size", type=image_size, default=None, help="synthetic kinds: side or DxHxW / HxW")
    p.add_argument("--seed", type=int, default=None, help="synthetic kinds: seed")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder (the whole folder: files in it that convert "
                        "does not write are deleted)")
    p.set_defaults(_nnunet=_convert)

    p = sub.add_parser("evaluate", help="per-case, per-class topology metrics of nnU-Net predictions",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Score nnU-Net label-map predictions (0..K) per case and per foreground "
                                   "class; voxels under the ignore label take the prediction as ground truth. "
                                   "Same as toposeg evaluate --nnunet.")
    p.add_argument("--pred", required=True, metavar="DIR", help="nnU-Net prediction folder")
    p.add_argument("--gt", required=True, metavar="DIR", help="ground-truth folder (e.g. labelsTs)")
    p.add_argument("--dataset-json", default=None,
                   help="dataset.json (default: the one in --pred, else the one above --gt)")
    p.add_argument("--connectivity", type=int, default=None, choices=_CONNECTIVITIES,
                   help="foreground connectivity; default 8 (2D) / 26 (3D), background dual")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write per_case.csv, summary.json (per-class means) and summary.md there")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.set_defaults(_nnunet=_evaluate)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "_nnunet", None)
    if action is None:
        print("toposeg nnunet: choose an action: trainer-dir, convert, evaluate (see toposeg nnunet -h)",
              file=sys.stderr)
        return 2
    return action(args)


def _trainer_dir(args: argparse.Namespace) -> int:
    from toposeg.nnunet import trainer_dir

    print(trainer_dir())
    return 0


def _convert(args: argparse.Namespace) -> int:
    from toposeg.commands._common import check_apart
    from toposeg.data import SYNTHETIC, open_dataset
    from toposeg.nnunet.convert import LABEL_NAMES, check_convert_output, convert_dataset, dataset_folder

    options = {}
    synthetic_flags = {"n": args.n, "size": args.size, "seed": args.seed}
    if args.kind in SYNTHETIC:
        options = {k: v for k, v in synthetic_flags.items() if v is not None}
        if options.get("n", 1) < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
    else:
        given = [f"--{k}" for k, v in synthetic_flags.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to synthetic kinds, not --kind {args.kind}")
    out = dataset_folder(args.out, args.id, args.name)
    check_apart(out, {"--data-root": args.data_root})  # the dataset is read-only input: before any work
    check_convert_output(out, args.overwrite, args.data_root)  # --overwrite replaces the whole folder
    cases = open_dataset(args.kind, args.data_root, **options)
    label_name = args.label_name or LABEL_NAMES.get(args.kind, "foreground")
    source = args.kind + (f" {args.data_root}" if args.data_root else f" {options}" if options else "")
    convert_dataset(cases, out, label_name=label_name, file_ending=args.file_ending, overwrite=args.overwrite,
                    description=f"converted by toposeg from {source}")
    print(f"wrote {len(cases)} cases to {out} (dataset.json, imagesTr/, labelsTr/); next: "
          f"nnUNetv2_plan_and_preprocess -d {int(out.name[7:10])} --verify_dataset_integrity")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Alias of ``toposeg evaluate --nnunet`` (one code path: :func:`toposeg.commands.evaluate.run_nnunet`)."""
    from toposeg.commands.evaluate import run_nnunet

    return run_nnunet(args.pred, args.gt, args.out, overwrite=args.overwrite, dataset_json=args.dataset_json,
                      connectivity=args.connectivity)
