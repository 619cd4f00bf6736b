"""``torchrun`` support: initialise the process group when launched with several processes."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch


@contextlib.contextmanager
def distributed_session(device: str) -> Iterator[str]:
    """Yields the device for this process. Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the
    process group (NCCL on CUDA, gloo on CPU), picks ``cuda:LOCAL_RANK``, and leaves the group at
    the end. Only rank 0 writes files (see :func:`toposeg.engine.protocol.run_fold`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield device
        return
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    torch.distributed.init_process_group(backend)
    try:
        yield device
    finally:
        torch.distributed.destroy_process_group()
