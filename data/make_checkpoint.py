"""Train and export the shipped checkpoint ``data/e2far_lite.pt``, and record its figures.

Run from the repository root, on one CPU thread (about 2 hours on a 2-core machine):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python data/make_checkpoint.py

It trains the ``cpu-full`` preset (the full distribution at 96 px, fresh faces) in
``runs/cpu-full`` (an interrupted run resumes from ``last.pt``), writes the best checkpoint by
validation RMSE as float16 weights (no optimizer state), then scores it on the test split of the
full distribution against the mean shape and perfect-landmark fitting, exactly as

    python -m e2far_lite evaluate --checkpoint data/e2far_lite.pt --n 512 \
        --json data/e2far_lite.json

does, and writes that JSON with the training's minutes and command added.
``tests/test_shipped.py`` reproduces the figures.
"""

import json
from pathlib import Path

from e2far_lite.cli import main as cli
from e2far_lite.train.checkpoint import export_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import train

HERE = Path(__file__).resolve().parent
OUT = HERE / "e2far_lite.pt"
FIGURES = OUT.with_suffix(".json")  # the test figures tests/test_shipped.py checks
TEST_FACES = 512


def main() -> None:
    result = train(get_config("cpu-full"), "runs/cpu-full", device="cpu", resume="auto")
    export_checkpoint(result.paths["best"], OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.1f} MiB)")
    cli(["evaluate", "--checkpoint", "data/e2far_lite.pt", "--n", str(TEST_FACES),
         "--json", "data/e2far_lite.json"])
    record = json.loads(FIGURES.read_text())
    speeds = [row["steps_per_s"] for row in result.history if "steps_per_s" in row]
    record["training"] = {
        "command": "OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python data/make_checkpoint.py",
        "preset": "cpu-full", "steps": result.config.steps,
        "faces_seen": result.config.steps * result.config.batch_size,
        "best_step": min((r for r in result.history if "val_total_mm" in r),
                         key=lambda r: r["val_total_mm"])["step"],
        # the optimizer steps' time (validation excluded), from the training log
        "minutes": round(sum(result.config.log_every / s for s in speeds) / 60, 1),
        # the validation curve (validation split, seed 2): notebook 05 draws it
        "curve": [{"faces": r["step"] * result.config.batch_size,
                   **{k[4:]: v for k, v in r.items() if k.startswith("val_")}}
                  for r in result.history if "val_total_mm" in r],
        "curve_mean_shape": result.baseline,
    }
    FIGURES.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
