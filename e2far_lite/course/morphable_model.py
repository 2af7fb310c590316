"""Checks for notebook 01: the 3DMM forward and the expression PCA, written by the student."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..model.ict import expression_space
from ..model.morphable_model import MorphableModel
from .checks import CheckFailed, call, compare, fresh_generator, passed


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


__all__ = ["check_faces", "check_expression_pca"]
