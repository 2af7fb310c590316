"""Train and export the smoke checkpoint ``data/e2far_lite_smoke.pt``.

Run from the repository root, on one CPU thread (well under a minute):

    OMP_NUM_THREADS=1 python data/make_smoke_checkpoint.py

It trains the ``smoke`` preset (a tiny network, 60 steps of 8 near-frontal faces at 64 px; the
preset fixes the seeds) in a temporary folder and writes its best checkpoint by validation
RMSE as float16 weights (no optimizer state). ``pretrained()`` loads it in smoke mode
(``E2FAR_SMOKE=1``), so the notebooks' tests never train; its numbers mean little.
"""

import tempfile
from pathlib import Path

import torch

from e2far_lite.train.checkpoint import export_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import train
from e2far_lite.train.shipped import SMOKE_FILE
from e2far_lite.train.validation import format_figures

HERE = Path(__file__).resolve().parent
OUT = HERE / SMOKE_FILE


def main() -> None:
    torch.manual_seed(0)  # train() seeds from the preset too; this keeps anything before it fixed
    with tempfile.TemporaryDirectory(prefix="e2far-smoke-") as folder:
        result = train(get_config("smoke"), folder, device="cpu", progress=False, cache_dir=folder)
        export_checkpoint(result.paths["best"], OUT)  # float16 weights, written atomically
    speeds = [row["steps_per_s"] for row in result.history if "steps_per_s" in row]
    minutes = sum(result.config.log_every / s for s in speeds) / 60
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**10:.0f} KiB)")
    print(
        f"trained {result.config.steps} steps of {result.config.batch_size} faces: "
        f"{minutes:.2f} min of optimizer steps ({60 * minutes:.0f} s), "
        f"{result.seconds / 60:.2f} min in all ({result.seconds:.0f} s)"
    )
    print("validation:", format_figures(result.final, result.baseline))


if __name__ == "__main__":
    main()
