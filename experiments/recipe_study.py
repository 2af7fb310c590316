"""Run the recipe study and write ``experiments/recipe_study.json`` (drawn by notebook 09).

Run from the repository root, on one CPU thread (about 100 minutes on a 2-core machine; the
other core can train the shipped checkpoint meanwhile):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python experiments/recipe_study.py

An interrupted study continues where it stopped (finished runs are kept in the JSON). Then
``python experiments/recipe_study.py --plot`` redraws ``experiments/recipe_study.png`` from the JSON
alone.
"""

import json
import sys
from pathlib import Path

from e2far_lite.studies.recipe import run_study
from e2far_lite.ui.plots import plot_study

HERE = Path(__file__).resolve().parent
OUT = HERE / "recipe_study.json"


def main() -> None:
    if "--plot" not in sys.argv:
        run_study(OUT, plan="cpu", runs_dir="runs/study", cache_dir="runs/cache")
    plot_study(json.loads(OUT.read_text()), HERE / "recipe_study.png")


if __name__ == "__main__":
    main()
