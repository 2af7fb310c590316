"""Where the time of a training step goes when the network runs in bf16: data, levers, network.

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/step_breakdown.py

times, on the CPU, the pieces of one ``cpu-2h`` step (96 px, batch 32, the realism levers on
their shares, bf16 autocast where the CPU has it):

- ``plain data``: a fresh batch of the full distribution without levers (draw, render,
  background, augment);
- each lever alone at its ``cpu-2h`` share, as the extra milliseconds over the plain batch;
- ``all levers``: the ``cpu-2h`` batch itself;
- ``network``: forward, loss, backward and AdamW on a ready batch;
- ``whole step``: batch and network, as :func:`~e2far_lite.evaluate.train_throughput` times it.

Each figure is the median of ``--repeats`` timings (40; fresh faces each time) after a warm-up.
It adds an entry named ``--name`` to ``experiments/step_breakdown.json`` (other entries are
kept, so two versions of the code measured on one machine sit side by side), with the load
average at the start and the end. About two minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from e2far_lite.devices import describe
from e2far_lite.evaluate.speed import time_call, train_throughput
from e2far_lite.io.json_files import write_json
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.synth import DataConfig
from e2far_lite.synth.faces import SyntheticFaces
from e2far_lite.synth.realism import LEVERS
from e2far_lite.train.configs import get_config

OUT = Path(__file__).resolve().parent / "step_breakdown.json"


def batch_ms(model: MorphableModel, data: DataConfig, batch: int, repeats: int) -> float:
    """Median milliseconds to make one fresh batch of ``data`` (one warm-up batch first)."""
    faces = SyntheticFaces(model, 10**9, seed=5, config=data, device="cpu")
    starts = iter(range(0, 10**9, batch))  # fresh faces each call

    def fresh_batch() -> None:
        start = next(starts)
        faces.batch(range(start, start + batch))

    return 1000 * time_call(fresh_batch, torch.device("cpu"), repeats)


def breakdown(repeats: int) -> dict[str, Any]:
    """The step's pieces in milliseconds per batch: see the module docstring."""
    config = get_config("cpu-2h")
    model = MorphableModel.default()
    plain = dataclasses.replace(config.data, **dict.fromkeys(LEVERS, 0.0))
    batch = config.batch_size
    pieces: dict[str, float] = {"plain data": batch_ms(model, plain, batch, repeats)}
    for lever in LEVERS:
        share = getattr(config.data, lever)
        if share > 0:
            alone = dataclasses.replace(plain, **{lever: share})
            pieces[f"{lever} ({share:g} of faces)"] = (
                batch_ms(model, alone, batch, repeats) - pieces["plain data"])
    pieces["all levers"] = batch_ms(model, config.data, batch, repeats)
    step = train_throughput(config, torch.device("cpu"), repeats=repeats, model=model)
    pieces["network"] = 1000 * batch / step["net_images_per_s"]
    pieces["whole step"] = 1000 * step["step_s"]
    return {"batch_size": batch, "image_size": config.image_size,
            "ms_per_batch": {k: round(v, 2) for k, v in pieces.items()},
            "images_per_s": round(step["images_per_s"], 1),
            "net_images_per_s": round(step["net_images_per_s"], 1),
            "whole_vs_network": round(step["images_per_s"] / step["net_images_per_s"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="current", help="the entry's name in the JSON")
    parser.add_argument("--repeats", type=int, default=40, help="timings per figure")
    parser.add_argument("--json", type=Path, default=OUT, help="the JSON to add the entry to")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    entry = {"device": describe(torch.device("cpu")), "threads": torch.get_num_threads(),
             "repeats": args.repeats, "load_average_start": round(load_start, 2),
             **breakdown(args.repeats),
             "load_average_end": round(os.getloadavg()[0], 2),
             "command": "OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/step_breakdown.py"
                        f" --repeats {args.repeats} --name '{args.name}'"}
    record = json.loads(args.json.read_text()) if args.json.is_file() else {}
    record[args.name] = entry
    write_json(args.json, record)
    width = max(map(len, entry["ms_per_batch"]))
    for piece, ms in entry["ms_per_batch"].items():
        print(f"{piece:<{width}}  {ms:7.1f} ms")
    print(f"whole steps {entry['images_per_s']} images/s, network alone "
          f"{entry['net_images_per_s']} images/s: {entry['whole_vs_network']}x")


if __name__ == "__main__":
    main()
