import warnings

import numpy as np
import pytest
import torch

from e2far_lite.render.camera import perspective_project, to_camera, weak_perspective_project
from e2far_lite.synth import faces as data_module
from e2far_lite.synth.faces import DataConfig, SyntheticFaces, cached_split

SMALL = DataConfig(image_size=64)


def test_same_seed_same_item(default_model):
    a = SyntheticFaces(default_model, 100, seed=3, config=SMALL)
    b = SyntheticFaces(default_model, 100, seed=3, config=SMALL)
    x, y = a.batch([7, 11]), b.batch([7, 11])
    for key in x:
        assert torch.equal(x[key], y[key]), key
    other = SyntheticFaces(default_model, 100, seed=4, config=SMALL).batch([7])
    assert not torch.equal(other["a_id"][0], x["a_id"][0])


def assert_same_faces(a: dict, b: dict) -> None:
    """Items rendered in different batches: the same faces up to float rounding (matrix
    products round differently for another batch size), i.e. labels to ~1e-5 and at most a
    few pixels one 8-bit step apart."""
    for key in a:
        if key == "image":
            diff = (a[key] - b[key]).abs()
            assert float(diff.max()) <= 1 / 255 + 1e-6
            assert float((diff > 0).float().mean()) < 1e-3
        elif a[key].dtype == torch.bool:
            assert float((a[key] != b[key]).float().mean()) < 0.02, key
        else:
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-5, equal_nan=True,
                                       msg=key)


def test_item_does_not_depend_on_its_batch(default_model):
    faces = SyntheticFaces(default_model, 100, seed=3)
    together = faces.batch([4, 5, 6])
    alone = faces[5]
    assert_same_faces(alone, {k: v[1] for k, v in together.items()})


def test_labels_are_exact(default_model):
    m = default_model
    faces = SyntheticFaces(m, 50, seed=0, config=SMALL)
    b = faces.batch(range(8))
    assert b["image"].shape == (8, 3, 64, 64) and b["image"].dtype == torch.float32
    assert float(b["image"].min()) >= 0 and float(b["image"].max()) <= 1
    # the stored camera reprojects the model's shape for the stored labels onto the landmarks
    pts = to_camera(m(b["a_id"], b["a_exp"]), b["pose"][:, :3], b["translation"])
    lm = perspective_project(pts[:, m.landmarks], b["focal"], b["centre"])
    assert torch.allclose(lm, b["landmarks"], atol=1e-3)
    # the weak-perspective pose label approximates it to about a pixel on a 64 px crop
    wp = weak_perspective_project(m.landmark_points(b["a_id"], b["a_exp"]), b["pose"])
    assert float((wp - b["landmarks"]).norm(dim=-1).mean()) < 1.5
    # landmarks fall inside the crop, and most are visible
    assert float(b["visible"].float().mean()) > 0.6
    inside = (b["landmarks"] > -2) & (b["landmarks"] < 66)
    assert bool(inside.all())


def test_expressions_and_neutral_share(default_model):
    faces = SyntheticFaces(default_model, 200, seed=1, config=DataConfig(
        image_size=32, neutral_share=0.5, backgrounds=False, augment=0.0))
    b = faces.batch(range(60))
    neutral = (b["a_exp"].abs().sum(1) == 0)
    assert 15 < int(neutral.sum()) < 45
    assert b["blend_weights"].shape == (60, 53)
    assert float(b["blend_weights"].max()) <= 1.0


def test_pose_ranges(default_model):
    config = DataConfig(image_size=32, backgrounds=False)
    b = SyntheticFaces(default_model, 300, seed=2, config=config).batch(range(120))
    deg = b["pose"][:, :3].abs().amax(0) * 180 / torch.pi
    assert deg[0] <= 75 and deg[0] > 60
    assert deg[1] <= 30 and deg[2] <= 20


def test_other_model_without_blendshapes(small_model):
    faces = SyntheticFaces(small_model, 20, seed=0, config=DataConfig(image_size=48))
    b = faces.batch(range(4))
    assert b["a_exp"].shape == (4, small_model.num_exp)
    assert b["blend_weights"].shape == (4, 0)
    assert not bool(b["visible"][:, 40:].any())  # undefined landmarks are never visible
    assert bool(torch.isnan(b["landmarks"][:, 40:]).all())
    assert float(b["image"].std()) > 0.01


def test_cache_reloads_identically_and_is_invalidated(tmp_path, default_model, monkeypatch):
    faces = SyntheticFaces(default_model, 10, seed=5, config=DataConfig(image_size=32))
    first = cached_split(faces, tmp_path, shard_size=4, batch_size=4)
    direct = faces.batch(range(10))
    again = cached_split(faces, tmp_path, shard_size=4)
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert_same_faces(first, direct)  # 8-bit images: nothing lost but rounding
    other = SyntheticFaces(default_model, 10, seed=6, config=DataConfig(image_size=32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same generator, another seed: no warning
        cached_split(other, tmp_path, shard_size=4)
    monkeypatch.setattr(data_module, "GENERATOR_VERSION", data_module.GENERATOR_VERSION + 1)
    with pytest.warns(UserWarning, match="older data generator"):
        cached_split(faces, tmp_path, shard_size=4)
    assert len(list(tmp_path.glob("split-*"))) == 3


@pytest.mark.parametrize("damage", ["meta", "shard", "short"])
def test_a_damaged_cache_is_rendered_again(tmp_path, default_model, damage):
    faces = SyntheticFaces(default_model, 6, seed=5, config=DataConfig(image_size=32))
    first = cached_split(faces, tmp_path, shard_size=4)
    folder = next(tmp_path.glob("split-*"))
    if damage == "meta":
        (folder / "meta.json").write_text('{"shards": [')
    elif damage == "shard":
        (folder / "shard-0001.pt").write_bytes(b"junk")
    else:  # a shard of another length
        torch.save({k: v[:1] for k, v in torch.load(folder / "shard-0001.pt").items()},
                   folder / "shard-0001.pt")
    with pytest.warns(UserWarning, match=f"cache {folder} is damaged .*rendering it anew"):
        again = cached_split(faces, tmp_path, shard_size=4)
    for key in first:
        assert torch.equal(first[key], again[key]), key
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mended: read back without a warning
        cached_split(faces, tmp_path, shard_size=4)


def test_numpy_integers_are_integers_and_masks_are_not_indices(default_model):
    faces = SyntheticFaces(default_model, np.int64(4), config=DataConfig(image_size=np.int64(32)))
    assert len(faces) == 4 and type(faces.config.image_size) is int
    with pytest.raises(TypeError, match="indices: expected integer item indices, got a boolean"):
        faces.batch(torch.tensor([True, False, True, True]))


def test_bad_data_input(default_model):
    with pytest.raises(ValueError, match="image_size: expected a positive integer, got 0"):
        DataConfig(image_size=0)
    with pytest.raises(ValueError, match="num_samples: expected a positive integer"):
        SyntheticFaces(default_model, 0)
    faces = SyntheticFaces(default_model, 5, config=SMALL)
    with pytest.raises(IndexError, match="index: expected 0 <= index < 5, got 5"):
        faces.batch([5])
