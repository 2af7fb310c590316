"""Train and export the shipped checkpoint ``data/e2far_lite.pt``.

Run from the repository root (about 15 minutes on a quiet 2-core CPU):

    OMP_NUM_THREADS=1 python data/make_checkpoint.py

It trains the ``cpu-quick`` preset for longer, with cluttered backgrounds, then writes the
best checkpoint (by validation RMSE) as float16 weights (no optimizer state) and prints the
validation figures that the README records. ``python -m e2far_lite evaluate --checkpoint
data/e2far_lite.pt`` reproduces them.
"""

import dataclasses
import json
from pathlib import Path

from e2far_lite.checkpoint import export_checkpoint, load_checkpoint
from e2far_lite.configs import get_config
from e2far_lite.train import format_figures, load_split, train, validate

STEPS = 6000  # the cpu-quick preset's pool of 12288 faces, seen about 15 times
OUT = Path(__file__).resolve().parent / "e2far_lite.pt"
FIGURES = OUT.with_suffix(".json")  # the validation figures tests/test_shipped.py checks


def main() -> None:
    preset = get_config("cpu-quick")
    # cluttered backgrounds, unlike the preset's black ones: a network trained on black
    # backgrounds misjudges the face's size in real photos (notebook 08 measures it)
    data = dataclasses.replace(preset.data, backgrounds=True)
    config = get_config("cpu-quick", steps=STEPS, data=data, val_every=1000, ckpt_every=1000)
    result = train(config, "runs/shipped", device="cpu")
    export_checkpoint(result.paths["best"], OUT)
    net, model, config = load_checkpoint(OUT, device="cpu")
    figures = validate(net, model, load_split(model, config, "data/cache"))
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.1f} MiB) after {result.seconds / 60:.1f} min")
    print(format_figures(figures, result.baseline))
    record = {"command": "OMP_NUM_THREADS=1 python data/make_checkpoint.py", "steps": STEPS,
              "preset": "cpu-quick + backgrounds", "minutes": round(result.seconds / 60, 1),
              "validation": figures, "mean_shape": result.baseline}
    FIGURES.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
