"""The paper's two design claims with more training and more seeds than the recipe study: the
base recipe, no fusion and single task, each scored on the same 256 test faces.

Two plans of :mod:`e2far_lite.studies.recipe`:

* ``cpu-long`` writes ``experiments/ablation_study.json``: 64 px, 120,000 fresh faces per run (three
  times the recipe study's), six seeds. A run takes about 6 minutes on one core of an Intel
  Xeon; two processes take about an hour.
* ``cpu-96`` writes ``experiments/ablation_study_96px.json``: 96 px, where pool4 is a 6 x 6 map
  instead of 4 x 4 (more room for fusion to act), 40,000 faces per run, five seeds. About 5
  minutes a run; two processes take about 40 minutes.

Notebook 06 and the README read both beside the recipe study's 40,000-face runs.

Run from the repository root. On a 2-core CPU, two processes of one thread each:

    export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
    python experiments/ablation_study.py --plan cpu-long --part 1/2 &
    python experiments/ablation_study.py --plan cpu-long --part 2/2
    wait; python experiments/ablation_study.py --plan cpu-long --merge

``--part K/N`` trains every N-th run from the K-th, into a file of its own under
``runs/ablation_parts/``; an interrupted part continues where it stopped. ``--part 1/1`` runs
them all in one process, about twice as long. ``--merge`` joins whatever parts are there.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from e2far_lite.io.json_files import write_json
from e2far_lite.studies.recipe import claims, merge_studies, run_study, summary

HERE = Path(__file__).resolve().parent
LEVERS = ("base", "no_fusion", "single_task")
#: plan -> (the study's file, its seeds)
STUDIES = {
    "cpu-long": (HERE / "ablation_study.json", (0, 1, 2, 3, 4, 5)),
    "cpu-96": (HERE / "ablation_study_96px.json", (0, 1, 2, 3, 4)),
}


def parts_dir(plan: str) -> Path:
    return Path("runs") / "ablation_parts" / plan


def run_names(plan: str) -> list[str]:
    """Every run of ``plan``, lever by lever."""
    return [f"{lever}/seed{seed}" for lever in LEVERS for seed in STUDIES[plan][1]]


def runs_of_part(plan: str, k: int, n: int) -> tuple[str, ...]:
    """Every n-th run of ``plan`` from the k-th (1-based): each part gets its share of every
    lever (runs are seeded, so how they are shared out does not change them)."""
    return tuple(run_names(plan)[k - 1::n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", choices=tuple(STUDIES), required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--part", metavar="K/N", help="train the K-th of N shares of the runs")
    which.add_argument("--merge", action="store_true", help="join the parts into the study file")
    args = parser.parse_args()
    out, seeds = STUDIES[args.plan]
    folder = parts_dir(args.plan)
    if args.merge:
        files = sorted(folder.glob("*.json"))
        if not files:
            raise SystemExit(f"--merge: expected part files in {folder}, found none")
        study = merge_studies([json.loads(f.read_text()) for f in files])
        missing = [name for name in run_names(args.plan) if name not in study["runs"]]
        if missing:  # a part still running, stopped, or never started: write nothing
            raise SystemExit(f"--merge: expected all {len(run_names(args.plan))} runs of "
                             f"{args.plan} in {folder}, missing {missing}")
        study["command"] = ("OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 "
                            f"python experiments/ablation_study.py "
                            f"--plan {args.plan} --part K/N (N processes); --merge")
        study["parts"] = [f.name for f in files]
        write_json(out, study)
        for figure in ("expression_mm", "total_sim_mm"):
            for name, row in summary(study, figure).items():
                print(f"{name:12s} {figure} {row['mean']:.3f} ± {row['std']:.3f} mm "
                      f"({row['seeds']} seeds)")
        for row in claims(study):
            print(f"{row['claim']}: {row['difference_mm']:+.3f} ± {row['ci95_mm']:.3f} mm, "
                  f"{row['verdict']}")
        print(f"wrote {out}")
        return
    match = re.fullmatch(r"(\d+)/(\d+)", args.part)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise SystemExit(f"--part: expected K/N with 1 <= K <= N, got {args.part!r}")
    k, n = int(match[1]), int(match[2])
    folder.mkdir(parents=True, exist_ok=True)
    run_study(folder / f"part{k}of{n}.json", plan=args.plan, levers=LEVERS,
              runs_dir=f"runs/ablation/{args.plan}", cache_dir="runs/cache",
              only=runs_of_part(args.plan, k, n), seeds=seeds)


if __name__ == "__main__":
    main()
