"""The realism study: its configs, its bookkeeping, and the committed figures in the docs."""

from __future__ import annotations

import json

import pytest

from e2far_lite.paths import REPO_ROOT
from e2far_lite.studies.realism import STUDY_LEVERS, collect, study_config, summary
from e2far_lite.synth.realism import LEVERS

ROOT = REPO_ROOT


def test_each_run_changes_only_its_levers():
    control = study_config("control", "init.pt", seed=1)
    assert control.init == "init.pt" and control.val_data is not None
    assert all(getattr(control.data, name) == 0 for name in LEVERS)
    jpeg = study_config("jpeg", "init.pt", seed=1)
    assert jpeg.data.jpeg == 0.5
    assert all(getattr(jpeg.data, name) == 0 for name in LEVERS if name != "jpeg")
    assert set(STUDY_LEVERS["all"]) == set(LEVERS)  # "all" has every lever
    with pytest.raises(ValueError, match="lever: expected one of"):
        study_config("hair", "init.pt", seed=1)


def _record(lever: str, seed: int, nme: float) -> dict:
    return {"lever": lever, "seed": seed, "real_nme_pct": {"detected": nme, "landmarks": nme - 1},
            "synthetic": {"total_sim_mm": 3.0, "expression_mm": 1.5, "nme_pct": 2.0}}


def test_collect_compares_each_run_with_the_control_of_its_seed(tmp_path):
    for lever, seed, nme in (("control", 1, 6.0), ("control", 2, 7.0), ("jpeg", 1, 5.5),
                             ("jpeg", 2, 7.1)):
        folder = tmp_path / "runs" / f"{lever}-seed{seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(_record(lever, seed, nme)))
    results = collect(tmp_path / "runs", tmp_path / "study.json")
    assert json.loads((tmp_path / "study.json").read_text()) == results
    row = summary(results)["jpeg"]
    assert row["seeds"] == 2 and row["vs_control_seeds"] == pytest.approx([-0.5, 0.1])
    assert row["vs_control"] == pytest.approx(-0.2) and row["real_nme_pct"] == pytest.approx(6.3)


def test_committed_study_has_every_lever_and_the_docs_show_its_figures():
    study = json.loads((ROOT / "experiments" / "realism_study.json").read_text())
    photos = (ROOT / "docs" / "real-photos.md").read_text()
    rows = summary(study)
    assert set(rows) == set(STUDY_LEVERS)
    for name, row in rows.items():
        assert row["seeds"] >= 2, name
        assert f"| {row['real_nme_pct']:.2f} % |" in photos, name
        if name != "control":
            assert f"{row['vs_control']:+.2f}" in photos, name
