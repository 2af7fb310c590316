"""Does bf16 autocast change what the network learns? Two short runs that differ only in it.

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/bf16_check.py

trains the ``cpu-full`` preset for 1000 steps twice from the same seed (the same initial
weights and the same faces), once in float32 and once under bf16 autocast, and writes both
runs' final validation figures and minutes to ``experiments/bf16_check.json``. On a CPU without
native bf16 (``devices.cpu_has_fast_bf16()`` false) both runs are float32 and it says so.
About 6 minutes on the project's 2-core Xeon.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from e2far_lite.devices import cpu_has_fast_bf16, describe
from e2far_lite.io.json_files import write_json
from e2far_lite.train import get_config, train

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "experiments" / "bf16_check.json"
STEPS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps of each run")
    args = parser.parse_args()
    record = {"command": "OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/bf16_check.py",
              "machine": describe(torch.device("cpu")),
              "native_bf16": cpu_has_fast_bf16(),
              "load_average": round(os.getloadavg()[0], 2),
              "preset": "cpu-full", "steps": args.steps, "runs": {}}
    for name, amp in (("float32", False), ("bf16", True)):
        config = get_config("cpu-full", steps=args.steps, amp=amp, val_every=args.steps,
                            ckpt_every=args.steps)
        with tempfile.TemporaryDirectory(prefix=f"e2far-{name}-") as out:
            start = time.perf_counter()
            result = train(config, out, device="cpu", progress=False)
            minutes = (time.perf_counter() - start) / 60
        record["runs"][name] = {"minutes": round(minutes, 1), **result.final}
        print(f"{name}: {minutes:.1f} min, " + ", ".join(
            f"{k} {v:.3f}" for k, v in result.final.items()), flush=True)
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
