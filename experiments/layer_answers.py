"""Which layers the shipped network uses: notebook 07's three answers, on its two sets of faces.

    python experiments/layer_answers.py

runs :func:`~e2far_lite.analysis.layer_answers` on the shipped checkpoint exactly as notebook
07's stability cell does (768 fresh faces of seed 7 with probe split 0, then 768 of seed 8
with probe split 1, drawn like its training faces) and writes the mean-ablation costs (to
the expression and to the identity), the attribution depths and the probes' R² to
``experiments/layer_answers.json``, with the checkpoint's hash, so that prose quoting them can
be checked. About a minute on 2 cores (the faces are rendered once and cached).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from e2far_lite.analysis import layer_answers, probe_batch, same_answers
from e2far_lite.io.json_files import write_json
from e2far_lite.paths import data_dir, is_smoke
from e2far_lite.train import pretrained
from e2far_lite.train.shipped import SHIPPED_FILE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "layer_answers.json"
#: (faces' seed, probe split): notebook 07's two measurements
SETS = ((7, 0), (8, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    args = parser.parse_args()
    if is_smoke():
        raise SystemExit("E2FAR_SMOKE: expected it unset (the shipped network), got it set "
                         "(the smoke network)")
    net, model, config, _ = pretrained()
    checkpoint = data_dir() / SHIPPED_FILE
    sets = {}
    for seed, split in SETS:
        faces = probe_batch(net, model, config.data, seed=seed)
        answers = layer_answers(net, model, faces, probe_seed=split)
        sets[f"seed {seed}, probe split {split}"] = {"seed": seed, "probe_seed": split,
                                                     "faces": len(faces["image"]), **answers}
        costs = answers["ablation"]["costs_mm"]
        print(f"seed {seed}, split {split}: mean ablation " + ", ".join(
            f"{tap} {cost:+.3f} mm" for tap, cost in costs.items())
            + f"; depth expression {answers['depth']['expression']:.2f}, identity "
              f"{answers['depth']['identity']:.2f}", flush=True)
    first, second = sets.values()
    record = {"command": "python experiments/layer_answers.py",
              "checkpoint": f"data/{SHIPPED_FILE}",
              "checkpoint_sha256_prefix": hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12],
              "load_average": round(os.getloadavg()[0], 2),
              "sets": sets, "same_answers": same_answers(first, second)}
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
