"""Checks for notebook 01: the 3DMM forward, the expression PCA and the count of the vertices
each blend shape moves, written by the student."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..model.ict import expression_space
from ..model.morphable_model import MorphableModel
from .checks import CheckFailed, call, compare, fresh_generator, not_written, passed


def check_faces(faces: Callable, model: MorphableModel | None = None) -> None:
    """``faces(model, a_id, a_exp)`` -> (B, V, 3) mm must equal ``model(a_id, a_exp)`` to 1e-4 mm,
    on fresh random coefficients for batches of 1 and 5."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    for batch in (1, 5):
        a_id = torch.randn(batch, model.num_id, generator=g)
        a_exp = torch.randn(batch, model.num_exp, generator=g)
        # identity alone, then expression alone, before both: says which half is wrong
        zero_id, zero_exp = torch.zeros_like(a_id), torch.zeros_like(a_exp)
        what = f"faces(model, a_id, a_exp = 0) for a batch of {batch} (the identity part alone)"
        compare(call(faces, what, model, a_id, zero_exp), model(a_id, zero_exp), what,
                atol=1e-4, rtol=0)
        what = f"faces(model, a_id = 0, a_exp) for a batch of {batch} (the expression part alone)"
        compare(call(faces, what, model, zero_id, a_exp), model(zero_id, a_exp), what,
                atol=1e-4, rtol=0)
        what = f"faces(model, a_id, a_exp) for a batch of {batch}"
        compare(call(faces, what, model, a_id, a_exp), model(a_id, a_exp), what, atol=1e-4,
                rtol=0)
    passed("faces(model, a_id, a_exp) equals MorphableModel.forward on fresh random "
           "coefficients (batches of 1 and 5), to 1e-4 mm")


def check_expression_pca(pca: Callable, model: MorphableModel | None = None) -> None:
    """``pca(blendshapes, weights, num)`` -> (basis (E, V, 3), std (E,)) must span the same
    components as :func:`~e2far_lite.model.expression_space` (up to sign) with the same
    standard deviations, on fresh random mixtures of the model's blend shapes."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    weights = torch.rand(400, model.num_blendshapes, generator=g, dtype=torch.float64)
    weights = weights * (torch.rand(weights.shape, generator=g, dtype=torch.float64) < 0.1)
    num = 5
    blend = model.blendshapes.double()
    what = "expression_pca(blendshapes, weights, num=5)"
    result = call(pca, what, blend, weights, num)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{what}: expected a tuple (basis, std), got {type(result).__name__}")
    basis, std = result
    ref_basis, ref_std, _ = expression_space(blend, weights, num=num)
    compare(std, ref_std, f"{what}: std (mm)", atol=1e-3, rtol=1e-4)
    if not isinstance(basis, torch.Tensor):
        raise CheckFailed(f"{what}: expected basis to be a tensor, got {type(basis).__name__}")
    # each component up to its sign: compare |cosine| with 1
    got = basis.reshape(num, -1).double()
    ref = ref_basis.reshape(num, -1)
    compare(got.norm(dim=1), torch.ones(num, dtype=torch.float64), f"{what}: basis row norms",
            atol=1e-4, rtol=0)
    cosine = (torch.nn.functional.normalize(got, dim=1) * ref).sum(1).abs()
    compare(cosine, torch.ones(num, dtype=torch.float64),
            f"{what}: |cosine| of each component with the reference's", atol=1e-4, rtol=0)
    passed(f"{what} finds the reference's components (up to sign) and their std, on fresh "
           "random mixtures")


def random_blendshapes(g: torch.Generator, num: int, vertices: int, threshold: float,
                       at_threshold: bool = False) -> tuple[Tensor, Tensor]:
    """Blend shapes (N, V, 3) mm whose vertices move by known amounts, and the count (N,) int64
    of vertices each moves by more than ``threshold`` mm.

    Each offset points in a random direction; its length is drawn either above the threshold
    (1.05 to 3 times it) or below it (0 to 0.95 times), with a share of "above" that differs
    from one blend shape to the next. With ``at_threshold``, ``threshold`` must be a multiple
    of 5/16 mm: about a tenth of the vertices (at least one per blend shape) are then planted
    at exactly that length, as the offsets (3, 4, 0)·threshold/5 with their axes shuffled and
    signs flipped, whose length is exact in float32; they are not counted (they move by
    exactly, not more than, the threshold).
    """
    direction = torch.nn.functional.normalize(torch.randn(num, vertices, 3, generator=g), dim=-1)
    share = 0.1 + 0.8 * torch.rand(num, 1, generator=g)
    above = torch.rand(num, vertices, generator=g) < share
    u = torch.rand(num, vertices, generator=g)
    length = threshold * torch.where(above, 1.05 + 1.95 * u, 0.95 * u)
    offsets = direction * length[..., None]
    if at_threshold:
        planted = torch.rand(num, vertices, generator=g) < 0.1
        planted[:, 0] = True  # at least one in every blend shape
        above &= ~planted
        axes = torch.argsort(torch.rand(num, vertices, 3, generator=g), dim=-1)
        signs = torch.where(torch.rand(num, vertices, 3, generator=g) < 0.5, -1.0, 1.0)
        exact = torch.tensor([3.0, 4.0, 0.0]) * (threshold / 5)  # length threshold, exactly
        offsets = torch.where(planted[..., None], exact[axes] * signs, offsets)
    return offsets, above.sum(1)


def check_vertices_moved(vertices_moved: Callable) -> None:
    """``vertices_moved(blendshapes (N, V, 3) mm, threshold_mm=1.0)`` -> (N,) int64, the number
    of vertices each blend shape moves by more than ``threshold_mm``, on fresh random blend
    shapes whose offsets' lengths are drawn above or below the threshold (so the counts are
    known): with the default threshold, with a random one, and with vertices planted exactly at
    the threshold."""
    g = fresh_generator()
    num = int(torch.randint(3, 8, (), generator=g))
    vertices = int(torch.randint(40, 200, (), generator=g))
    # exact in float32, and far enough from 1 mm that a threshold written as 1 fails
    threshold = 5 / 16 * (1, 2, 4, 5, 6, 7, 8)[int(torch.randint(7, (), generator=g))]
    trials = (("with the default threshold (1 mm)", 1.0, False),
              (f"with threshold_mm={threshold:g}", threshold, False),
              (f"with threshold_mm={threshold:g}, some vertices moving by exactly "
               f"{threshold:g} mm", threshold, True))
    for label, mm, at_threshold in trials:
        blend, expected = random_blendshapes(g, num, vertices, mm, at_threshold)
        what = f"vertices_moved(blendshapes of shape {tuple(blend.shape)}) {label}"
        args = (blend,) if mm == 1.0 and not at_threshold else (blend, mm)
        got = call(vertices_moved, what, *args)
        not_written(got, what)
        if not isinstance(got, Tensor):
            raise CheckFailed(f"{what}: expected a torch.Tensor of counts, got "
                              f"{type(got).__name__}")
        if tuple(got.shape) != (num,):
            across = (" (a count per vertex: that sums over the blend shapes, not over the "
                      "vertices)" if tuple(got.shape) == (vertices,) else "")
            raise CheckFailed(f"{what}: expected shape ({num},), one count per blend shape, got "
                              f"{tuple(got.shape)}{across}")
        if got.dtype != torch.int64:
            raise CheckFailed(f"{what}: expected dtype torch.int64 (a count of vertices), got "
                              f"{got.dtype}")
        got = got.detach().cpu()
        if torch.equal(got, (blend.abs() > mm).sum((1, 2))) and not torch.equal(got, expected):
            raise CheckFailed(f"{what}: your counts are those of the coordinates (x, y and z "
                              "each on its own) over the threshold; a vertex moves by the "
                              "length of its whole (x, y, z) offset")
        if at_threshold and torch.equal(got, expected + (blend.norm(dim=-1) == mm).sum(1)):
            raise CheckFailed(f"{what}: your counts include the vertices planted at exactly "
                              f"{mm:g} mm; they move by the threshold, not by more than it")
        compare(got, expected, what)
    passed("vertices_moved counts the vertices each blend shape moves by more than the threshold,"
           " on fresh random blend shapes (default and random thresholds, and vertices planted "
           "exactly at the threshold)")


__all__ = ["check_faces", "check_expression_pca", "check_vertices_moved", "random_blendshapes"]
