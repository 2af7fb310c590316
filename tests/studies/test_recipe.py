"""The recipe study: each lever changes what it says, runs resume, verdicts follow intervals."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from e2far_lite.paths import REPO_ROOT, experiments_dir
from e2far_lite.studies.recipe import (
    LEVERS,
    PLANS,
    claims,
    lever_config,
    merge_studies,
    run_study,
    summary,
    verdict,
)
from e2far_lite.synth.faces import DataConfig
from e2far_lite.ui.plots import plot_claims, plot_study


def test_levers_change_one_thing():
    plan = PLANS["cpu"]
    base = lever_config("base", 0, plan)
    assert base.image_size == 64 and base.steps == plan.steps
    assert base.val_data == DataConfig(image_size=64)  # validation: the full distribution
    assert lever_config("size96", 0, plan).image_size == 96
    assert lever_config("size96", 0, plan).val_data.image_size == 96
    subtle = lever_config("subtle", 0, plan)
    assert subtle.data.strong_share == 0 and subtle.val_data.strong_share > 0
    assert not lever_config("no_fusion", 0, plan).net.fusion_enabled
    assert not lever_config("single_task", 1, plan).loss.multi_task
    assert base.net.backbone.widths == (8, 16, 32, 64, 128)
    assert lever_config("wide", 0, plan).net.backbone.widths == (16, 32, 64, 128, 256)
    assert lever_config("wide", 0, plan).net.backbone.convs_per_block == (1, 1, 2, 2, 2)
    assert lever_config("pool", 0, plan).train_pool == 4096
    seeded = lever_config("base", 2, plan)
    assert (seeded.seed, seeded.train_seed) == (2, 1002)
    assert all(len(lever.seeds) >= 2 for lever in LEVERS.values())


def test_student_t_quantiles():
    from e2far_lite.studies.recipe import _t95

    assert _t95(2) == pytest.approx(12.706) and _t95(3) == pytest.approx(4.303)
    assert _t95(12) >= 2.201  # between tabulated counts: never narrower than the truth
    assert _t95(100) == pytest.approx(1.96)
    with pytest.raises(ValueError, match="n: expected at least 2"):
        _t95(1)


def test_verdicts():
    assert verdict(0.2, 0.1) == "yes"
    assert verdict(-0.2, 0.1) == "no, the opposite"
    assert verdict(0.05, 0.1) == "no detectable effect at this scale"
    assert verdict(0.2, math.nan).startswith("not measured")


@pytest.mark.slow
def test_smoke_study_runs_resumes_and_plots(tmp_path):
    out = tmp_path / "study.json"
    kwargs = dict(plan="smoke", levers=("base", "no_fusion"), runs_dir=tmp_path / "runs",
                  cache_dir=str(tmp_path / "cache"), progress=False)
    results = run_study(out, **kwargs)
    assert sorted(results["runs"]) == ["base/seed0", "base/seed1", "base/seed2",
                                       "no_fusion/seed0", "no_fusion/seed1", "no_fusion/seed2"]
    run = results["runs"]["base/seed0"]
    assert [p["faces"] for p in run["curve"]] == [0, 8, 16]
    assert run["test"]["network"]["total_sim_mm"] > 0
    assert json.loads(out.read_text())["runs"].keys() == results["runs"].keys()
    stamp = out.stat().st_mtime_ns
    run_study(out, **kwargs)  # everything is there: nothing retrains, nothing is rewritten
    assert out.stat().st_mtime_ns == stamp
    table = summary(results, "expression_mm")
    assert table["no_fusion"]["seeds"] == 3 and "vs_base_ci95" in table["no_fusion"]
    rows = {row["lever"]: row for row in claims(results)}
    assert rows["single_task"]["verdict"] == "not run"
    assert rows["no_fusion"]["verdict"] in ("yes", "no, the opposite",
                                            "no detectable effect at this scale")
    fig = plot_study(results, tmp_path / "study.png")
    assert (tmp_path / "study.png").stat().st_size > 1000 and len(fig.axes) == 2


@pytest.mark.slow
def test_a_study_shared_between_processes_merges_into_one(tmp_path):
    kwargs = dict(plan="smoke", levers=("base", "no_fusion"), runs_dir=tmp_path / "runs",
                  cache_dir=str(tmp_path / "cache"), progress=False)
    first = run_study(tmp_path / "a.json", only=("base/seed0", "no_fusion/seed0"), **kwargs)
    assert sorted(first["runs"]) == ["base/seed0", "no_fusion/seed0"]
    torch.set_num_threads(first["threads"])  # numba's thread pool may have changed them
    second = run_study(tmp_path / "b.json", seeds=(1,), **kwargs)  # replaces each lever's seeds
    merged = merge_studies([first, second])
    assert sorted(merged["runs"]) == ["base/seed0", "base/seed1", "no_fusion/seed0",
                                      "no_fusion/seed1"]
    assert merged["settings"] == first["settings"] and "vs_base" in summary(merged)["no_fusion"]
    with pytest.raises(ValueError, match=r"parts\[1\]: expected runs no other part has, "
                                         r"got \['base/seed0', 'no_fusion/seed0'\] again"):
        merge_studies([first, first])
    other = dict(second, plan="cpu")
    with pytest.raises(ValueError, match=r"parts\[1\]: expected plan 'smoke' like parts\[0\], "
                                         r"got 'cpu'"):
        merge_studies([first, other])
    with pytest.raises(ValueError, match=r"only: expected runs among .*, got \['wide/seed0'\]"):
        run_study(tmp_path / "c.json", only=("wide/seed0",), **kwargs)
    with pytest.raises(ValueError, match="parts: expected at least one study"):
        merge_studies([])


@pytest.mark.parametrize("seeds", [(), (-1,), (0, 1.5), (True,)])
def test_a_study_names_bad_seeds(tmp_path, seeds):
    with pytest.raises(ValueError, match=r"seeds: expected whole numbers >= 0, got"):
        run_study(tmp_path / "s.json", plan="smoke", levers=("base",), seeds=seeds)
    assert not (tmp_path / "s.json").exists()


def test_the_long_ablation_plan_triples_the_faces():
    long, short = PLANS["cpu-long"], PLANS["cpu"]
    assert long.steps * long.batch_size == 3 * short.steps * short.batch_size == 120_000
    assert (long.image_size, long.val_size, long.test_size) == (64, 256, 256)


def test_the_96_px_ablation_plan_changes_only_the_input_size():
    assert PLANS["cpu-96"] == dataclasses.replace(PLANS["cpu"], image_size=96)
    config = lever_config("no_fusion", 0, PLANS["cpu-96"])
    assert config.image_size == 96 and not config.net.fusion_enabled


def test_committed_study_has_every_lever_and_the_docs_show_its_figures():

    root = REPO_ROOT
    study = json.loads((root / "experiments" / "recipe_study.json").read_text())
    results = (root / "docs" / "results.md").read_text()
    total, expression = summary(study, "total_sim_mm"), summary(study, "expression_mm")
    assert set(total) == set(LEVERS)  # every lever was run
    for name, row in total.items():
        assert row["seeds"] >= 2, name
        assert f"| {row['mean']:.3f} ± {row['std']:.3f} mm |" in results, name
        assert f"{expression[name]['mean']:.3f} ± {expression[name]['std']:.3f} mm" in results, name


@pytest.mark.parametrize(("name", "seeds"), [("ablation_study.json", 6),
                                             ("ablation_study_96px.json", 5)])
def test_committed_ablations_have_their_seeds_and_the_docs_state_each_claim(name, seeds):

    root = REPO_ROOT
    study = json.loads((experiments_dir() / name).read_text())
    results = (root / "docs" / "results.md").read_text()
    rows = summary(study, "expression_mm")
    assert {lever: row["seeds"] for lever, row in rows.items()} == dict.fromkeys(
        ("base", "no_fusion", "single_task"), seeds)
    for row in claims(study):
        assert f"{row['difference_mm']:+.3f} ± {row['ci95_mm']:.3f} mm" in results, row["claim"]


def test_plot_claims_draws_each_studys_differences_with_their_intervals():
    study = json.loads((experiments_dir() / "ablation_study_96px.json").read_text())
    rows = claims(study)
    fig = plot_claims({"one": study, "again": study})
    ax = fig.axes[0]
    assert len(ax.containers) == 2  # an errorbar set per study
    for bars in ax.containers:
        assert list(bars.lines[0].get_xdata()) == pytest.approx(
            [row["difference_mm"] for row in rows])
    assert [t.get_text() for t in ax.get_yticklabels()] == [row["claim"] for row in rows]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one", "again"]
