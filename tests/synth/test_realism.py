"""The realism levers: off means unchanged faces; on, they change pixels and never labels."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from e2far_lite.synth import realism
from e2far_lite.synth.faces import DataConfig, SyntheticFaces, draw_layout

SIZE = 64


def _faces(model, **levers):
    return SyntheticFaces(model, 32, seed=7, config=DataConfig(image_size=SIZE, **levers))


def test_levers_off_draw_nothing_and_keep_the_faces(default_model):
    plain = DataConfig(image_size=SIZE)
    _, uniform = draw_layout(default_model, plain)
    assert uniform["realism"].stop - uniform["realism"].start == 0
    _, with_levers = draw_layout(default_model, DataConfig(image_size=SIZE, jpeg=0.5))
    assert with_levers["realism"].stop - with_levers["realism"].start == sum(
        realism.UNIFORMS.values())
    # every draw before the levers' block sits where it did
    assert {k: v for k, v in with_levers.items() if k != "realism"} == \
        {k: v for k, v in uniform.items() if k != "realism"}


@pytest.mark.parametrize("lever", realism.LEVERS)
def test_each_lever_changes_pixels_not_labels(default_model, lever):
    plain = _faces(default_model).batch(range(8))
    changed = _faces(default_model, **{lever: 1.0}).batch(range(8))
    assert not torch.equal(plain["image"], changed["image"])
    for key in plain:
        if key != "image":
            torch.testing.assert_close(plain[key], changed[key], equal_nan=True, msg=key)
    image = changed["image"]
    assert image.shape == (8, 3, SIZE, SIZE) and 0 <= image.min() and image.max() <= 1
    assert torch.equal(torch.round(image * 255) / 255, image)  # 8-bit steps, like a photo
    again = _faces(default_model, **{lever: 1.0}).batch(range(8))
    assert torch.equal(image, again["image"])  # a pure function of (seed, index)


def test_share_is_the_fraction_of_faces_changed(default_model):
    plain = _faces(default_model).batch(range(32))["image"]
    half = _faces(default_model, low_res=0.5).batch(range(32))["image"]
    changed = (plain != half).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.8


def test_fill_interior_paints_enclosed_holes_only():
    mask = torch.zeros(1, 1, 40, 40)
    mask[0, 0, 5:35, 5:35] = 1
    mask[0, 0, 25:29, 15:25] = 0  # an enclosed hole below the eyes: the mouth
    mask[0, 0, 0:3, 0:3] = 0
    image = torch.full((1, 3, 40, 40), 0.5) * mask
    landmarks = torch.zeros(1, 68, 2)
    landmarks[0, 36:42] = torch.tensor([12.0, 12.0])
    landmarks[0, 42:48] = torch.tensor([28.0, 12.0])
    landmarks[0, 36, 0], landmarks[0, 39, 0] = 9.0, 15.0
    landmarks[0, 60:68] = torch.tensor([20.0, 27.0])
    u = torch.full((1, 5), 0.5)
    u[0, 0] = 0.0
    filled, new_mask = realism.fill_interior(image, mask, landmarks, u, share=1.0)
    assert bool((new_mask[0, 0, 25:29, 15:25] == 1).all())
    assert float(new_mask[0, 0, 0:3, 0:3].sum()) == 0  # open to the border: not a hole
    mouth = filled[0, :, 27, 20]
    assert mouth[0] > mouth[1] and float(mouth.max()) < 0.5  # dark red, not the skin
    untouched, same_mask = realism.fill_interior(image, mask, landmarks, u, share=0.0)
    assert torch.equal(untouched, image) and torch.equal(same_mask, mask)


def test_filled_is_scipys_fill_holes():
    rng = np.random.default_rng(3)
    for density in (0.3, 0.5, 0.7, 0.9):  # speckled masks: many holes, some at the border
        for _ in range(20):
            face = rng.random((rng.integers(1, 40), rng.integers(1, 40))) < density
            assert np.array_equal(realism.filled(face), ndimage.binary_fill_holes(face))
    assert realism.filled(np.ones((5, 5), bool)).all()
    assert not realism.filled(np.zeros((5, 5), bool)).any()
    assert np.array_equal(realism.filled(face.astype(np.uint8)), ndimage.binary_fill_holes(face))
    assert realism.filled(np.zeros((0, 4), bool)).shape == (0, 4)


def test_feature_weights_are_computed_once_per_template(default_model, monkeypatch):
    mean, ids = default_model.mean.float(), default_model.landmarks
    fresh = realism._feature_weights(mean.cpu(), ids.cpu().long())
    calls = []

    def counted(*args):
        calls.append(1)
        return fresh

    monkeypatch.setattr(realism, "_FEATURE_WEIGHTS", {})
    monkeypatch.setattr(realism, "_feature_weights", counted)
    first = realism.feature_weights(mean, ids)
    first[0].zero_()  # a caller's change to its copy reaches neither the cache nor others
    again = realism.feature_weights(mean.clone(), ids.clone())  # the same bytes: reused
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(again, fresh, strict=True))
    realism.feature_weights(mean * 1.5, ids)  # another template: computed for it
    assert len(calls) == 2


def test_paint_features_changes_brows_and_lips_only(default_model):
    mean, ids = default_model.mean.float(), default_model.landmarks
    brows, lips = realism.feature_weights(mean, ids)
    albedo = torch.rand(4, len(mean), 3, generator=torch.Generator().manual_seed(1))
    u = torch.rand(4, 4, generator=torch.Generator().manual_seed(2))
    u[:2, 0], u[2:, 0] = 0.0, 1.0  # the first two faces painted, the last two not
    out = realism.paint_features(albedo, mean, ids, u, share=0.5)
    painted = (brows > 0) | (lips > 0)
    assert torch.equal(out[:, ~painted], albedo[:, ~painted]) and torch.equal(out[2:], albedo[2:])
    assert bool((out[:2, painted] != albedo[:2, painted]).any(-1).all())


def test_jpeg_matches_pillow_at_its_quality():
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    image = torch.round(image * 255) / 255
    u = torch.ones(1, sum(realism.UNIFORMS.values()))
    draws = realism.lever_draws(u)
    draws["jpeg"][0] = torch.tensor([0.0, 0.5])  # on, quality 15 + 75 * 0.5 = 52
    out = realism.degrade(image, u, {"jpeg": 1.0})
    buffer = io.BytesIO()
    pixels = (image[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=52)
    expected = np.asarray(Image.open(buffer).convert("RGB"))
    assert torch.equal(out[0], torch.from_numpy(expected.copy()).permute(2, 0, 1).float() / 255)


def test_bad_shares_are_refused():
    with pytest.raises(ValueError, match=r"jpeg: expected a fraction in \[0, 1\], got 1.5"):
        DataConfig(jpeg=1.5)
    with pytest.raises(ValueError, match="interior"):
        DataConfig(interior=-0.1)
