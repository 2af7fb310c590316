"""Notebook 01's checks (e2far_lite/course/morphable_model.py): they pass the notebook's solutions
and refuse an unwritten or a wrong piece with a CheckFailed that says what differs."""

from __future__ import annotations

import pytest
import torch

from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.morphable_model import check_vertices_moved, random_blendshapes


def vertices_moved(blendshapes, threshold_mm=1.0):
    return (blendshapes.norm(dim=-1) > threshold_mm).sum(1)


def test_random_blendshapes_move_their_vertices_as_they_say():
    g = torch.Generator().manual_seed(0)
    for k in range(1, 9):
        threshold = 5 / 16 * k
        blend, expected = random_blendshapes(g, 4, 60, threshold, at_threshold=True)
        length = blend.norm(dim=-1)
        assert torch.equal((length > threshold).sum(1), expected)
        assert bool((length == threshold).any(1).all())  # planted in every blend shape
        # away from the planted ones, no length is within 5 % of the threshold
        near = ((length - threshold).abs() < 0.05 * threshold) & (length != threshold)
        assert not bool(near.any())


def test_the_solution_passes(capsys):
    check_vertices_moved(vertices_moved)
    assert capsys.readouterr().out.count("✓") == 1


def test_an_unwritten_stub_is_not_written_yet():
    def stub(blendshapes, threshold_mm=1.0):
        ...
    with pytest.raises(CheckFailed, match="not written yet"):
        check_vertices_moved(stub)


def test_wrong_counts_are_refused_saying_why():
    with pytest.raises(CheckFailed, match="include the vertices planted at exactly"):
        check_vertices_moved(lambda b, t=1.0: (b.norm(dim=-1) >= t).sum(1))
    with pytest.raises(CheckFailed, match="expected dtype torch.int64"):
        check_vertices_moved(lambda b, t=1.0: (b.norm(dim=-1) > t).float().sum(1))
    with pytest.raises(CheckFailed, match="sums over the blend shapes, not over the vertices"):
        check_vertices_moved(lambda b, t=1.0: (b.norm(dim=-1) > t).sum(0))
    with pytest.raises(CheckFailed, match="coordinates .* each on its own"):
        check_vertices_moved(lambda b, t=1.0: (b.abs() > t).sum((1, 2)))
    with pytest.raises(CheckFailed, match=r"threshold_mm=.*elements differ"):  # 1 mm hard-coded
        check_vertices_moved(lambda b, t=1.0: (b.norm(dim=-1) > 1.0).sum(1))
