"""The ablation benchmark runs end to end in smoke mode and writes its table."""

import json
import math

import pytest

from e2far_lite.studies import ablation as benchmark
from e2far_lite.studies.ablation import PLANS, run_ablation, variant_config


def test_variants_differ_only_where_they_should():
    plan = PLANS["quick"]
    full = variant_config(plan, "full", 0)
    no_fusion = variant_config(plan, "no_fusion", 0)
    single = variant_config(plan, "single_task", 1)
    assert full.net.fusion_enabled and not no_fusion.net.fusion_enabled
    assert not single.net.multi_task and not single.loss.multi_task
    assert full.steps == no_fusion.steps == single.steps == plan.steps
    assert full.val_seed == single.val_seed  # seeds never move the validation faces
    assert full.seed != single.seed and full.train_seed == single.train_seed


@pytest.mark.slow
def test_smoke_ablation_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(PLANS, "smoke", benchmark.Plan("smoke", 8, (0, 1), 8, 4, 2))
    results = run_ablation("smoke", tmp_path, device="cpu", progress=False)
    table = (tmp_path / "results.md").read_text()
    saved = json.loads((tmp_path / "results.json").read_text())
    names = list(saved["rows"])
    assert names == ["mean shape", "fitting, true landmarks", "fitting, network's landmarks",
                     "E2FAR full", "E2FAR no_fusion", "E2FAR single_task"]
    for name in names:
        assert f"| {name} |" in table
        for key in ("total", "neutral", "expression", "nme"):
            assert math.isfinite(saved["rows"][name][key][0]), (name, key)
    assert len(results["runs"]["E2FAR full"]) == 2  # one per seed
    # fitting to the true landmarks must beat the mean shape on a noiseless synthetic face
    assert saved["rows"]["fitting, true landmarks"]["total"][0] < \
        saved["rows"]["mean shape"]["total"][0]
    with pytest.raises(ValueError, match="mode: expected one of"):
        run_ablation("huge", tmp_path)
