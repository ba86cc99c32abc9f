"""Training progress on stderr: a tqdm bar on a terminal, plain lines otherwise (log files).

Plain mode prints one line every ``every`` optimiser steps and one summary line per epoch, so a
SLURM or Snakemake log shows progress without carriage-return noise. Only rank 0 reports.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Progress of one epoch: ``update(loss, images_per_s)`` after each step, ``close()`` at its end."""

    def __init__(self, epoch: int, epochs: int, total: int, initial: int, every: int, enabled: bool,
                 stream: TextIO | None = None, terminal: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.desc = f"epoch {epoch + 1}/{epochs}"
        self.total, self.step, self.every, self.enabled = total, initial, max(1, every), enabled
        self.bar = None
        if enabled and self.terminal:
            self.bar = tqdm(total=total, initial=initial, desc=self.desc, unit="step", dynamic_ncols=True,
                            file=self.stream)  # fmt: skip

    def update(self, loss: float, images_per_s: float) -> None:
        self.step += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_s:.1f}", refresh=False)
            self.bar.update(1)
        elif self.step % self.every == 0 or self.step == self.total:
            self._line(f"step {self.step}/{self.total} loss {loss:.4f} img/s {images_per_s:.1f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _line(self, text: str) -> None:
        _print(self.stream, f"{self.desc} {text}")


def _print(stream: TextIO, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=stream, flush=True)


def epoch_line(epoch: int, epochs: int, record: dict, stream: TextIO | None = None) -> None:
    """The end-of-epoch line (terminal or not): mean loss, lr, selection mAP in percent, time."""
    score = record.get("selection_map")
    text = f"epoch {epoch + 1}/{epochs} done: loss {record.get('train_loss', float('nan')):.4f} lr {record['lr']:.3g}"
    text += f" map {100 * score:.2f}" if score is not None else ""
    _print(stream if stream is not None else sys.stderr, f"{text} time {record.get('epoch_time', 0.0):.1f}s")
