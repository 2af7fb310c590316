"""The scalar outputs ("targets") that attribution shares out over the layers.

Per sample, in units the morphable model defines:

- ``"expression"``: RMS over vertices of the predicted expression offset,
  ``sqrt(a_expᵀ G_exp a_exp / V)`` in mm, with ``G = (U diag σ)ᵀ (U diag σ)`` the Gram matrix
  of the vertex loss (:func:`~e2far_lite.train.quadratic_vertex_loss`).
- ``"identity"``: the same for the neutral shape's offset from the mean face, ``a_id``, in mm.
- a blend-shape name such as ``"jawOpen"``: that shape's weight in the least-squares blend-shape
  reading of ``a_exp`` (:meth:`~e2far_lite.model.MorphableModel.exp_to_blendshapes`).

Letters: B batch, K identity and E expression coefficients, V vertices.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..model.morphable_model import MorphableModel
from ..train.losses import gram_matrix, quadratic_vertex_loss

TARGETS = ("expression", "identity")


def target_function(model: MorphableModel, target: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The scalar output ``target`` as a function ``(a_id (B, K), a_exp (B, E)) -> (B,)``.

    ``"expression"`` and ``"identity"``: RMS vertex offset in mm (see the module docstring);
    a blend-shape name: that shape's weight (unitless, 1 = the full blend shape).

    Examples:
        >>> model = MorphableModel.default()
        >>> rms = target_function(model, "expression")
        >>> float(rms(torch.zeros(1, model.num_id), torch.zeros(1, model.num_exp))) < 1e-2
        True
    """
    if not isinstance(target, str):
        raise TypeError(f"target: expected a str, got {type(target).__name__}")
    eps = 1e-6  # mm², keeps the square root differentiable at the mean face
    if target in TARGETS:
        basis, std = ((model.exp_basis, model.exp_std) if target == "expression"
                      else (model.id_basis, model.id_std))
        gram = gram_matrix(basis, std)
        num_v = model.num_vertices
        use_exp = target == "expression"

        def rms(a_id: Tensor, a_exp: Tensor) -> Tensor:
            a = a_exp if use_exp else a_id
            return (quadratic_vertex_loss(a, gram.to(a), num_v) + eps).sqrt()

        return rms
    if target not in model.blendshape_names:
        options = list(TARGETS) + list(model.blendshape_names[:4])
        more = ", ..." if model.num_blendshapes > 4 else ""
        raise ValueError(f"target: expected one of {options}{more} (a blend-shape name of the "
                         f"model), got {target!r}")
    # exp_to_blendshapes is linear in a_exp: precompute its (E, N) matrix, keep one column
    index = model.blendshape_names.index(target)
    with torch.no_grad():
        eye = torch.eye(model.num_exp, device=model.exp_basis.device)
        column = model.exp_to_blendshapes(eye)[:, index].clone()  # (E,)

    def weight(a_id: Tensor, a_exp: Tensor) -> Tensor:
        return a_exp @ column.to(a_exp)

    return weight


__all__ = ["TARGETS", "target_function"]
