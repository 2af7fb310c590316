"""One prepared GPU run: speed figures, a training sized to a time budget, the shipped scoring.

On a machine with a GPU, from the repository root (``OUT``: where the results go):

    python experiments/gpu_run.py --minutes 6 --out "$OUT"

1. ``benchmark --speed`` figures of this GPU (the renderer, whole training steps, the network,
   MobileNetV1) into ``OUT/speed_gpu.json``;
2. times a few whole steps of the ``gpu`` preset (128 px, batch 128, bf16 autocast: rendering
   included) and sets its number of steps so that its training steps take about
   ``--minutes`` (validating 8 times and writing 4 checkpoints add a little); the cosine
   schedule is sized to those steps;
3. trains it into ``OUT/run``, writes the last step as float16 weights to ``OUT/gpu_run.pt``;
4. scores that file exactly as the shipped checkpoint was scored (``evaluate --n 512``: 512
   test faces of the full distribution against the mean shape and perfect-landmark fitting),
   into ``OUT/gpu_run.json``, with the faces seen, the minutes and the measured steps/s.

The learning curve of the shipped network (``analysis.faces_for_goals``, docs/training.md)
puts its expression and landmark goals at about 6 and 7 million faces at 96 px, and its shape
goal at about 29 million: the faces seen here say where a GPU run stands on that road.
Everything also runs on a CPU at toy sizes, which is how the test suite checks the script:

    python experiments/gpu_run.py --device cpu --config smoke --minutes 0.1 --n 8 --no-speed \
        --out /tmp/g
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from e2far_lite.cli import main as cli
from e2far_lite.devices import default_device, describe
from e2far_lite.evaluate.speed import speed_report, train_throughput
from e2far_lite.io.json_files import write_json
from e2far_lite.train import export_checkpoint, get_config, train

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for every result")
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="training time to size the run to (default: 6)")
    parser.add_argument("--config", default="gpu", help="the preset (default: gpu)")
    parser.add_argument("--device", default=None, help="default: the best available")
    parser.add_argument("--n", type=int, default=512, help="test faces (default: 512)")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed figures")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.minutes) and args.minutes > 0) or args.n <= 0:
        raise SystemExit(f"--minutes, --n: expected positive numbers, got {args.minutes}, "
                         f"{args.n}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device) if args.device else default_device()
    print(f"device: {describe(device)}", flush=True)
    if not args.no_speed:
        report = speed_report(device, echo=lambda line: print("  " + line, flush=True))
        write_json(out / "speed_gpu.json", report)
        print(f"wrote {out / 'speed_gpu.json'}", flush=True)

    base = get_config(args.config)
    timed = train_throughput(base, device, repeats=5, warmup=2)
    steps_per_s = timed["images_per_s"] / base.batch_size
    steps = max(10, int(args.minutes * 60 * steps_per_s))
    config = get_config(args.config, steps=steps, val_every=max(1, steps // 8),
                        ckpt_every=max(1, steps // 4), warmup_steps=min(base.warmup_steps,
                                                                        steps // 10))
    print(f"{args.config}: {timed['images_per_s']:.0f} faces/s in whole steps -> {steps} steps "
          f"of {config.batch_size} ({steps * config.batch_size:,} faces) for ~{args.minutes} "
          "min", flush=True)
    start = time.perf_counter()
    result = train(config, out / "run", device=device, progress=False)
    minutes = (time.perf_counter() - start) / 60
    shipped = export_checkpoint(result.paths["last"], out / "gpu_run.pt")
    figures = out / "gpu_run.json"
    cli(["evaluate", "--checkpoint", str(shipped), "--n", str(args.n), "--json", str(figures),
         "--device", str(device)])
    record = json.loads(figures.read_text())
    record["training"] = {
        "command": "python experiments/gpu_run.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "device": describe(device), "preset": args.config, "steps": steps,
        "batch_size": config.batch_size, "faces_seen": steps * config.batch_size,
        "minutes": round(minutes, 1), "measured_faces_per_s": round(timed["images_per_s"], 1),
        "validation": result.final, "validation_mean_shape": result.baseline,
    }
    write_json(figures, record)
    print(f"wrote {figures}: {steps * config.batch_size:,} faces in {minutes:.1f} min")


if __name__ == "__main__":
    main()
