"""Subcommands of the ``toposeg`` CLI. Each module defines ``HELP``, ``configure(parser)`` and
``run(args) -> int``; modules import heavy dependencies inside ``run`` only."""

from types import ModuleType

from toposeg.commands import bench, cv, demo, evaluate, graph, mine, nnunet, predict, render, synth, train

COMMANDS: dict[str, ModuleType] = {
    "demo": demo,
    "synth": synth,
    "train": train,
    "predict": predict,
    "evaluate": evaluate,
    "cv": cv,
    "bench": bench,
    "mine": mine,
    "graph": graph,
    "render": render,
    "nnunet": nnunet,
}
