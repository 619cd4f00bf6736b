"""`toposeg render`: surface meshes of 3D masks and a components panel (the paper's Fig. 6).

Meshes are named ``gt.<fmt>`` and ``pred<i>_<name>.<fmt>`` (``<name>``: the ``--name`` of that
prediction, else its file name). The ground truth is read by ``--label-foreground``. All inputs
are checked before any work (an ``--out`` that is one of the input files is refused); the outputs
appear all at once or not at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import re

from toposeg.commands._common import add_label_foreground, add_out, add_overwrite

HELP = "Export 3D masks as meshes (PLY/OBJ/STL) and draw a comparison panel with coloured components."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground-truth 3D mask (nii[.gz], npy, tif)")
    add_label_foreground(parser, "--gt", "default: label_foreground of predict.json next to the first --pred "
                                         "(toposeg predict output), else nonzero")
    parser.add_argument("--pred", action="append", required=True, help="predicted 3D mask (repeatable)")
    parser.add_argument("--name", action="append", default=None,
                        help="label of each --pred, in order (panel titles, render.json keys and mesh file "
                             "names pred<i>_<name>); file names when omitted")
    parser.add_argument("--format", default="ply", choices=["ply", "obj", "stl"], help="mesh file format")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("DZ", "DY", "DX"),
                        help="voxel size written into the meshes")
    parser.add_argument("--sigma", type=float, default=0.0, help="Gaussian smoothing before meshing (voxels)")
    parser.add_argument("--axes", type=int, nargs="+", default=[0], choices=[0, 1, 2],
                        help="projection axes drawn in the panel")
    parser.add_argument("--shaded", action="store_true", help="add shaded surface renderings to the panel")
    parser.add_argument("--threshold", type=float, default=0.5, help="binarise probability maps at this value")
    add_out(parser, "results/render")
    add_overwrite(parser)


def file_part(name: str) -> str:
    """``name`` made safe for a file name: characters other than letters, digits, ``.``, ``_``,
    ``+`` and ``-`` become ``_`` (``"U-Net + SHPM"`` -> ``"U-Net_+_SHPM"``)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name).strip("._") or "pred"


def run(args: argparse.Namespace) -> int:
    import json

    from toposeg.commands._common import (check_apart, check_output, staged_output, thread_settings,
                                          warn_foreground_fraction)
    from toposeg.commands.graph import gt_rule, load_gt, load_mask
    from toposeg.io import stem
    from toposeg.reports.mesh import colour_components, component_panel, mask_to_mesh, save_mesh

    names = args.name or []
    if names and len(names) != len(args.pred):
        raise ValueError(f"give one --name per --pred: got {len(names)} names for {len(args.pred)} predictions")
    for i, path in enumerate([args.gt, *args.pred]):  # an input would be replaced: refuse before any work
        check_apart(args.out, {"--gt" if i == 0 else "--pred": path}, writes=("panel.png", "render.json"), files=True)
    check_output(args.out, args.overwrite)
    rule, rule_from = gt_rule(args.label_foreground, args.pred[0])
    gt = load_gt(args.gt, rule)
    if gt.ndim != 3:
        raise ValueError(f"--gt {args.gt}: render needs 3D masks (D, H, W), got shape {gt.shape}")
    warn_foreground_fraction(gt, rule, f"ground truth {args.gt}")
    vols = {"ground truth": gt}
    files = {"ground truth": "gt"}
    for i, path in enumerate(args.pred):
        mask = load_mask(path, threshold=args.threshold, name="--pred")
        if mask.shape != gt.shape:
            raise ValueError(f"--pred {path} has shape {mask.shape}, --gt has {gt.shape}")
        key = names[i] if names else stem(path)
        if key in vols:
            key = f"{key} ({i + 1})"
        vols[key] = mask
        files[key] = f"pred{i + 1}_{file_part(names[i]) if names else stem(path)}"
    out = Path(args.out)
    summary = {"label_foreground": rule, "label_foreground_from": rule_from, "threads": thread_settings(),
               "volumes": {}}
    with staged_output(out, args.overwrite) as tmp:
        for key, vol in vols.items():
            _, n = colour_components(vol)
            entry = {"components": n, "voxels": int(vol.sum())}
            if vol.any():
                mesh = mask_to_mesh(vol, spacing=tuple(args.spacing), sigma=args.sigma)
                target = save_mesh(mesh, tmp / f"{files[key]}.{args.format}")
                entry.update(mesh=target.name, vertices=len(mesh.vertices), faces=len(mesh.faces),
                             euler_characteristic=mesh.euler_characteristic)
                print(f"{key}: {n} components, {len(mesh.vertices)} vertices, {len(mesh.faces)} faces -> "
                      f"{out / target.name}")
            else:
                print(f"{key}: empty mask, no mesh written")
            summary["volumes"][key] = entry
        component_panel(gt, {k: v for k, v in vols.items() if k != "ground truth"}, tmp / "panel.png",
                        axes=args.axes, shaded=args.shaded)
        (tmp / "render.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / 'panel.png'} and {out / 'render.json'}")
    return 0
