"""`toposeg render`: surface meshes of 3D masks and a components panel (the paper's Fig. 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

from toposeg.commands._common import add_out

HELP = "Export 3D masks as meshes (PLY/OBJ/STL) and draw a comparison panel with coloured components."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground-truth 3D mask (nii[.gz], npy, tif)")
    parser.add_argument("--pred", action="append", required=True, help="predicted 3D mask (repeatable)")
    parser.add_argument("--name", action="append", default=None,
                        help="label of each --pred, in order; file names when omitted")
    parser.add_argument("--format", default="ply", choices=["ply", "obj", "stl"], help="mesh file format")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("DZ", "DY", "DX"),
                        help="voxel size written into the meshes")
    parser.add_argument("--sigma", type=float, default=0.0, help="Gaussian smoothing before meshing (voxels)")
    parser.add_argument("--axes", type=int, nargs="+", default=[0], choices=[0, 1, 2],
                        help="projection axes drawn in the panel")
    parser.add_argument("--shaded", action="store_true", help="add shaded surface renderings to the panel")
    parser.add_argument("--threshold", type=float, default=0.5, help="binarise probability maps at this value")
    add_out(parser, "results/render")


def run(args: argparse.Namespace) -> int:
    import json

    from toposeg.commands.graph import load_mask
    from toposeg.io import stem
    from toposeg.reports.mesh import colour_components, component_panel, mask_to_mesh, save_mesh

    names = args.name or []
    if names and len(names) != len(args.pred):
        raise ValueError(f"give one --name per --pred: got {len(names)} names for {len(args.pred)} predictions")
    gt = load_mask(args.gt, threshold=args.threshold, name="--gt")
    if gt.ndim != 3:
        raise ValueError(f"--gt {args.gt}: render needs 3D masks (D, H, W), got shape {gt.shape}")
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
        files[key] = f"pred{i + 1}_{stem(path)}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for key, vol in vols.items():
        _, n = colour_components(vol)
        entry = {"components": n, "voxels": int(vol.sum())}
        if vol.any():
            mesh = mask_to_mesh(vol, spacing=tuple(args.spacing), sigma=args.sigma)
            target = save_mesh(mesh, out / f"{files[key]}.{args.format}")
            entry.update(mesh=target.name, vertices=len(mesh.vertices), faces=len(mesh.faces),
                         euler_characteristic=mesh.euler_characteristic)
            print(f"{key}: {n} components, {len(mesh.vertices)} vertices, {len(mesh.faces)} faces -> {target}")
        else:
            print(f"{key}: empty mask, no mesh written")
        summary[key] = entry
    panel = component_panel(gt, {k: v for k, v in vols.items() if k != "ground truth"}, out / "panel.png",
                            axes=args.axes, shaded=args.shaded)
    (out / "render.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {panel} and {out / 'render.json'}")
    return 0
