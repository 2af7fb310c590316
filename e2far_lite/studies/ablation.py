"""The paper's claims, measured: the ablation table of ``python -m e2far_lite benchmark``.

Rows: the mean shape; iterative landmark fitting (the method family UH-E2FAR compares against),
given the ground-truth 2D landmarks (its best case) and given the network's own predicted
landmarks; and the network in three variants trained with the same budget and seeds — the full
UH-E2FAR design (fusion CNN + multi-task loss), no fusion (expression from pool5 like identity),
and single task (one head, one full-shape loss).

Every figure is measured on a fixed **test split** (``TEST_SEED``) that training never sees and
that no choice of model or hyper-parameter is made on (training validates on its own split).
Network rows are mean ± std over training seeds; per-seed figures are means over test faces.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..devices import default_device, describe
from ..evaluate.fitting import FitConfig, fit_landmarks
from ..evaluate.scores import TEST_SEED, held_out_faces
from ..io.atomic import write_text
from ..io.json_files import write_json
from ..model.metrics import landmark_nme, shape_errors
from ..model.morphable_model import MorphableModel
from ..model.regions import REGION_NAMES, vertex_regions
from ..render.camera import weak_perspective_project
from ..train.configs import TrainConfig, get_config

VARIANTS: dict[str, dict] = {
    "full": {},  # fusion CNN for expression + multi-task loss (the paper)
    "no_fusion": {"fusion_enabled": False},  # expression from pool5, like identity
    "single_task": {"multi_task": False},  # one head for [a_id, a_exp], one full-shape loss
}


@dataclass(frozen=True)
class Plan:
    """How big a benchmark run is."""

    preset: str  # training preset each variant starts from
    steps: int | None  # training steps per run (None: the preset's)
    seeds: tuple[int, ...]  # training seeds
    test_size: int  # faces in the test split
    fit_faces: int  # test faces the (slow) fitting baseline is run on
    timing_faces: int  # faces timed one by one for ms / image


PLANS: dict[str, Plan] = {
    "smoke": Plan("smoke", 20, (0, 1), 16, 8, 3),
    "quick": Plan("cpu-quick", 1200, (0, 1, 2), 256, 64, 16),  # <= 30 min on a 2-core CPU
    "full": Plan("default", None, (0, 1, 2), 1000, 256, 50),  # a GPU
}


def variant_config(plan: Plan, variant: str, seed: int) -> TrainConfig:
    """The training config of one (variant, seed) run. The seed changes the initial weights;
    every run sees the same training faces (the preset's stream or pool, rendered once), and
    never the validation or test faces."""
    base = get_config(plan.preset)
    net = dataclasses.replace(base.net, **VARIANTS[variant])
    steps = plan.steps or base.steps
    return get_config(plan.preset, net=net, steps=steps, seed=seed, val_every=steps,
                      ckpt_every=steps)


def score(model: MorphableModel, pred: dict[str, Tensor], split: dict[str, Tensor],
          labels: Tensor) -> dict[str, float]:
    """Mean figures over faces: RMSE in mm (total, neutral, expression, regions), NME in %."""
    errors = shape_errors(model, pred, split, labels)
    out = {key: float(errors[key].mean()) for key in ("total", "neutral", "expression")}
    for name in REGION_NAMES:
        out[f"region/{name}"] = float(errors[f"region/{name}"].nanmean())
    points = model.landmark_points(pred["a_id"], pred["a_exp"])
    lm = weak_perspective_project(points, pred["pose"])
    out["nme"] = 100 * float(landmark_nme(lm, split["landmarks"], split["visible"]).nanmean())
    return out


def _median_ms(fn, items: int) -> float:
    times = []
    for i in range(items):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@torch.no_grad()
def evaluate_network(net, model: MorphableModel, split: dict[str, Tensor], labels: Tensor,
                     timing_faces: int) -> dict[str, float]:
    """Figures of a trained network on the split, plus forward time per image at batch 1."""
    net.eval()
    outs = [net(split["image"][s:s + 128]) for s in range(0, len(split["image"]), 128)]
    pred = {k: torch.cat([o[k] for o in outs]).float() for k in ("a_id", "a_exp", "pose")}
    figures = score(model, pred, split, labels)
    net(split["image"][:1])  # warm-up
    figures["ms"] = _median_ms(lambda i: net(split["image"][i:i + 1]), timing_faces)
    return figures


def evaluate_fitting(model: MorphableModel, split: dict[str, Tensor], landmarks: Tensor,
                     visible: Tensor, labels: Tensor, timing_faces: int) -> dict[str, float]:
    """Iterative fitting from given 2D landmarks; figures and time per image (batch 1)."""
    config = FitConfig()
    fit = fit_landmarks(model, landmarks, visible, config)
    figures = score(model, fit, split, labels)
    figures["ms"] = _median_ms(
        lambda i: fit_landmarks(model, landmarks[i:i + 1], visible[i:i + 1], config),
        timing_faces)
    return figures


def _subset(split: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    return {k: v[:n] for k, v in split.items()}


def run_ablation(mode: str = "quick", out_dir: str | os.PathLike = "runs/benchmark",
                 device: torch.device | str | None = None, progress: bool = True) -> dict:
    """Train every variant for every seed, evaluate all rows, write results.json and .md."""
    from ..train.loop import train

    if mode not in PLANS:
        raise ValueError(f"mode: expected one of {sorted(PLANS)}, got {mode!r}")
    plan = PLANS[mode]
    device = torch.device(device) if device is not None else default_device()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = MorphableModel.default().to(device)
    labels = vertex_regions(model)
    reference = variant_config(plan, "full", plan.seeds[0])
    split = {k: v.to(device) for k, v in
             held_out_faces(model, reference.data, plan.test_size, device=device).items()}
    fit_split = _subset(split, plan.fit_faces)

    rows: dict[str, list[dict[str, float]]] = {}
    zero = {"a_id": torch.zeros_like(split["a_id"]), "a_exp": torch.zeros_like(split["a_exp"]),
            "pose": split["pose"]}  # the mean shape, placed with the true pose
    rows["mean shape"] = [score(model, zero, split, labels)]
    rows["fitting, true landmarks"] = [evaluate_fitting(
        model, fit_split, fit_split["landmarks"], fit_split["visible"], labels,
        plan.timing_faces)]

    for variant in VARIANTS:
        for seed in plan.seeds:
            config = variant_config(plan, variant, seed)
            run_dir = out / f"{variant}-seed{seed}"
            if progress:
                print(f"training {variant}, seed {seed}: {config.steps} steps", flush=True)
            result = train(config, run_dir, device=device, progress=False)
            figures = evaluate_network(result.net, model, split, labels, plan.timing_faces)
            rows.setdefault(f"E2FAR {variant}", []).append(figures)
            if variant == "full" and seed == plan.seeds[0]:
                with torch.no_grad():
                    pred = result.net(fit_split["image"])
                    points = model.landmark_points(pred["a_id"].float(), pred["a_exp"].float())
                    predicted = weak_perspective_project(points, pred["pose"].float())
                visible = model.landmark_mask.expand(len(predicted), -1)
                rows["fitting, network's landmarks"] = [evaluate_fitting(
                    model, fit_split, predicted, visible, labels, plan.timing_faces)]

    order = ["mean shape", "fitting, true landmarks", "fitting, network's landmarks",
             *[f"E2FAR {v}" for v in VARIANTS]]
    rows = {name: rows[name] for name in order}
    results = {
        "mode": mode, "plan": dataclasses.asdict(plan), "device": describe(device),
        "threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "test_seed": TEST_SEED,
        "minutes": (time.perf_counter() - started) / 60,
        "rows": {name: summarise(runs) for name, runs in rows.items()},
        "runs": rows,
    }
    write_json(out / "results.json", results)
    write_text(out / "results.md", format_table(results))
    return results


def summarise(runs: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample std over runs (std 0 for a single run) of every figure."""
    keys = runs[0].keys()
    return {k: (statistics.fmean(r[k] for r in runs),
                statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0) for k in keys}


def _cell(pair: tuple[float, float], digits: int = 2) -> str:
    mean, std = pair
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std else f"{mean:.{digits}f}"


def format_table(results: dict) -> str:
    """The ablation as Markdown: the main table, then RMSE by face region."""
    plan = results["plan"]
    lines = [
        f"Test split: {plan['test_size']} synthetic faces (seed {results['test_seed']}); fitting "
        f"rows on the first {plan['fit_faces']}. Network rows: mean ± std over seeds "
        f"{tuple(plan['seeds'])}, `{plan['preset']}` preset, {plan['steps'] or 'preset'} steps. "
        f"Device: {results['device']}. Took {results['minutes']:.1f} min.",
        "",
        "| method | total RMSE (mm) | neutral (mm) | expression (mm) | landmark NME (%) "
        "| ms / image |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["rows"].items():
        ms = _cell(row["ms"], 1) if "ms" in row else "–"
        lines.append(f"| {name} | {_cell(row['total'])} | {_cell(row['neutral'])} | "
                     f"{_cell(row['expression'])} | {_cell(row['nme'])} | {ms} |")
    lines += ["", "RMSE by face region (mm, after whole-face alignment):", "",
              "| method | " + " | ".join(REGION_NAMES) + " |",
              "|---|" + "---|" * len(REGION_NAMES)]
    for name, row in results["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(row[f"region/{r}"]) for r in REGION_NAMES)
                     + " |")
    return "\n".join(lines) + "\n"
