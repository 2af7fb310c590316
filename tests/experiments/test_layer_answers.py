"""experiments/layer_answers.json: notebook 07's answers on the shipped network, as the docs
state them, measured on the shipped file, and reproduced."""

import hashlib
import json

import pytest
from doc_text import doc_page

from e2far_lite.analysis import layer_answers, probe_batch
from e2far_lite.paths import data_dir, experiments_dir
from e2far_lite.train import pretrained
from e2far_lite.train.shipped import SHIPPED_FILE

RECORD = json.loads((experiments_dir() / "layer_answers.json").read_text())
FIRST, SECOND = RECORD["sets"].values()


def test_the_record_was_measured_on_the_shipped_checkpoint():
    shipped = (data_dir() / SHIPPED_FILE).read_bytes()
    assert RECORD["checkpoint_sha256_prefix"] == hashlib.sha256(shipped).hexdigest()[:12]
    assert [(s["seed"], s["probe_seed"], s["faces"]) for s in (FIRST, SECOND)] == [
        (7, 0, 768), (8, 1, 768)]  # notebook 07's two sets


def test_results_state_the_records_answers():
    text = " ".join(doc_page("results.md").split())

    def cost(answers, tap):
        return f"{answers['ablation']['costs_mm'][tap]:+.2f}"

    def depth(answers):
        return f"{answers['depth']['expression']:.2f} against {answers['depth']['identity']:.2f}"

    r2 = FIRST["best_probe"]["r2"]
    assert (f"costs the expression {cost(FIRST, 'pool4')} mm for pool4 and {cost(FIRST, 'pool5')}"
            f" mm for pool5 ({cost(SECOND, 'pool4')} / {cost(SECOND, 'pool5')} mm on another "
            f"768 faces)") in text
    assert f"(attribution depth {depth(FIRST)}, {depth(SECOND)} on the other faces)" in text
    assert (f"(held-out R² {r2['pool5']['expression']:.2f} for expression, "
            f"{r2['pool5']['identity']:.2f} for identity; {r2['pool4']['expression']:.2f} and "
            f"{r2['pool4']['identity']:.2f} at pool4)") in text
    assert "768 faces), and the identity nothing." in text
    # what the prose concludes holds on both sets of faces
    assert all(RECORD["same_answers"].values())
    for answers in (FIRST, SECOND):
        assert all(abs(cost) < 1e-4 for cost in answers["ablation"]["identity_costs_mm"].values())
    for answers in (FIRST, SECOND):
        assert answers["ablation"]["first"] == "pool5"
        assert answers["depth"]["earlier"] == "expression"
        assert answers["best_probe"]["expression"] == answers["best_probe"]["identity"] == "pool5"


@pytest.mark.slow
def test_the_first_set_reproduces(tmp_path, monkeypatch):
    monkeypatch.delenv("E2FAR_SMOKE", raising=False)
    net, model, config, _ = pretrained()
    faces = probe_batch(net, model, config.data, seed=FIRST["seed"], cache_dir=tmp_path)
    answers = layer_answers(net, model, faces, probe_seed=FIRST["probe_seed"])
    for tap, cost in FIRST["ablation"]["costs_mm"].items():
        assert answers["ablation"]["costs_mm"][tap] == pytest.approx(cost, abs=2e-3), tap
    for target in ("expression", "identity"):
        assert answers["depth"][target] == pytest.approx(FIRST["depth"][target], abs=1e-2)
        for layer, r2 in FIRST["best_probe"]["r2"].items():
            assert answers["best_probe"]["r2"][layer][target] == pytest.approx(
                r2[target], abs=5e-3), (layer, target)
