"""The realism study: which training-time levers close the synthetic-to-real gap (notebook 10).

Every run starts from the same network trained on plain synthetic faces (``init``, a first stage of
the shipped recipe's kind) and trains it on for a few hundred steps with one realism lever
(:mod:`~e2far_lite.synth.realism`) on. A control run trains on as long with no lever, so a
lever's effect is its run's score minus the control's: the extra steps alone are not counted.
Each finished network is scored on annotated real faces (landmark NME from the detected box,
as ``python -m e2far_lite landmarks-nme FACES --box detected`` does, and from the landmarks'
own box) and on clean synthetic test faces (what the lever costs there).

Each run writes ``RUNS/<lever>-seed<k>/result.json``, so runs can be split over several
processes and an interrupted study continues; :func:`collect` gathers them into one JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluate.scores import evaluate_net
from ..io.json_files import write_json
from ..photo.scores import real_landmark_nme
from ..synth.faces import DataConfig
from ..synth.realism import LEVERS as REALISM_LEVERS
from ..train.configs import TrainConfig, get_config

#: Each run's realism shares: the control (none), each lever alone, all seven, and the chosen five.
STUDY_LEVERS: dict[str, dict[str, float]] = {
    "control": {},
    "features": {"features": 1.0},
    "interior": {"interior": 1.0},
    "head": {"head": 1.0},
    "white_balance": {"white_balance": 0.5},
    "occluder": {"occluder": 0.3},
    "low_res": {"low_res": 0.5},
    "jpeg": {"jpeg": 0.5},
    "all": {"features": 1.0, "interior": 1.0, "head": 1.0, "white_balance": 0.5,
            "occluder": 0.3, "low_res": 0.5, "jpeg": 0.5},
    # the five that helped on their own (the shipped network's second stage, cpu-real, uses
    # them on half the faces each)
    "chosen": {"features": 1.0, "interior": 1.0, "head": 1.0, "occluder": 0.3, "jpeg": 0.5},
}


@dataclasses.dataclass(frozen=True)
class RealismPlan:
    """How long each run trains on, and how many synthetic test faces score it."""

    steps: int = 400  # optimizer steps of 32 faces after ``init``
    lr: float = 5e-4  # peak learning rate (warm-up, then cosine decay as in training)
    test_size: int = 256  # clean synthetic test faces (evaluate's test split)


def study_config(lever: str, init: str | os.PathLike, seed: int,
                 plan: RealismPlan = RealismPlan()) -> TrainConfig:
    """The TrainConfig of one run: ``cpu-full`` from ``init``'s weights, with ``lever`` on."""
    if lever not in STUDY_LEVERS:
        raise ValueError(f"lever: expected one of {sorted(STUDY_LEVERS)}, got {lever!r}")
    base = get_config("cpu-full")
    return get_config(
        "cpu-full", data=dataclasses.replace(base.data, **STUDY_LEVERS[lever]),
        val_data=DataConfig(), init=str(init), steps=plan.steps, lr=plan.lr,
        warmup_steps=max(1, plan.steps // 10), val_every=plan.steps, ckpt_every=plan.steps,
        log_every=max(1, plan.steps // 8), val_size=128, seed=seed,
        train_seed=5000 + seed, amp=False)


def run_lever(lever: str, faces: str | os.PathLike, init: str | os.PathLike, seed: int = 1,
              runs_dir: str | os.PathLike = "runs/realism", plan: RealismPlan = RealismPlan(),
              cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train and score one run (kept if ``RUNS/<lever>-seed<k>/result.json`` exists)."""
    from ..train.loop import train

    folder = Path(runs_dir) / f"{lever}-seed{seed}"
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    config = study_config(lever, init, seed, plan)
    started = time.perf_counter()
    result = train(config, folder, device="cpu", resume="auto", progress=False,
                   cache_dir=cache_dir)
    minutes = (time.perf_counter() - started) / 60
    net, model = result.net.eval(), result.model
    # one pass per crop: the study measures what a lever teaches the network to read from the
    # box it is given (its committed figures were measured so)
    real = {box: real_landmark_nme(faces, net, model, config, use_box=box, refine=0)
            for box in ("detected", "landmarks")}
    test = evaluate_net(net, model, DataConfig(image_size=config.image_size),
                        n=plan.test_size, fit=False, cache_dir=cache_dir)
    record = {
        "lever": lever, "seed": seed, "shares": STUDY_LEVERS[lever], "minutes": minutes,
        "threads": torch.get_num_threads(), "plan": dataclasses.asdict(plan),
        "real_nme_pct": {box: 100 * r.mean for box, r in real.items()},
        "real_mean_face_pct": {box: 100 * r.baseline_mean for box, r in real.items()},
        "real_found": real["detected"].found, "real_faces": len(real["detected"].faces),
        "real_per_face_pct": {box: [100 * float(v) for v in r.nme] for box, r in real.items()},
        "synthetic": {k: test["network"][k] for k in ("total_sim_mm", "expression_mm",
                                                      "nme_pct")},
    }
    write_json(done, record)
    return record


def collect(runs_dir: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Gather every ``result.json`` under ``runs_dir`` into ``out``, with each lever's change
    from the control run of the same seed."""
    runs = {}
    for path in sorted(Path(runs_dir).glob("*/result.json")):
        record = json.loads(path.read_text())
        runs[f"{record['lever']}/seed{record['seed']}"] = record
    for record in runs.values():
        control = runs.get(f"control/seed{record['seed']}")
        if control is not None:
            record["vs_control"] = {
                "real_nme_pct": {box: v - control["real_nme_pct"][box]
                                 for box, v in record["real_nme_pct"].items()},
                "synthetic": {k: v - control["synthetic"][k]
                              for k, v in record["synthetic"].items()}}
    payload = {"levers": dict(STUDY_LEVERS),
               "realism_levers": list(REALISM_LEVERS), "runs": runs}
    write_json(out, payload)
    return payload


def summary(results: dict[str, Any], box: str = "detected") -> dict[str, dict[str, Any]]:
    """Per lever: the real-face NME (``box``: ``"detected"`` or ``"landmarks"``), its change
    from the control run of the same seed, and the synthetic test figures, as means over seeds
    with the per-seed values.

    Returns:
        ``{lever: {"seeds": n, "real_nme_pct": mean, "vs_control": mean, "vs_control_seeds":
        [...], "synthetic_total_sim_mm": mean, "synthetic_nme_pct": mean}}`` in the order of
        :data:`STUDY_LEVERS`.
    """
    out: dict[str, dict[str, Any]] = {}
    for lever in STUDY_LEVERS:
        runs = [r for r in results["runs"].values() if r["lever"] == lever]
        if not runs:
            continue
        changes = [r["vs_control"]["real_nme_pct"][box] for r in runs if "vs_control" in r]
        out[lever] = {
            "seeds": len(runs),
            "real_nme_pct": float(np.mean([r["real_nme_pct"][box] for r in runs])),
            "vs_control": float(np.mean(changes)) if changes else float("nan"),
            "vs_control_seeds": changes,
            "synthetic_total_sim_mm": float(np.mean([r["synthetic"]["total_sim_mm"]
                                                     for r in runs])),
            "synthetic_nme_pct": float(np.mean([r["synthetic"]["nme_pct"] for r in runs])),
        }
    return out
