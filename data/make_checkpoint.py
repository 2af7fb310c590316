"""Train and export the shipped checkpoint ``data/e2far_lite.pt``.

Run from the repository root (about 25 minutes on a 2-core CPU):

    OMP_NUM_THREADS=1 python data/make_checkpoint.py

It trains the ``cpu-quick`` preset for longer, on a larger pool of training faces, then writes the
best checkpoint (by validation RMSE) as float16 weights (no optimizer state) and prints the
validation figures that the README records. ``python -m e2far_lite evaluate --checkpoint
data/e2far_lite.pt`` reproduces them.
"""

from pathlib import Path

from e2far_lite.checkpoint import export_checkpoint, load_checkpoint
from e2far_lite.configs import get_config
from e2far_lite.train import format_figures, load_split, train, validate

STEPS, POOL = 9000, 32768
OUT = Path(__file__).resolve().parent / "e2far_lite.pt"


def main() -> None:
    config = get_config("cpu-quick", steps=STEPS, train_pool=POOL, val_every=1500,
                        ckpt_every=1500)
    result = train(config, "runs/shipped", device="cpu")
    export_checkpoint(result.paths["best"], OUT)
    net, model, config = load_checkpoint(OUT, device="cpu")
    figures = validate(net, model, load_split(model, config, "data/cache"))
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.1f} MiB) after {result.seconds / 60:.1f} min")
    print(format_figures(figures, result.baseline))


if __name__ == "__main__":
    main()
