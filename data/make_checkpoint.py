"""Train and export the shipped checkpoint ``data/e2far_lite.pt``, and record its figures.

Run from the repository root (the shipped file was made on two threads of a 2-core Intel Xeon
with AMX, where the presets' ``amp`` trains under bf16 autocast; the JSON records each stage's
threads, minutes and load average). It takes about four hours, so run it in the background,
with its run folders outside the repository:

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 nohup python data/make_checkpoint.py \
        --runs ~/runs/night --out ~/runs/night/e2far_lite.pt > ~/runs/night/log.txt 2>&1 &

Run the same command again to continue after an interruption. Two stages, each resumable (an
interrupted stage continues from its ``last.pt``):

1. ``cpu-night`` in ``RUNS/cpu-night`` (224 minutes): the full synthetic distribution at
   96 px, 2,560,000 fresh faces under one cosine schedule. It leaves ``best.pt`` (the best step
   by validation RMSE) and ``record.json`` (its steps, minutes and validation curve); when both
   exist the stage is skipped. ``--first cpu-full`` (73 minutes, 1,152,000 faces) is the
   shorter first stage of the network shipped before it.
2. ``cpu-real`` in ``RUNS/cpu-real`` (21 minutes): the same network trained on from
   stage 1's ``best.pt`` with the realism levers that ``experiments/realism_study.py`` chose
   (eyebrows and lips, eyeballs and a mouth interior, a head around the face, occluders, JPEG),
   each on half the faces, validated on the plain full distribution.

Stage 2's last checkpoint is written to ``--out`` as float16 weights (no optimizer state) and
scored on the test split of the full distribution against the mean shape and perfect-landmark
fitting, exactly as

    python -m e2far_lite evaluate --checkpoint data/e2far_lite.pt --n 512 \
        --json data/e2far_lite.json

does; the JSON then gets both stages' minutes, the command, the joined validation curve and,
under ``first_stage``, stage 1's ``best.pt`` scored on the same test faces (float32 weights)
and, where ``E2FAR_DEV_FACES`` names the annotated development faces, on those (from detected
boxes, refined, as ``landmarks-nme --box detected`` scores them). ``--development`` adds only
that last figure to an existing JSON. ``tests/data/test_shipped_checkpoint.py`` reproduces the
figures.

A new file is a candidate: it replaces ``data/e2far_lite.pt`` only if it beats the shipped
file on the test faces and on the development photos (``landmarks-nme --box detected``).
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from e2far_lite.cli import main as cli
from e2far_lite.io.json_files import write_json
from e2far_lite.io.landmark_files import dev_annotations
from e2far_lite.photo.scores import real_landmark_nme
from e2far_lite.train.checkpoint import export_checkpoint, load_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import TrainResult, train

HERE = Path(__file__).resolve().parent
OUT = HERE / "e2far_lite.pt"
TEST_FACES = 512
FIRST_STAGES = ("cpu-full", "cpu-night")


def stage_record(result: TrainResult, preset: str) -> dict:
    """A stage's steps, faces, minutes of optimizer steps and validation curve."""
    cfg = result.config
    speeds = [row["steps_per_s"] for row in result.history if "steps_per_s" in row]
    loads = [row["load_average"] for row in result.history if "load_average" in row]
    validated = [r for r in result.history if "val_total_mm" in r]
    threads = torch.get_num_threads()
    return {
        "preset": preset, "steps": cfg.steps, "threads": threads,
        "command": f"OMP_NUM_THREADS={threads} NUMBA_NUM_THREADS={threads} python "
                   + " ".join(["data/make_checkpoint.py", *sys.argv[1:]]),
        "faces_seen": cfg.steps * cfg.batch_size,
        "best_step": min(validated, key=lambda r: r["val_total_mm"])["step"],
        # the optimizer steps' time (validation excluded), from the training log
        "minutes": round(sum(cfg.log_every / s for s in speeds) / 60, 1),
        # the 1-minute load average at the logged steps: 2 on 2 cores is the run alone,
        # more is other work beside it (which the minutes include)
        **({"load_average": round(sum(loads) / len(loads), 2)} if loads else {}),
        # the validation curve (validation split, seed 2): notebook 09 draws it
        "curve": [{"faces": r["step"] * cfg.batch_size,
                   **{k[4:]: v for k, v in r.items() if k.startswith("val_")}}
                  for r in validated],
        "curve_mean_shape": result.baseline,
    }


def first_stage(preset: str, folder: Path) -> dict:
    """Stage 1's record, training it first unless ``folder`` already holds it."""
    record_path = folder / "record.json"
    if (folder / "best.pt").is_file() and record_path.is_file():
        return json.loads(record_path.read_text())
    result = train(get_config(preset), folder, device="cpu", resume="auto")
    record = stage_record(result, preset)
    write_json(record_path, record)
    return record


def development_nme(checkpoint: Path) -> dict | None:
    """``checkpoint``'s landmark NME on the development faces that ``E2FAR_DEV_FACES`` names,
    from detected boxes with the default refining; None where the variable is unset."""
    source = dev_annotations()
    if source is None:
        return None
    net, model, config = load_checkpoint(checkpoint, device="cpu")
    result = real_landmark_nme(source, net, model, config, use_box="detected", oracle=False)
    print(f"{checkpoint}: {100 * result.mean:.2f} % on {result.found} of {len(result.faces)} "
          "development faces")
    return {"command": "python -m e2far_lite landmarks-nme $E2FAR_DEV_FACES --box detected "
                       f"--checkpoint {checkpoint}",
            "faces": len(result.faces), "found": result.found, "nme_pct": 100 * result.mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--development", action="store_true",
                        help="only add stage 1's development-face NME to the existing JSON")
    parser.add_argument("--first", choices=FIRST_STAGES, default="cpu-night",
                        help="the first stage's preset (default: cpu-night, the shipped recipe)")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="the stages' run folders go here (default: runs)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="the exported checkpoint; its figures go beside it as .json "
                             "(default: data/e2far_lite.pt)")
    args = parser.parse_args()
    stage1, out = args.runs / args.first, args.out
    # the test figures that tests/data/test_shipped_checkpoint.py checks
    figures = out.with_suffix(".json")
    if args.development:
        record = json.loads(figures.read_text())
        found = development_nme(stage1 / "best.pt")
        if found is None:
            raise SystemExit("E2FAR_DEV_FACES: expected the annotated development faces, "
                             "got nothing (set it to their dlib XML file)")
        record["first_stage"]["development_faces"] = found
        write_json(figures, record)
        return
    first = first_stage(args.first, stage1)
    result = train(get_config("cpu-real", init=str(stage1 / "best.pt")), args.runs / "cpu-real",
                   device="cpu", resume="auto")
    second = stage_record(result, "cpu-real")
    # the last step, not the best by validation: stage 2 trains on faces with eyebrows, heads
    # and occluders but validates on plain ones, which it should read as well as stage 1 did
    # by the end, not pass over for stage 1's own weights (its step 0)
    export_checkpoint(result.paths["last"], out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    cli(["evaluate", "--checkpoint", str(out), "--n", str(TEST_FACES), "--json", str(figures)])
    record = json.loads(figures.read_text())
    stages = [{k: v for k, v in s.items() if k not in ("curve", "curve_mean_shape")}
              for s in (first, second)]
    offset = first["faces_seen"]
    record["training"] = {
        "command": second["command"], "preset": "cpu-real", "stages": stages,
        "steps": first["steps"] + second["steps"],
        "faces_seen": offset + second["faces_seen"],
        "exported_step": second["steps"],
        "minutes": round(first["minutes"] + second["minutes"], 1),
        # both stages' validation curves on one axis of faces seen (stage 2's step 0 is
        # stage 1's best network again, so it is left out)
        "curve": first["curve"] + [{**p, "faces": p["faces"] + offset}
                                   for p in second["curve"][1:]],
        "curve_mean_shape": first["curve_mean_shape"],
    }
    # the first stage alone on the same test faces: what the second stage adds and costs
    first_json = stage1 / "test_figures.json"
    cli(["evaluate", "--checkpoint", str(stage1 / "best.pt"), "--n", str(TEST_FACES),
         "--json", str(first_json)])
    record["first_stage"] = {"checkpoint": str(stage1 / "best.pt"),
                             "network": json.loads(first_json.read_text())["network"]}
    development = development_nme(stage1 / "best.pt")
    if development is not None:
        record["first_stage"]["development_faces"] = development
    write_json(figures, record)


if __name__ == "__main__":
    main()
