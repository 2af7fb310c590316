"""The recipe study: which lever limits accuracy, measured with learning curves.

Every run starts from one small base recipe (the shipped network's ``cpu-full`` design with
half its backbone and fusion widths and a 256-unit neutral head, at 64 px, for 40,000 fresh
faces) and changes one lever: input size, width, loss
weight, learning-rate schedule, a pool of faces seen again instead of fresh ones,
augmentation, how strong the training expressions are, and the paper's two design choices
(fusion, multi-task). Each lever
runs with two or more seeds (the seed sets the initial weights and the training faces).

All runs validate on the same distribution, the full one (``DataConfig`` defaults at the run's
input size), whatever they train on, so their curves compare; each final network is then
scored on the test split by :func:`~e2far_lite.evaluate.evaluate_net`. The results go to a
JSON file that :func:`~e2far_lite.ui.plot_study` draws (notebook 09 and docs/results.md show the
picture).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..evaluate.scores import TEST_SEED, evaluate_net
from ..io.json_files import write_json
from ..synth.faces import DataConfig
from ..train.configs import TrainConfig, get_config


@dataclass(frozen=True)
class Lever:
    """One study arm: what it changes from the base recipe, and its seeds."""

    label: str  # legend text
    changes: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (top level)
    net: dict[str, Any] = field(default_factory=dict)  # NetConfig fields
    data: dict[str, Any] = field(default_factory=dict)  # training DataConfig fields
    loss: dict[str, Any] = field(default_factory=dict)  # LossConfig fields
    seeds: tuple[int, ...] = (0, 1)


_WIDE = {"backbone": {"widths": (16, 32, 64, 128, 256)}, "fusion": {"width": 128, "hidden": 256},
         "id_hidden": 512}

LEVERS: dict[str, Lever] = {
    "base": Lever("base: 64 px, half widths, fresh faces", seeds=(0, 1, 2)),
    "size96": Lever("96 px input", changes={"image_size": 96}),
    "wide": Lever("the shipped widths (2x)", net=_WIDE),
    "no_fusion": Lever("no fusion (expression from pool5)", net={"fusion_enabled": False},
                       seeds=(0, 1, 2)),
    "single_task": Lever("single task (one head, one loss)", net={"multi_task": False},
                         seeds=(0, 1, 2)),
    "subtle": Lever("subtle expressions only (no strong share)", data={"strong_share": 0.0}),
    "pool": Lever("a pool of 4096 faces, each seen ~10 times", changes={"train_pool": 4096}),
    "no_augment": Lever("no photometric augmentation", data={"augment": 0.0}),
    "lambda1": Lever("λ = 1 instead of 5", loss={"lambda_exp": 1.0}),
    "constant_lr": Lever("constant learning rate (no decay)", changes={"min_lr_ratio": 1.0}),
    "size128": Lever("128 px input", changes={"image_size": 128}),
}


@dataclass(frozen=True)
class StudyPlan:
    """How big each run is."""

    steps: int  # optimizer steps per run
    batch_size: int
    val_every: int  # curve points
    val_size: int
    test_size: int
    image_size: int = 64  # the base recipe's input size


PLANS = {
    "cpu": StudyPlan(steps=1250, batch_size=32, val_every=250, val_size=256, test_size=256),
    # the ablation at three times the faces (experiments/ablation_study.py): base, no fusion, single
    # task, six seeds each, 120,000 faces per run
    "cpu-long": StudyPlan(steps=3750, batch_size=32, val_every=750, val_size=256,
                          test_size=256),
    # the ablation at 96 px, where pool4 is 6 x 6 (experiments/ablation_study.py): five seeds each,
    # the recipe study's 40,000 faces per run
    "cpu-96": StudyPlan(steps=1250, batch_size=32, val_every=250, val_size=256, test_size=256,
                        image_size=96),
    "smoke": StudyPlan(steps=4, batch_size=4, val_every=2, val_size=8, test_size=8),
}


def lever_config(name: str, seed: int, plan: StudyPlan) -> TrainConfig:
    """The TrainConfig of one run: the base recipe with lever ``name`` applied."""
    lever = LEVERS[name]
    base = get_config("cpu-full")
    net = dataclasses.replace(base.net, backbone=dataclasses.replace(
        base.net.backbone, widths=(8, 16, 32, 64, 128)), fusion=dataclasses.replace(
        base.net.fusion, width=64, hidden=128), id_hidden=256)
    for key, value in lever.net.items():
        current = getattr(net, key)
        value = dataclasses.replace(current, **value) if isinstance(value, dict) else value
        net = dataclasses.replace(net, **{key: value})
    changes = {"image_size": plan.image_size, **lever.changes}
    return get_config(
        "cpu-full", net=net, data=dataclasses.replace(base.data, **lever.data),
        loss=dataclasses.replace(base.loss, **lever.loss), val_data=DataConfig(),
        steps=plan.steps, batch_size=plan.batch_size,
        warmup_steps=max(1, plan.steps // 10), val_every=plan.val_every,
        ckpt_every=plan.steps, log_every=plan.val_every, val_size=plan.val_size,
        seed=seed, train_seed=1000 + seed, channels_last=False, amp=False,
        **changes)


def run_study(out: str | os.PathLike, plan: str = "cpu", levers: tuple[str, ...] | None = None,
              runs_dir: str | os.PathLike = "runs/study", cache_dir: str | None = None,
              progress: bool = True, only: Collection[str] | None = None,
              seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Train every (lever, seed) run of ``plan`` and write the results to ``out`` (JSON).

    Runs already in ``out`` (same plan and settings) are kept, so an interrupted study
    continues. Each run
    records its validation curve (faces seen against the shape figures) and its test figures.
    ``only`` keeps the runs named ``"lever/seedN"`` (to share a study between processes, each
    writing its own ``out``; :func:`merge_studies` joins them). ``seeds``, when given, replaces
    every lever's own seeds.
    """
    if seeds is not None and (not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ValueError(f"seeds: expected whole numbers >= 0, got {seeds!r}")

    def seeds_of(name: str) -> tuple[int, ...]:
        return tuple(seeds) if seeds is not None else LEVERS[name].seeds

    if only is not None:
        known = {f"{name}/seed{seed}" for name in (levers or LEVERS) for seed in seeds_of(name)}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"only: expected runs among {sorted(known)}, got {unknown}")
    from ..train.loop import train

    study = PLANS[plan]
    out = Path(out)
    results: dict[str, Any] = {"plan": plan, "settings": dataclasses.asdict(study),
                               "test_seed": TEST_SEED, "threads": torch.get_num_threads(),
                               "runs": {}}
    if out.is_file():
        old = json.loads(out.read_text())
        if old.get("plan") == plan and old.get("settings") == results["settings"]:
            results["runs"] = old["runs"]
    for name in levers or tuple(LEVERS):
        for seed in seeds_of(name):
            key = f"{name}/seed{seed}"
            if key in results["runs"] or (only is not None and key not in only):
                continue
            config = lever_config(name, seed, study)
            started = time.perf_counter()
            result = train(config, Path(runs_dir) / name / f"seed{seed}", device="cpu",
                           progress=False, cache_dir=cache_dir)
            curve = [{"faces": row["step"] * config.batch_size,
                      **{k[4:]: v for k, v in row.items() if k.startswith("val_")}}
                     for row in result.history if "val_total_mm" in row]
            test = evaluate_net(result.net, result.model, DataConfig(image_size=config.image_size),
                                n=study.test_size, fit=False, cache_dir=cache_dir)
            results["runs"][key] = {
                "lever": name, "seed": seed, "minutes": (time.perf_counter() - started) / 60,
                "curve": curve, "baseline": result.baseline,
                "test": {k: test[k] for k in ("network", "mean_shape", "expression_by_pixels")}}
            write_json(out, results)
            if progress:
                net, mean = test["network"], test["mean_shape"]
                print(f"{key}: test total_sim {net['total_sim_mm']:.3f} mm (mean shape "
                      f"{mean['total_sim_mm']:.3f}), expression {net['expression_mm']:.3f} "
                      f"({mean['expression_mm']:.3f}), {results['runs'][key]['minutes']:.1f} min",
                      flush=True)
    return results


def merge_studies(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One study from parts run apart (:func:`run_study` with ``only``): the same plan and
    settings, no run twice. The threads of the parts must agree too."""
    if not parts:
        raise ValueError("parts: expected at least one study, got none")
    merged = {k: v for k, v in parts[0].items() if k != "runs"} | {"runs": {}}
    for i, part in enumerate(parts):
        for key in ("plan", "settings", "test_seed", "threads"):
            if part.get(key) != merged.get(key):
                raise ValueError(f"parts[{i}]: expected {key} {merged.get(key)!r} like parts[0], "
                                 f"got {part.get(key)!r}")
        twice = sorted(set(part["runs"]) & set(merged["runs"]))
        if twice:
            raise ValueError(f"parts[{i}]: expected runs no other part has, got {twice} again")
        merged["runs"].update(part["runs"])
    return merged


def summary(results: dict[str, Any], figure: str = "total_sim_mm") -> dict[str, dict]:
    """Per lever: the test figure's mean, std and 95% interval half-width over seeds, its
    ratio to the mean shape's (``ratio_to_mean_shape``), and the difference to the base lever
    paired by seed (``vs_base`` and ``vs_base_ci95``, when both have two seeds or more)."""
    by_lever: dict[str, dict[int, float]] = {}
    mean_shape: dict[str, list[float]] = {}
    for run in results["runs"].values():
        by_lever.setdefault(run["lever"], {})[run["seed"]] = run["test"]["network"][figure]
        mean_shape.setdefault(run["lever"], []).append(run["test"]["mean_shape"][figure])
    base = by_lever.get("base", {})
    out = {}
    for name, values in by_lever.items():
        xs = list(values.values())
        mean = statistics.fmean(xs)
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        row = {"seeds": len(xs), "mean": mean, "std": std,
               "ci95": _t95(len(xs)) * std / len(xs) ** 0.5 if len(xs) > 1 else math.nan,
               "ratio_to_mean_shape": mean / statistics.fmean(mean_shape[name])}
        paired = [values[s] - base[s] for s in values if s in base]
        if name != "base" and len(paired) > 1:
            d_mean, d_std = statistics.fmean(paired), statistics.stdev(paired)
            row["vs_base"] = d_mean
            row["vs_base_ci95"] = _t95(len(paired)) * d_std / len(paired) ** 0.5
        out[name] = row
    return out


def verdict(difference: float, half_width: float) -> str:
    """``yes`` when a difference (other - ours, mm) and its 95% interval are all above 0 (ours
    is better), ``no, the opposite`` when all below, else ``no detectable effect``."""
    if not math.isfinite(half_width):
        return "not measured (one seed)"
    if difference - half_width > 0:
        return "yes"
    if difference + half_width < 0:
        return "no, the opposite"
    return "no detectable effect at this scale"


def claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's two design claims, judged on the study's test figures: each removes one
    design choice from the base recipe (same seeds, paired) and asks whether the expression
    error rises. Returns rows ``{"claim", "lever", "difference_mm", "ci95_mm", "verdict"}``,
    the difference being (without the choice) - (with it), so > 0 means the choice helps."""
    rows = []
    table = summary(results, "expression_mm")
    for claim, lever in (("fusion improves expression", "no_fusion"),
                         ("multi-task improves expression", "single_task")):
        row = table.get(lever, {})
        diff, half = row.get("vs_base", math.nan), row.get("vs_base_ci95", math.nan)
        if lever not in table or "base" not in table:
            decided = "not run"
        elif not math.isfinite(diff):
            decided = "not measured (fewer than two seeds paired with the base)"
        else:
            decided = verdict(diff, half)
        rows.append({"claim": claim, "lever": lever, "difference_mm": diff, "ci95_mm": half,
                     "verdict": decided})
    return rows


def _t95(n: int) -> float:
    """Two-sided 95% Student t quantile for n samples (n - 1 degrees of freedom)."""
    table = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306,
             10: 2.262, 11: 2.228, 16: 2.131, 21: 2.086, 31: 2.042}
    if n < 2:
        raise ValueError(f"n: expected at least 2 samples, got {n}")
    # between the tabulated counts, the next smaller one (a slightly wider interval)
    return table[max(k for k in table if k <= n)] if n <= 31 else 1.96


__all__ = ["LEVERS", "Lever", "PLANS", "StudyPlan", "lever_config", "run_study",
           "merge_studies", "summary", "claims", "verdict"]
