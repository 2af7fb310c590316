"""Does notebook 05 keep its time budget on a busy machine? Run it in full beside two busy loops.

    python experiments/busy_notebook05.py

runs ``notebooks/05_multitask_loss_and_training.ipynb`` top to bottom in a real Jupyter kernel,
not in smoke mode, from an empty cache (a fresh ``E2FAR_CACHE``), while two busy loops
(``python -c "while True: pass"``, killed at the end) stand for whatever else a student's
2-core laptop is doing. It writes ``experiments/busy_notebook05.json``: the seconds of every
cell that took more than a few, the training cell's seconds against its stated budget, the
steps it trained and the thread count the notebook chose (both read from what the cells
printed), and the 1-minute load average every few seconds. About 7 minutes on a 2-core CPU;
nothing is written into the notebook itself.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from e2far_lite.devices import describe
from e2far_lite.io.json_files import write_json

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "experiments" / "busy_notebook05.json"
NOTEBOOK = ROOT / "notebooks" / "05_multitask_loss_and_training.ipynb"
BUSY_LOOPS = 2
#: ``while True: pass``, with an end of its own in case this script is killed outright
BUSY_LOOP = "import time\nend = time.monotonic() + 1200\nwhile time.monotonic() < end: pass"
#: cells shorter than this are not listed one by one
LISTED_S = 5.0


def printed(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed (streams and plain-text results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def run(notebook: Path, cache: Path) -> dict[str, Any]:
    """Execute ``notebook`` cell by cell; each code cell's seconds and what the training printed."""
    nb = nbformat.read(notebook, as_version=4)
    env_before = {k: os.environ.get(k) for k in ("E2FAR_CACHE", "E2FAR_SMOKE")}
    os.environ["E2FAR_CACHE"], os.environ["E2FAR_SMOKE"] = str(cache), "0"
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    cells: list[dict[str, Any]] = []
    training: dict[str, Any] = {}
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                start = time.perf_counter()
                client.execute_cell(cell, index)
                seconds = time.perf_counter() - start
                text = printed(cell)
                if seconds >= LISTED_S:
                    cells.append({"cell": index, "seconds": round(seconds, 1),
                                  "first_line": cell.source.splitlines()[0][:80]})
                budget = re.search(r"budget_s = \d+ if SMOKE else (\d+)", cell.source)
                if budget:
                    stopped = re.search(r"after (\d+) of (\d+) steps", text)
                    done = re.search(r"all (\d+) steps done", text)
                    training = {"cell": index, "seconds": round(seconds, 1),
                                "budget_s": int(budget.group(1)),
                                "steps_done": int((stopped or done).group(1)),
                                "stopped_by_budget": stopped is not None,
                                "printed_last_line": text.strip().splitlines()[-1]}
                threads = re.search(r"training with (\d+)", text)
                if threads:
                    training["threads"] = int(threads.group(1))
                    training["seconds_per_step"] = text.strip().splitlines()[-1]
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"cells_over_5_s": cells, "training": training,
            "total_seconds": round(sum(c["seconds"] for c in cells), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    parser.add_argument("--loops", type=int, default=BUSY_LOOPS, help="busy loops beside it")
    args = parser.parse_args()
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5.0):
            loads.append(round(os.getloadavg()[0], 2))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` ends the loops
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.loops)]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory(prefix="e2far-busy-") as cache:
            result = run(NOTEBOOK, Path(cache))
    finally:
        done.set()
        for loop in loops:
            loop.kill()
            loop.wait()
    record: dict[str, Any] = {
        "command": "python experiments/busy_notebook05.py", "machine": describe("cpu"),
        "cpu_count": os.cpu_count(), "busy_loops": args.loops,
        "load_average_1min_before": load_before,
        "load_average_1min": {"min": min(loads, default=load_before),
                              "median": sorted(loads)[len(loads) // 2] if loads else load_before,
                              "max": max(loads, default=load_before)},
        **result, "minutes": round((time.perf_counter() - started) / 60, 1)}
    print(record["training"], flush=True)
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
