"""Build the default morphable model from the ICT Face Model Light ingredients.

The ingredients (``data/ict_face_model/ict_face_area.npz``, shipped with its MIT licence) hold the
raw model in cm: a neutral template, 100 identity modes and 53 named blend shapes. This module turns
them into a :class:`MorphableModel` step by step; notebook 01 walks through the same functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..paths import data_dir
from .expressions import sample_blendshape_weights
from .morphable_model import MorphableModel

CM_TO_MM = 10.0


def ict_ingredients_path() -> Path:
    """The ICT face-area ingredients shipped in ``data/ict_face_model/`` (MIT licence beside it)."""
    return data_dir() / "ict_face_model" / "ict_face_area.npz"


@dataclass
class ICTFaceArea:
    """The narrow face area of the ICT model, in mm, centred on the template's centroid.

    Shapes: ``neutral (V, 3)``, ``identity_modes (100, V, 3)`` offsets with weights ~ N(0, 1),
    ``blendshapes (53, V, 3)`` offsets with weights in [0, 1], ``triangles (F, 3)``,
    ``landmarks (68,)``; ``centre (3,)`` is what was subtracted (mm, source frame).
    """

    neutral: Tensor
    identity_modes: Tensor
    blendshapes: Tensor
    blendshape_names: list[str]
    triangles: Tensor
    landmarks: Tensor
    centre: Tensor


def quads_to_triangles(quads: Tensor) -> Tensor:
    """Split quads (F, 4) into triangles (2F, 3), keeping the winding; -1 pads a triangle."""
    first = quads[:, [0, 1, 2]]
    second = quads[:, [0, 2, 3]]
    second = second[quads[:, 3] >= 0]
    return torch.cat([first, second]).long()


def load_ict_face_area(path: str | os.PathLike | None = None) -> ICTFaceArea:
    """Read the ingredients npz and keep the narrow face area (6706 vertices), converted to mm."""
    path = Path(path) if path is not None else ict_ingredients_path()
    if not path.is_file():
        raise FileNotFoundError(f"path: expected the ICT face-area npz, got missing {str(path)!r}")
    with np.load(path, allow_pickle=False) as npz:
        num_v = int(npz["narrow_face_vertices"])
        num_f = int(npz["narrow_face_polygons"])
        neutral = torch.from_numpy(npz["neutral"][:num_v].astype(np.float64)) * CM_TO_MM
        identity = torch.from_numpy(npz["identity"][:, :num_v].astype(np.float64)) * CM_TO_MM
        blend = torch.from_numpy(npz["expression"][:, :num_v].astype(np.float64)) * CM_TO_MM
        names = [str(n) for n in npz["expression_names"]]
        quads = torch.from_numpy(npz["polygons"][:num_f].astype(np.int64))
        landmarks = torch.from_numpy(npz["landmarks_68"].astype(np.int64))
    centre = neutral.mean(0)
    return ICTFaceArea(neutral - centre, identity, blend, names, quads_to_triangles(quads),
                       landmarks, centre)


def orthonormal_basis(modes: Tensor, variance: float = 0.995) -> tuple[Tensor, Tensor, Tensor]:
    """Orthonormal basis and std of a Gaussian model ``Σ w_k modes[k]``, ``w ~ N(0, 1)``.

    With ``M = U S Vᵀ`` (modes flattened to (K, 3V)), ``wᵀM = (wᵀU) S Vᵀ`` and ``wᵀU ~ N(0, I)``,
    so the rows of ``Vᵀ`` are an orthonormal basis with standard deviations ``S``: the same
    distribution of faces, exactly. Keeps the fewest components reaching ``variance``.

    Returns:
        basis (K', V, 3), std (K',) in mm, and the cumulative explained variance (K,).
    """
    flat = modes.reshape(modes.shape[0], -1)
    _, s, vt = torch.linalg.svd(flat, full_matrices=False)
    explained = (s**2).cumsum(0) / (s**2).sum()
    # at most all components: with variance=1.0 rounding can leave explained[-1] just below 1
    keep = min(int((explained < variance).sum()) + 1, len(s))
    return vt[:keep].reshape(keep, *modes.shape[1:]), s[:keep], explained


def expression_space(
    blendshapes: Tensor, weights: Tensor, num: int = 29
) -> tuple[Tensor, Tensor, Tensor]:
    """Uncentred PCA of expression offsets ``weights @ blendshapes`` over a population.

    Uncentred so that the neutral face (all weights 0) has zero coefficients. Computed in the
    N-dimensional blend-shape space (no (num_samples, 3V) matrix): with ``Bᵀ = QR``, the second
    moment ``Bᵀ(WᵀW/n)B = Q (R WᵀW/n Rᵀ) Qᵀ``.

    Args:
        blendshapes: (N, V, 3) offsets in mm.
        weights: (n, N) sampled mixtures.
        num: number of expression components E.

    Returns:
        basis (E, V, 3), std (E,) in mm, cumulative explained second moment (N,).
    """
    flat = blendshapes.reshape(blendshapes.shape[0], -1)
    q, r = torch.linalg.qr(flat.T)  # (3V, N), (N, N)
    moment = weights.T @ weights / weights.shape[0]
    evals, evecs = torch.linalg.eigh(r @ moment @ r.T)
    evals, evecs = evals.flip(0).clamp(min=0), evecs.flip(1)
    explained = evals.cumsum(0) / evals.sum()
    basis = (q @ evecs[:, :num]).T
    # fix each component's sign so that its largest displacement is positive (reproducible)
    sign = torch.sign(basis.gather(1, basis.abs().argmax(1, keepdim=True)))
    basis = basis * sign
    return basis.reshape(num, *blendshapes.shape[1:]), evals[:num].sqrt(), explained


def build_ict_model(
    path: str | os.PathLike | None = None,
    id_variance: float = 0.995,
    num_exp: int = 29,
    num_mixtures: int = 20000,
    seed: int = 0,
) -> MorphableModel:
    """The default model: ICT narrow face, identity to ``id_variance``, ``num_exp`` expressions."""
    face = load_ict_face_area(path)
    id_basis, id_std, _ = orthonormal_basis(face.identity_modes, id_variance)
    # sign convention for identity too, so rebuilds are bit-identical across LAPACKs
    flat = id_basis.reshape(id_basis.shape[0], -1)
    sign = torch.sign(flat.gather(1, flat.abs().argmax(1, keepdim=True)))
    id_basis = (flat * sign).reshape(id_basis.shape)
    gen = torch.Generator().manual_seed(seed)
    weights = sample_blendshape_weights(face.blendshape_names, num_mixtures, gen).double()
    exp_basis, exp_std, _ = expression_space(face.blendshapes, weights, num_exp)
    return MorphableModel(
        mean=face.neutral, id_basis=id_basis, id_std=id_std, exp_basis=exp_basis,
        exp_std=exp_std, triangles=face.triangles, landmarks=face.landmarks,
        blendshapes=face.blendshapes, blendshape_names=face.blendshape_names,
    )
