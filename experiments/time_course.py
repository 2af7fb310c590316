"""Time the course: every notebook run top to bottom, not in smoke mode, in a real kernel.

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/time_course.py

runs notebooks/00 … 08 one after another, from an empty cache (a fresh ``E2FAR_CACHE``), as
a student would meet them, and writes ``experiments/course_times.json``: each notebook's seconds,
the load average before it (what else the machine was doing), notebook 05's own training
minutes and the validation figures its ``cpu-quick`` run printed, and the machine. The
README's run-time column and the notebooks' headers state these figures;
``tests/notebooks/test_notebooks.py`` checks that they do. About 5-10 minutes on the project's
2-core CPU; nothing is written into the notebooks themselves.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from e2far_lite.devices import describe
from e2far_lite.io.json_files import write_json
from e2far_lite.io.landmark_files import dev_annotations

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "experiments" / "course_times.json"
# notebook 05 prints its cpu-quick run's validation figures, then "... (trained in X min ..."
TRAINED = re.compile(r"trained in ([0-9.]+) min")
FIGURES = re.compile(r"^vertex RMSE total .*$", re.MULTILINE)


def run(path: Path, cache: str) -> tuple[float, str]:
    """Execute ``path`` in a fresh kernel; its seconds and everything it printed."""
    nb = nbformat.read(path, as_version=4)
    os.environ.pop("E2FAR_SMOKE", None)
    os.environ["E2FAR_CACHE"] = cache
    client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    return seconds, printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    args = parser.parse_args()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="e2far-course-cache-") as cache:
        for path in notebooks:
            load = os.getloadavg()[0]
            seconds, printed = run(path, cache)
            rows[path.name] = row = {"seconds": round(seconds, 1), "load_before": round(load, 2)}
            trained = TRAINED.search(printed)
            if trained:
                row["training_minutes"] = float(trained.group(1))
                figures = FIGURES.findall(printed)
                row["training_figures"] = figures[-1] if figures else None
            print(f"{path.name:<45} {seconds:7.1f} s   (load average before: {load:.2f})",
                  flush=True)
    total = sum(row["seconds"] for row in rows.values())
    print(f"the whole course: {total / 60:.1f} min")
    record = {
        "command": "OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python experiments/time_course.py",
        "machine": f"{describe(torch.device('cpu'))}, {platform.machine()}, "
                   f"{os.cpu_count()} cores",
        "cache": "empty at the start (a fresh E2FAR_CACHE)",
        # notebook 08 scores the annotated faces only where E2FAR_DEV_FACES names them
        "development_faces": dev_annotations() is not None,
        "notebooks": rows,
        "total_minutes": round(total / 60, 1),
    }
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
