"""The paper's two design claims with three times the recipe study's training: the base recipe,
no fusion and single task, three seeds each, 120,000 fresh faces per run (the ``cpu-long`` plan
of :mod:`e2far_lite.analysis.study`). Writes ``data/ablation_study.json``; notebook 06 and the
README read it beside the recipe study's 40,000-face runs.

Run from the repository root. On a 2-core CPU, two processes of one thread each (about 70 min):

    export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
    python data/ablation_study.py --part a &
    python data/ablation_study.py --part b
    wait; python data/ablation_study.py --merge

One process alone (``--part all``) runs all nine, about twice as long. An interrupted part
continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from e2far_lite.analysis.study import claims, merge_studies, run_study, summary
from e2far_lite.evaluate.scores import write_json

HERE = Path(__file__).resolve().parent
OUT = HERE / "ablation_study.json"
LEVERS = ("base", "no_fusion", "single_task")
# two halves of about equal work: a base run costs about 1.5 runs of the other two
PARTS = {
    "a": ("base/seed0", "base/seed1", "no_fusion/seed0", "single_task/seed0"),
    "b": ("base/seed2", "no_fusion/seed1", "no_fusion/seed2", "single_task/seed1",
          "single_task/seed2"),
}


def part_file(part: str) -> Path:
    return Path("runs") / f"ablation_study_{part}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--part", choices=(*PARTS, "all"), help="the runs this process trains")
    which.add_argument("--merge", action="store_true",
                       help=f"join the parts into {OUT.relative_to(HERE.parent)}")
    args = parser.parse_args()
    if args.merge:
        missing = [str(part_file(p)) for p in PARTS if not part_file(p).is_file()]
        if missing:
            raise SystemExit(f"--merge: expected the parts' files, missing {missing}")
        study = merge_studies([json.loads(part_file(p).read_text()) for p in PARTS])
        study["command"] = ("OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python "
                            "data/ablation_study.py --part a & --part b; --merge")
        write_json(OUT, study)
        table = summary(study, "expression_mm")
        for name, row in table.items():
            print(f"{name:12s} expression {row['mean']:.3f} ± {row['std']:.3f} mm "
                  f"({row['seeds']} seeds)")
        for row in claims(study):
            print(f"{row['claim']}: {row['difference_mm']:+.3f} ± {row['ci95_mm']:.3f} mm, "
                  f"{row['verdict']}")
        print(f"wrote {OUT}")
        return
    only = None if args.part == "all" else PARTS[args.part]
    out = OUT if args.part == "all" else part_file(args.part)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_study(out, plan="cpu-long", levers=LEVERS, runs_dir="runs/ablation",
              cache_dir="runs/cache", only=only)


if __name__ == "__main__":
    main()
