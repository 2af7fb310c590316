"""The training log: loss terms averaged between logged steps, and the files they are written to.

Each logged step becomes one row (a dict of floats)::

    step, lr, steps_per_s, load_average, loss_<term> for each TERM   every log_every steps
    val_<figure> (validation.validate's keys)                         every val_every steps,
                                                                      and at step 0

``history.csv`` holds the rows (blanks where a figure was not taken), ``history.json`` the same
rows with the config and the mean-shape baseline.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..io.atomic import atomic_write
from ..io.json_files import write_json
from . import distributed

#: Loss terms logged (averaged over ``log_every`` steps), in the order of the progress bar.
TERMS = ("total", "neutral", "expression", "landmarks", "pose")


class LossMeter:
    """Sums the loss terms of each step on the device (no host sync per step); :meth:`reduce`
    and :meth:`take` turn them into a log row once per logged step."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(TERMS), device=device)  # (len(TERMS),) since the last row
        # the first step (1-based) whose loss was not finite, -1: none; kept on the device too
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.steps, self.tick = 0, time.perf_counter()

    def add(self, terms: dict[str, Tensor], done: int) -> None:
        """Add the scalar loss terms of step ``done`` (1-based)."""
        values = torch.stack([terms[k].detach().float() for k in TERMS])
        self.sums += values
        self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(values).all(), done,
                                     self.first_bad)
        self.steps += 1

    def reduce(self, proc: distributed.Process) -> int:
        """Combine the sums over processes (nothing to do for one); return the first step with
        a non-finite loss (-1: none). The one host sync of a logged step."""
        distributed.reduce_log(self.sums, self.first_bad, proc)
        return int(self.first_bad)

    def take(self) -> dict[str, float]:
        """``steps_per_s`` and ``loss_<term>`` (means over the steps since the last call) and
        the machine's 1-minute ``load_average`` (what else ran beside the steps; absent where
        the system has none), then start counting afresh."""
        now = time.perf_counter()
        row = {"steps_per_s": self.steps / (now - self.tick)}
        if hasattr(os, "getloadavg"):
            row["load_average"] = os.getloadavg()[0]
        row.update({f"loss_{k}": v / self.steps
                    for k, v in zip(TERMS, self.sums.tolist(), strict=True)})
        self.sums.zero_()
        self.steps, self.tick = 0, now
        return row


def write_history(history: list[dict[str, float]], out_dir: Path,
                  extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``history.csv`` (one row per logged step, blanks where a figure was not taken)
    and ``history.json`` (``{"rows": history, **extra}``), atomically.

    Returns:
        the two paths, ``(csv_path, json_path)``, in ``out_dir``.
    """
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    csv_path, json_path = out_dir / "history.csv", out_dir / "history.json"
    with atomic_write(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)
    write_json(json_path, {**(extra or {}), "rows": history}, indent=1)  # NaN (diverged) -> null
    return csv_path, json_path


__all__ = ["TERMS", "write_history"]
