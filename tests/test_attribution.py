"""Tests of attribution.py on a tiny untrained network (64 px, a few channels) and a tiny model."""

from __future__ import annotations

import pytest
import torch
from helpers_models import tiny_model

from e2far_lite.analysis import attribution as A
from e2far_lite.model.metrics import vertex_rmse
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.nets.backbone import TAP_NAMES, BackboneConfig
from e2far_lite.nets.fusion import FusionConfig
from e2far_lite.nets.network import E2FARNet, NetConfig
from e2far_lite.synth.faces import DataConfig
from e2far_lite.train.losses import gram_matrix

NAMES = ("jawOpen", "mouthSmile_L", "eyeBlink_R", "browInnerUp_L")


def blend_model() -> MorphableModel:
    """tiny_model() with four named blend shapes (random offsets, in mm)."""
    m = tiny_model()
    g = torch.Generator().manual_seed(1)
    shapes = torch.randn(len(NAMES), m.num_vertices, 3, generator=g)
    return MorphableModel(m.mean, m.id_basis, m.id_std, m.exp_basis, m.exp_std, m.triangles,
                          m.landmarks, blendshapes=shapes, blendshape_names=NAMES)


def tiny_net(model: MorphableModel, **changes) -> E2FARNet:
    torch.manual_seed(0)
    config = NetConfig(backbone=BackboneConfig(widths=(4, 8, 8, 16, 16)),
                       fusion=FusionConfig(width=8, hidden=16), image_size=64, id_hidden=16,
                       exp_hidden=16, pose_hidden=8, **changes)
    net = E2FARNet(model.num_id, model.num_exp, config)
    # untrained heads start near 0; give them a voice so outputs depend on the input
    for head in (net.id_head, net.fusion.head if net.fusion is not None else net.exp_head):
        if head is not None:
            torch.nn.init.normal_(head[-1].weight, std=0.3)
    return net.eval()


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return blend_model()


@pytest.fixture(scope="module")
def net(model) -> E2FARNet:
    return tiny_net(model)


@pytest.fixture(scope="module")
def batch(model) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {"image": torch.rand(3, 3, 64, 64, generator=g),
            "a_id": torch.randn(3, model.num_id, generator=g),
            "a_exp": torch.randn(3, model.num_exp, generator=g)}


# ------------------------------------------------------------------------------- targets
def test_targets_match_the_slow_definitions(model):
    a_id, a_exp = torch.randn(5, model.num_id), torch.randn(5, model.num_exp)
    offset = model.expression_offset(a_exp)
    rms_exp = offset.pow(2).sum(-1).mean(1).sqrt()
    neutral = model.neutral(a_id) - model.mean
    rms_id = neutral.pow(2).sum(-1).mean(1).sqrt()
    torch.testing.assert_close(A.target_function(model, "expression")(a_id, a_exp), rms_exp,
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(A.target_function(model, "identity")(a_id, a_exp), rms_id,
                               rtol=1e-4, atol=1e-4)
    weights = model.exp_to_blendshapes(a_exp)
    torch.testing.assert_close(A.target_function(model, "eyeBlink_R")(a_id, a_exp),
                               weights[:, NAMES.index("eyeBlink_R")], rtol=1e-4, atol=1e-5)


def test_vertex_errors_match_vertex_rmse(net, batch, model):
    errors = A.vertex_errors(net, batch, model)
    with torch.no_grad():
        pred = net(batch["image"])
    exp = vertex_rmse(model.expression_offset(pred["a_exp"]),
                      model.expression_offset(batch["a_exp"]), align=False).mean()
    ident = vertex_rmse(model.neutral(pred["a_id"]), model.neutral(batch["a_id"]),
                        align=False).mean()
    assert errors["expression"] == pytest.approx(float(exp), rel=1e-4)
    assert errors["identity"] == pytest.approx(float(ident), rel=1e-4)


# -------------------------------------------------------------------------- tap ablation
def test_tap_ablation_keys_and_identity_untouched(net, batch, model):
    for mode in A.ABLATION_MODES:
        result = A.tap_ablation(net, batch, model, mode=mode)
        assert list(result) == ["pool4", "pool5"]
        for change in result.values():
            assert set(change) == {"expression", "identity"}
            assert change["identity"] == 0.0  # the neutral branch never reads the fusion CNN
    zero = A.tap_ablation(net, batch, model)
    assert any(abs(change["expression"]) > 0 for change in zero.values())


def test_tap_ablation_zero_matches_tap_scale(net, batch, model):
    reference = A.vertex_errors(net, batch, model)
    silenced = A.vertex_errors(net, batch, model, tap_scale={"pool4": 0.0})
    change = A.tap_ablation(net, batch, model)["pool4"]["expression"]
    assert change == pytest.approx(silenced["expression"] - reference["expression"], abs=1e-5)


def test_disconnected_tap_has_no_effect(net, batch, model):
    off = {"pool4": 0.0}
    ablation = A.tap_ablation(net, batch, model, tap_scale=off)
    assert ablation["pool4"] == {"expression": 0.0, "identity": 0.0}
    assert ablation["pool5"]["expression"] != 0.0
    shares = A.tap_attribution(net, batch["image"], model, tap_scale=off)
    assert shares == {"pool4": 0.0, "pool5": 1.0}
    # all taps off: the expression no longer depends on the image at all
    dead = A.layer_attribution(net, batch["image"], model, "expression",
                               tap_scale={"pool4": 0.0, "pool5": 0.0})
    assert all(value == 0.0 for value in dead.values())


def test_mean_ablation_of_identical_images_changes_nothing(net, batch, model):
    same = {k: v[:1].expand(4, *v.shape[1:]).clone() for k, v in batch.items()}
    for change in A.tap_ablation(net, same, model, mode="mean").values():
        assert change["expression"] == pytest.approx(0.0, abs=1e-5)


# ---------------------------------------------------------------------- layer attribution
def test_layer_attribution_shares(net, batch, model):
    for target in ("expression", "identity", "jawOpen"):
        shares = A.layer_attribution(net, batch["image"], model, target)
        assert list(shares) == list(TAP_NAMES)
        assert all(v >= 0 for v in shares.values())
        assert sum(shares.values()) == pytest.approx(1.0)
    raw = A.layer_attribution(net, batch["image"], model, normalize=False, layers=("pool2",))
    assert list(raw) == ["pool2"] and raw["pool2"] > 0


def test_grad_x_act_equals_the_sub_network_gradient(net, batch, model):
    """One backward through the whole net == the gradient of the sub-network from each tap."""
    images = batch["image"]
    raw = A.layer_attribution(net, images, model, "mouthSmile_L", normalize=False)
    fn = A.target_function(model, "mouthSmile_L")
    with torch.no_grad():
        features = net.backbone(images)
    for layer in ("pool3", "pool4", "pool5"):
        act = features[layer].clone().requires_grad_(True)
        out = A.forward_from(net, layer, act, features)
        grad, = torch.autograd.grad(fn(out["a_id"], out["a_exp"]).sum(), act)
        assert raw[layer] == pytest.approx(float((grad * act).detach().abs().sum()), rel=1e-4)


def test_per_sample_rows_add_up_to_the_batch(net, batch, model):
    images = batch["image"]
    rows = A.per_sample_attribution(net, images, model, "jawOpen")
    assert rows.shape == (3, len(TAP_NAMES))
    whole = A.layer_attribution(net, images, model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows.sum(0), torch.tensor(list(whole.values()),
                                                         dtype=rows.dtype), rtol=1e-5, atol=0)
    alone = A.layer_attribution(net, images[1:2], model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows[1], torch.tensor(list(alone.values()), dtype=rows.dtype),
                               rtol=1e-4, atol=0)


@pytest.mark.parametrize("layer,target", [("pool2", "identity"), ("pool4", "expression"),
                                          ("pool5", "browInnerUp_L")])
def test_integrated_gradients_completeness(net, batch, model, layer, target):
    ig = A.integrated_gradients(net, batch["image"], model, layer, target, steps=32)
    with torch.no_grad():
        features = net.backbone(batch["image"])
    assert ig.attributions.shape == features[layer].shape
    gap = ig.value - ig.baseline_value
    assert float(gap.abs().max()) > 1e-4  # something to explain
    total = ig.attributions.sum((1, 2, 3))
    torch.testing.assert_close(total, gap, rtol=0.05, atol=0.02 * float(gap.abs().max()))


def test_integrated_gradients_layer_attribution(net, batch, model):
    shares = A.layer_attribution(net, batch["image"][:2], model, "identity",
                                 method="integrated_gradients", steps=4,
                                 layers=("pool4", "pool5"))
    assert list(shares) == ["pool4", "pool5"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_attribution_restores_training_mode(model, batch):
    net = tiny_net(model).train()
    A.layer_attribution(net, batch["image"], model)
    A.tap_ablation(net, batch, model)
    assert net.training


# ------------------------------------------------------------------------- linear probes
def test_probe_r2_on_linear_and_random_targets():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 12, generator=g)
    y = x @ torch.randn(12, 4, generator=g) + 2.0
    assert A.probe_r2(x, y, ridge=1e-6) == pytest.approx(1.0, abs=1e-4)
    assert A.probe_r2(x, y) > 0.99  # ridge chosen from the default candidates
    noise = torch.randn(200, 4, generator=g)
    assert A.probe_r2(x, noise) < 0.2


def test_linear_probes_recover_a_linear_target(net, model):
    g = torch.Generator().manual_seed(4)
    images = torch.rand(64, 3, 64, 64, generator=g)
    pooled = A.pooled_features(net, images, grid=2)
    assert pooled["pool3"].shape == (64, 8 * 4)
    batch = {"image": images,
             "a_exp": pooled["pool3"] @ torch.randn(32, model.num_exp, generator=g),
             "a_id": torch.randn(64, model.num_id, generator=g)}
    probes = A.linear_probes(net, batch, model, ridge=1e-6)
    assert list(probes) == list(TAP_NAMES)
    assert probes["pool3"]["expression"] == pytest.approx(1.0, abs=1e-3)
    assert probes["pool3"]["identity"] < 0.5  # random targets are not readable
    assert A.best_layer(probes, "expression") == "pool3"


def test_layer_answers_and_their_comparison(net, model):
    g = torch.Generator().manual_seed(5)
    images = torch.rand(64, 3, 64, 64, generator=g)
    pooled = A.pooled_features(net, images, grid=2)
    faces = {"image": images,
             "a_exp": pooled["pool3"] @ torch.randn(32, model.num_exp, generator=g),
             "a_id": torch.randn(64, model.num_id, generator=g)}
    answers = A.layer_answers(net, model, faces, attribution_faces=8)
    assert answers["best_probe"]["expression"] == "pool3"
    costs = answers["ablation"]["costs_mm"]
    assert answers["ablation"]["first"] == max(costs, key=costs.get)
    depth = answers["depth"]
    assert depth["earlier"] == min(("expression", "identity"), key=depth.get)
    assert all(A.same_answers(answers, answers).values())
    other = {**answers, "depth": {**depth, "earlier": "other"}}
    assert A.same_answers(answers, other) == {"ablation": True, "depth": False,
                                              "best_probe/expression": True,
                                              "best_probe/identity": True}


def test_vertex_space_r2_matches_the_explicit_offsets(model):
    g = torch.Generator().manual_seed(6)
    truth, guess = torch.randn(30, model.num_exp, generator=g), torch.randn(30, model.num_exp,
                                                                          generator=g)
    gram = gram_matrix(model.exp_basis, model.exp_std).double()
    r2 = A._r2(guess.double(), truth.double(), gram)
    offsets, guessed = model.expression_offset(truth), model.expression_offset(guess)
    explicit = 1 - (guessed - offsets).pow(2).sum() / (offsets - offsets.mean(0)).pow(2).sum()
    assert r2 == pytest.approx(float(explicit), rel=1e-4)


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs_name_the_argument(net, batch, model):
    images = batch["image"]
    with pytest.raises(ValueError, match="images: expected shape"):
        A.layer_attribution(net, torch.rand(2, 3, 32, 32), model)
    with pytest.raises(TypeError, match="net: expected an E2FARNet"):
        A.layer_attribution(torch.nn.Linear(2, 2), images, model)
    with pytest.raises(ValueError, match="target: expected one of"):
        A.layer_attribution(net, images, model, target="smile")
    with pytest.raises(ValueError, match="method: expected one of"):
        A.layer_attribution(net, images, model, method="saliency")
    with pytest.raises(ValueError, match="layers: expected names"):
        A.layer_attribution(net, images, model, layers=("conv3",))
    with pytest.raises(ValueError, match="layer: expected one of"):
        A.integrated_gradients(net, images, model, "pool6")
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        A.integrated_gradients(net, images, model, "pool5", steps=0)
    with pytest.raises(ValueError, match="mode: expected one of"):
        A.tap_ablation(net, batch, model, mode="noise")
    with pytest.raises(ValueError, match="tap_scale: expected keys"):
        A.tap_ablation(net, batch, model, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match=r"batch: expected keys"):
        A.tap_ablation(net, {"image": images}, model)
    with pytest.raises(ValueError, match="model: expected K="):
        A.tap_ablation(net, batch, tiny_model(num_id=3))
    with pytest.raises(ValueError, match="net: expected a network with a fusion CNN"):
        A.tap_ablation(tiny_net(model, fusion_enabled=False), batch, model)
    with pytest.raises(ValueError, match="ridge: expected a positive number"):
        A.probe_r2(torch.randn(20, 3), torch.randn(20, 2), ridge=-1.0)
    with pytest.raises(ValueError, match="targets: expected shape"):
        A.probe_r2(torch.randn(20, 3), torch.randn(19, 2))
    with pytest.raises(ValueError, match="model: expected the MorphableModel"):
        A.linear_probes(net, batch)
    with pytest.raises(ValueError, match="gram: expected shape"):
        A.probe_r2(torch.randn(20, 3), torch.randn(20, 2), gram=torch.eye(3))
    with pytest.raises(ValueError, match="data: expected image_size 64"):
        A.probe_batch(net, model, DataConfig(image_size=128), num_samples=8)
    with pytest.raises(ValueError, match="target: expected one of"):
        A.best_layer({"pool5": {"expression": 1.0, "identity": 1.0}}, "pose")


def test_exercise_is_registered():
    from e2far_lite.exercises import SOLUTIONS

    assert "07_best_expression_layer" in SOLUTIONS
