"""Checks for notebook 00: a first tensor function on faces, written by the student."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..model.morphable_model import MorphableModel
from .checks import call, compare, fresh_generator, passed


def check_face_extent(face_extent: Callable, model: MorphableModel | None = None) -> None:
    """``face_extent(vertices)``: (B, V, 3) mm -> (B, 3) the width, height and depth of each
    face in mm (largest minus smallest coordinate along x, y, z), on fresh random faces."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    for batch in (2, 3):
        vertices = model(torch.randn(batch, model.num_id, generator=g),
                         torch.randn(batch, model.num_exp, generator=g))
        what = f"face_extent(vertices) for a batch of {batch} faces (B, V, 3)"
        compare(call(face_extent, what, vertices), vertices.amax(1) - vertices.amin(1), what,
                atol=1e-4, rtol=0)
    passed("face_extent gives each face's width, height and depth in mm, on fresh random faces")


__all__ = ["check_face_extent"]
