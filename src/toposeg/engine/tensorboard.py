"""Optional TensorBoard logging of a stage's scalars (the same values as its ``log.jsonl``).

Enabled by ``train.tensorboard: true``; needs the ``tensorboard`` package
(``pip install 'toposeg[tensorboard]'``). Event files go to ``<stage folder>/tensorboard/``:
``tensorboard --logdir runs/`` shows every seed, fold, method and stage side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional


class ScalarLog:
    """Writes one ``log.jsonl`` entry as TensorBoard scalars: ``loss``, ``lr``, ``val/<metric>``,
    ``hpm/<key>``; a no-op when ``enabled`` is false."""

    def __init__(self, folder: Path, *, enabled: bool):
        self.writer: Optional[Any] = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError("train.tensorboard needs the tensorboard package: pip install 'toposeg[tensorboard]'") from exc
        self.writer = SummaryWriter(log_dir=str(Path(folder) / "tensorboard"))

    def write(self, entry: Mapping[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(entry["step"])
        for key in ("loss", "lr"):
            self.writer.add_scalar(key, float(entry[key]), step)
        for group in ("val", "hpm"):
            for key, value in (entry.get(group) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{group}/{key}", float(value), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
