"""Plausible expressions as sparse mixtures of named (ARKit-style) blend shapes.

Used twice: to build the expression space of the default model (PCA over a population of mixtures)
and to draw training expressions. Left/right pairs (``mouthSmile_L``/``mouthSmile_R``) are usually
moved together, as faces mostly are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def symmetric_partner(names: Sequence[str]) -> list[int]:
    """Index of each name's mirror (``_L`` <-> ``_R``), or its own index when it has none."""
    index = {n: i for i, n in enumerate(names)}
    partner = []
    for i, name in enumerate(names):
        if name.endswith("_L"):
            partner.append(index.get(name[:-2] + "_R", i))
        elif name.endswith("_R"):
            partner.append(index.get(name[:-2] + "_L", i))
        else:
            partner.append(i)
    return partner


def sample_blendshape_weights(
    names: Sequence[str],
    num: int,
    generator: torch.Generator | None = None,
    max_active: int = 4,
    symmetric_prob: float = 0.7,
    neutral_share: float = 0.0,
) -> Tensor:
    """Draw ``num`` sparse blend-shape mixtures: (num, N) weights in [0, 1].

    Each sample activates 1..``max_active`` shapes with weights ~ U(0, 1)^0.7 (leaning to strong
    expressions); with probability ``symmetric_prob`` an activated ``_L``/``_R`` shape brings its
    mirror with a similar weight. A share ``neutral_share`` of samples is all zeros (neutral).
    """
    n = len(names)
    partner = torch.tensor(symmetric_partner(names))
    active = torch.randint(1, max_active + 1, (num,), generator=generator)
    scores = torch.rand(num, n, generator=generator)
    # the k smallest scores per row are the active shapes
    rank = scores.argsort(dim=1).argsort(dim=1)
    on = rank < active[:, None]
    weights = torch.rand(num, n, generator=generator).pow(0.7) * on
    mirror_w = weights[:, partner] * (0.8 + 0.4 * torch.rand(num, n, generator=generator))
    use_mirror = (torch.rand(num, n, generator=generator) < symmetric_prob) & ~on
    weights = torch.where(use_mirror & (mirror_w > 0), mirror_w, weights).clamp(0, 1)
    neutral = torch.rand(num, generator=generator) < neutral_share
    return weights * (~neutral)[:, None]


def blendshape_uniforms(num_shapes: int) -> int:
    """Uniform draws per item of :func:`blendshape_weights_from_draws` for N shapes: 1 + 4 N."""
    return 1 + 4 * num_shapes


def blendshape_weights_from_draws(names: Sequence[str], u: Tensor, max_active: int = 4,
                                  symmetric_prob: float = 0.7) -> Tensor:
    """The mixtures of :func:`sample_blendshape_weights` from uniform draws, a batch at once.

    Args:
        names: the N blend-shape names (for the left/right pairs).
        u: (B, 1 + 4 N) U(0, 1) draws: how many shapes are active, which, their weights, the
            mirror's weight factor and whether the mirror moves along.

    Returns:
        (B, N) weights in [0, 1].
    """
    n = len(names)
    partner = torch.tensor(symmetric_partner(names), device=u.device)
    active = 1 + (u[:, 0] * max_active).long().clamp(max=max_active - 1)
    scores, strength, mirror, along = u[:, 1:].reshape(len(u), 4, n).unbind(1)
    rank = scores.argsort(dim=1).argsort(dim=1)  # the k smallest scores are the active shapes
    on = rank < active[:, None]
    weights = strength.pow(0.7) * on
    mirror_w = weights[:, partner] * (0.8 + 0.4 * mirror)
    use_mirror = (along < symmetric_prob) & ~on
    return torch.where(use_mirror & (mirror_w > 0), mirror_w, weights).clamp(0, 1)
