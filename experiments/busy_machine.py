"""How much does a busy CPU slow notebook 05's training, and how many threads should it use?

    python experiments/busy_machine.py

times the training step of notebook 05's network (the ``cpu-quick`` preset: 64 px, batch of
32) at 1 and 2 torch threads, first on the machine as it is, then beside two busy loops
(``python -c "while True: pass"``, killed at the end) that stand for whatever else the
student's computer is doing. The batch is rendered once and reused, so only the step is timed
(forward, loss, backward, AdamW). Each condition alternates the thread counts in short rounds
(20 steps or 10 s each, whichever ends first), so a change of load meets both alike. Writes
the median seconds per step and the load average to ``experiments/busy_machine.json``; notebook 09
prints its figures from there. At most about 2 minutes; the busy loops
end with the script (and on their own after 4 minutes, whatever happens to it).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from e2far_lite.devices import describe
from e2far_lite.io.json_files import write_json
from e2far_lite.model import MorphableModel
from e2far_lite.nets import E2FARNet
from e2far_lite.synth import SyntheticFaces
from e2far_lite.train import MultiTaskLoss, get_config, make_optimizer, train_step

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "experiments" / "busy_machine.json"
BUSY_LOOPS = 2
THREADS = (1, 2)
#: ``while True: pass``, with an end of its own in case this script is killed outright
BUSY_LOOP = "import time\nend = time.monotonic() + 240\nwhile time.monotonic() < end: pass"


def step_times(threads: int, parts: tuple, steps: int, seconds: float) -> list[float]:
    """Seconds of each training step at ``threads`` torch threads: ``steps`` of them, or fewer
    once ``seconds`` have passed (at least two)."""
    net, loss_fn, optimizer, scaler, batch, config = parts
    torch.set_num_threads(threads)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < steps and (len(times) < 2 or time.perf_counter() - started < seconds):
        start = time.perf_counter()
        train_step(net, loss_fn, optimizer, scaler, batch, config, None)
        times.append(time.perf_counter() - start)
    return times


def measure(parts: tuple, rounds: int, steps: int, seconds: float) -> dict[str, Any]:
    """Median seconds per step at each thread count, the counts alternating round by round,
    with the 1-minute load average before and after."""
    times: dict[int, list[float]] = {t: [] for t in THREADS}
    load = [os.getloadavg()[0]]
    for _ in range(rounds):
        for threads in THREADS:
            times[threads] += step_times(threads, parts, steps, seconds)
    load.append(os.getloadavg()[0])
    result: dict[str, Any] = {f"{t}_threads": {"seconds_per_step": round(statistics.median(v), 3),
                                               "steps": len(v)} for t, v in times.items()}
    result["load_average_1min"] = [round(x, 2) for x in load]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per condition")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round, at most")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds per round and thread count, at most")
    args = parser.parse_args()
    config = get_config("cpu-quick")
    model = MorphableModel.default()
    torch.manual_seed(0)
    net = E2FARNet(model.num_id, model.num_exp, config.net).train()
    batch = SyntheticFaces(model, config.batch_size, seed=0, config=config.data).batch(
        range(config.batch_size))
    parts = (net, MultiTaskLoss(model, config.loss), make_optimizer(net, config),
             torch.amp.GradScaler("cpu", enabled=False), batch, config)
    train_step(*parts[:5], config, None)  # the first step allocates: not timed
    started = time.perf_counter()
    record: dict[str, Any] = {"command": "python experiments/busy_machine.py",
                              "machine": describe("cpu"),
                              "cpu_count": os.cpu_count(), "preset": "cpu-quick",
                              "batch_size": config.batch_size, "image_size": config.image_size,
                              "steps_planned": config.steps}
    record["as_it_is"] = measure(parts, args.rounds, args.steps, args.seconds)
    print("as it is:", record["as_it_is"], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` ends the loops
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(BUSY_LOOPS)]
    try:
        time.sleep(1.0)  # let them take their cores
        record[f"beside_{BUSY_LOOPS}_busy_loops"] = measure(parts, args.rounds, args.steps,
                                                            args.seconds)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    print("busy:", record[f"beside_{BUSY_LOOPS}_busy_loops"], flush=True)
    busy = record[f"beside_{BUSY_LOOPS}_busy_loops"]
    record["busy_threads"] = min(THREADS, key=lambda t: busy[f"{t}_threads"]["seconds_per_step"])
    record["minutes"] = round((time.perf_counter() - started) / 60, 1)
    print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
