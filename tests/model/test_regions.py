"""Face regions from the 68 landmarks: e2far_lite/model/regions.py."""

from __future__ import annotations

import pytest
import torch

from e2far_lite import MorphableModel
from e2far_lite.model.regions import REGION_NAMES, region_masks, vertex_regions

EYES, NOSE, MOUTH, CHEEKS, JAW = (REGION_NAMES.index(n) for n in
                                  ("eyes", "nose", "mouth", "cheeks", "jaw"))


def with_landmarks(model: MorphableModel, landmarks: torch.Tensor) -> MorphableModel:
    """The same model with another landmark table (the bases are shared, not copied)."""
    return MorphableModel(model.mean, model.id_basis, model.id_std, model.exp_basis,
                          model.exp_std, model.triangles, landmarks)


@pytest.fixture(scope="module")
def labels(default_model):
    return vertex_regions(default_model)


def test_labels_cover_every_vertex_with_every_region(default_model, labels):
    assert labels.shape == (default_model.num_vertices,)
    assert labels.dtype == torch.int64
    counts = torch.bincount(labels, minlength=len(REGION_NAMES))
    assert len(counts) == len(REGION_NAMES)
    # measured on the ICT model: eyes 1722, nose 1227, mouth 1329, cheeks 1675, jaw 753
    assert bool((counts > 200).all()), dict(zip(REGION_NAMES, counts.tolist(), strict=True))


def test_landmark_vertices_fall_in_their_own_region(default_model, labels):
    at = labels[default_model.landmarks]
    assert bool((at[36:48] == EYES).all()) and bool((at[17:27] == EYES).all())
    assert bool((at[27:36] == NOSE).all())
    assert bool((at[48:68] == MOUTH).all())
    assert int(at[8]) == JAW  # chin


def test_nose_is_around_the_nose_tip(default_model, labels):
    xy = default_model.mean[:, :2]
    tip = xy[default_model.landmarks[30]]
    near_tip = (xy - tip).norm(dim=1) < 8.0  # mm
    assert bool((labels[near_tip] == NOSE).all())
    nose = xy[labels == NOSE]
    assert abs(float(nose[:, 0].mean())) < 1.0  # symmetric about the midline
    assert float((nose - tip).norm(dim=1).max()) < 45.0  # bridge top to nostril rims


def test_mouth_is_around_the_lips(default_model, labels):
    xy = default_model.mean[:, :2]
    lips = xy[default_model.landmarks[48:68]]
    mouth = xy[labels == MOUTH]
    assert float((mouth.mean(0) - lips.mean(0)).norm()) < 5.0
    # every mouth vertex lies within a margin of the lips' box
    lo, hi = lips.min(0).values - 10.0, lips.max(0).values + 10.0
    assert bool(((mouth >= lo) & (mouth <= hi)).all())


def test_cheek_and_jaw_points(default_model, labels):
    xy = default_model.mean[:, :2]

    def label_at(x: float, y: float) -> int:
        return int(labels[(xy - torch.tensor([x, y])).norm(dim=1).argmin()])

    assert label_at(-45.0, 0.0) == CHEEKS and label_at(45.0, 0.0) == CHEEKS
    assert label_at(0.0, 80.0) == CHEEKS  # forehead counts as "cheeks" (the rest)
    assert label_at(-30.0, -70.0) == JAW and label_at(0.0, -90.0) == JAW


def test_undefined_group_gives_empty_region(default_model):
    landmarks = default_model.landmarks.clone()
    landmarks[27:36] = -1  # no nose landmarks
    labels = vertex_regions(with_landmarks(default_model, landmarks))
    counts = torch.bincount(labels, minlength=len(REGION_NAMES))
    assert int(counts[NOSE]) == 0
    assert bool((counts[[EYES, MOUTH, CHEEKS, JAW]] > 0).all())


def test_no_landmarks_means_all_cheeks(default_model):
    landmarks = torch.full((68,), -1, dtype=torch.int64)
    labels = vertex_regions(with_landmarks(default_model, landmarks))
    assert bool((labels == CHEEKS).all())


def test_other_models(small_model):
    # the ellipsoid test model defines landmarks 0..39 only (random vertices): no mouth
    labels = vertex_regions(small_model)
    assert labels.shape == (small_model.num_vertices,)
    assert int((labels == MOUTH).sum()) == 0
    assert int(labels.min()) >= 0 and int(labels.max()) < len(REGION_NAMES)


def test_region_masks_match_labels(default_model, labels):
    masks = region_masks(default_model, labels)
    assert tuple(masks) == REGION_NAMES
    stacked = torch.stack([masks[n] for n in REGION_NAMES])
    assert bool((stacked.sum(0) == 1).all())  # a partition
    assert bool((masks["jaw"] == (labels == JAW)).all())
