"""Run the realism study and write ``experiments/realism_study.json`` (read by notebook 10).

Run from the repository root with annotated real faces (a dlib XML file, ``.pts`` files or a
folder) and the first-stage network to start from, one CPU thread per process:

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python experiments/realism_study.py FACES \
        --init runs/cpu-full/best.pt

Every lever of ``e2far_lite.studies.realism.STUDY_LEVERS`` is one run per seed (about 4
minutes each); ``--levers control jpeg`` runs only those, so two processes can share the levers
on a 2-core machine. Finished runs are kept in ``runs/realism/`` and skipped; ``--collect`` only
gathers them into the JSON; both draw ``experiments/realism_study.png`` from it.
"""

import argparse
from pathlib import Path

from e2far_lite.studies.realism import STUDY_LEVERS, collect, run_lever
from e2far_lite.ui.plots import plot_realism_study

HERE = Path(__file__).resolve().parent
OUT = HERE / "realism_study.json"
RUNS = "runs/realism"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces", nargs="?", help="annotated real faces")
    parser.add_argument("--init", default="runs/cpu-full/best.pt",
                        help="the network every run starts from")
    parser.add_argument("--levers", nargs="+", choices=tuple(STUDY_LEVERS),
                        default=tuple(STUDY_LEVERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=(1, 2),
                        help="training seeds (initial order of faces); default 1 2")
    parser.add_argument("--collect", action="store_true", help="only gather finished runs")
    args = parser.parse_args()
    if not args.collect:
        if args.faces is None:
            parser.error("faces: expected annotated real faces (or --collect)")
        for seed, lever in ((s, lever) for s in args.seeds for lever in args.levers):
            record = run_lever(lever, args.faces, args.init, seed=seed, runs_dir=RUNS,
                               cache_dir="runs/cache")
            print(f"{lever}/seed{seed}: real NME {record['real_nme_pct']['detected']:.2f} % "
                  f"(detected boxes), {record['real_nme_pct']['landmarks']:.2f} % (landmark "
                  f"boxes); "
                  f"synthetic total_sim {record['synthetic']['total_sim_mm']:.3f} mm, "
                  f"{record['minutes']:.1f} min", flush=True)
    results = collect(RUNS, OUT)
    plot_realism_study(results, HERE / "realism_study.png")


if __name__ == "__main__":
    main()
