"""What notebook 05's hand-written training loop is compared with: ``train()`` on the same run.

    python experiments/loop_reference.py

trains the network of notebook 05's section 5 with the package's ``train`` exactly as the
student's loop trains it (the ``cpu-quick`` preset for 100 steps with a 10-step warm-up, the
same seed, the same pool of training faces; in smoke mode the ``smoke`` preset for 10 steps
with 1), validates it on the run's validation faces, and writes both modes' figures to
``experiments/loop_reference.json``. The notebook then validates the student's network on the
same faces and reads this file, so it trains the loop once and ``train`` not at all. A few
minutes on a 2-core CPU, most of them rendering the pool.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from e2far_lite.devices import describe
from e2far_lite.io.json_files import write_json
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.train.configs import TrainConfig, get_config
from e2far_lite.train.loop import train

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "experiments" / "loop_reference.json"


def loop_config(smoke: bool) -> TrainConfig:
    """The config of notebook 05's hand-written loop (its cell that builds ``loop_config``)."""
    steps = 10 if smoke else 100
    return get_config("smoke" if smoke else "cpu-quick", steps=steps, warmup_steps=steps // 10)


def reference(smoke: bool, cache: Path) -> dict[str, Any]:
    """``train`` on the loop's config, on the CPU: its final validation figures in mm and %."""
    config = loop_config(smoke)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="e2far-loop-") as out:
        result = train(config, out, device="cpu", progress=False, cache_dir=cache,
                       model=MorphableModel.default())
    return {"preset": "smoke" if smoke else "cpu-quick", "steps": config.steps,
            "warmup_steps": config.warmup_steps, "seed": config.seed,
            "train_seed": config.train_seed, "validation_faces": config.val_size,
            "validation": {k: round(v, 4) for k, v in result.final.items()},
            "mean_shape": {k: round(v, 4) for k, v in result.baseline.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    args = parser.parse_args()
    cache = Path(os.environ.get("E2FAR_CACHE") or tempfile.mkdtemp(prefix="e2far-cache-"))
    record = {"command": "python experiments/loop_reference.py", "machine": describe("cpu"),
              "threads": torch.get_num_threads(),
              "full": reference(False, cache), "smoke": reference(True, cache)}
    for mode in ("full", "smoke"):
        print(mode, record[mode]["validation"])
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
