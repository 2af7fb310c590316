"""Checkpoints: weights-only loadable, exact round trip, float16 export, model checks; configs."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_models import tiny_model

from e2far_lite.nets.network import E2FARNet
from e2far_lite.synth.faces import DataConfig
from e2far_lite.train.checkpoint import (
    export_checkpoint,
    load_checkpoint,
    model_fingerprint,
    read_checkpoint,
    save_checkpoint,
)
from e2far_lite.train.configs import PRESETS, TrainConfig, config_differences, get_config


@pytest.fixture(scope="module")
def smoke_net(default_model):
    config = get_config("smoke")
    torch.manual_seed(0)
    net = E2FARNet(default_model.num_id, default_model.num_exp, config.net)
    with torch.no_grad():  # non-trivial BN statistics, so that they must be saved too
        net.train()(torch.rand(4, 3, 64, 64))
    return net.eval(), config


def test_save_load_gives_identical_outputs(tmp_path, default_model, smoke_net):
    net, config = smoke_net
    path = save_checkpoint(tmp_path / "a.pt", net, default_model, config, step=7,
                           history=[{"step": 7, "loss_total": 1.5}])
    loaded, model, loaded_config = load_checkpoint(path, device="cpu")
    assert not loaded.training
    assert loaded_config == config
    assert model_fingerprint(model) == model_fingerprint(default_model)
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        expected, got = net(images), loaded(images)
    for key in ("a_id", "a_exp", "pose"):
        assert torch.equal(expected[key], got[key]), key
    assert read_checkpoint(path)["history"] == [{"step": 7, "loss_total": 1.5}]


def test_checkpoint_loads_with_weights_only(tmp_path, default_model, smoke_net):
    net, config = smoke_net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    net(torch.rand(2, 3, 64, 64))["a_id"].sum().backward()
    optimizer.step()
    net.eval()
    path = save_checkpoint(tmp_path / "train.pt", net, default_model, config, step=1,
                           optimizer=optimizer, extra={"best_total_mm": float("inf")})
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == config.to_dict()
    assert "optimizer" in payload["train_state"]
    assert TrainConfig.from_dict(payload["config"]) == config
    exported = export_checkpoint(path, tmp_path / "export.pt")
    assert "train_state" not in torch.load(exported, weights_only=True)


def test_export_is_half_and_loads_as_float32(tmp_path, default_model, smoke_net):
    net, config = smoke_net
    src = save_checkpoint(tmp_path / "full.pt", net, default_model, config)
    dst = export_checkpoint(src, tmp_path / "small.pt")
    raw = read_checkpoint(dst)["net"]
    assert all(v.dtype == torch.float16 for v in raw.values() if v.is_floating_point())
    assert dst.stat().st_size < 0.7 * src.stat().st_size
    loaded, _, _ = load_checkpoint(dst, device="cpu")
    for name, value in loaded.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            assert torch.allclose(value, net.state_dict()[name], rtol=1e-3, atol=1e-4), name


def test_mismatched_model_is_refused(tmp_path, default_model, smoke_net):
    net, config = smoke_net
    path = save_checkpoint(tmp_path / "a.pt", net, default_model, config)
    with pytest.raises(ValueError, match="num_id 62 vs 5, num_exp 29 vs 4"):
        load_checkpoint(path, model=tiny_model(), device="cpu")
    # a checkpoint of another model is refused without that model, and loads with it
    small = tiny_model()
    small_net = E2FARNet(small.num_id, small.num_exp, config.net)
    path = save_checkpoint(tmp_path / "small.pt", small_net, small, config)
    with pytest.raises(ValueError, match="not the shipped default"):
        load_checkpoint(path, device="cpu")
    net2, model2, _ = load_checkpoint(path, model=small, device="cpu")
    assert net2.num_id == 5 and model2 is small
    with pytest.raises(ValueError, match="same size"):
        load_checkpoint(path, model=tiny_model(seed=1), device="cpu")


def test_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="e2far-lite checkpoint"):
        load_checkpoint(path, device="cpu")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", device="cpu")


def test_config_dict_round_trip_through_json():
    for name in PRESETS:
        config = get_config(name)
        again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config, name
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"stepz": 3})
    # an optional sub-config (the validation distribution) survives JSON too
    config = get_config("smoke", val_data=DataConfig(yaw_max=10.0))
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.validation_data.yaw_max == 10.0
    assert again.val_data.image_size == config.image_size
    plain = get_config("smoke")
    assert plain.val_data is None and plain.validation_data is plain.data
    config.val_data = DataConfig(image_size=128)  # edited after construction: refused
    with pytest.raises(ValueError, match="val_data.image_size: expected 64"):
        config.check_consistent()


def test_image_size_is_set_in_one_place():
    config = get_config("cpu-quick", image_size=96)
    assert config.net.image_size == config.loss.image_size == config.data.image_size == 96
    assert PRESETS["cpu-quick"].image_size != 96  # the preset itself is untouched
    config.net.image_size = 128
    with pytest.raises(ValueError, match="net.image_size: expected 96"):
        config.check_consistent()
    assert config_differences(get_config("smoke"), get_config("smoke", lr=1.0)) == \
        ["lr: 0.002 vs 1.0"]


@pytest.mark.parametrize("content, reason", [
    (b"", r"an empty file"),
    (b"hello, world", r"not a torch.save file \(text starting 'hello, world'\)"),
    (bytes([0x17, 0x98, 0x0E, 0xFF]), r"not a torch.save file \(binary data starting"),
    # a character that straddles the bytes read is still text
    (("a" * 63 + "é and more").encode(), r"not a torch.save file \(text starting 'aaaa"),
    ("half", r"the file is truncated or damaged"),
])
def test_a_file_that_is_no_checkpoint_says_what_it_is(tmp_path, content, reason):
    path = tmp_path / "c.pt"
    if content == "half":
        net = E2FARNet(3, 2, get_config("smoke").net)
        save_checkpoint(path, net, tiny_model(), get_config("smoke"))
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"^path: expected an e2far-lite checkpoint .*'c.pt', "
                                         f"refused: {reason}"):
        read_checkpoint(path)
