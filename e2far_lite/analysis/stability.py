"""Chapter 07's faces, its three answers, and whether they hold on other faces.

:func:`probe_batch` draws the faces every measurement of the chapter reads (fresh synthetic
faces, never seen in training). :func:`layer_answers` turns the ablation
(:mod:`~e2far_lite.analysis.silencing`), the attribution depth
(:mod:`~e2far_lite.analysis.attribution`) and the linear probes
(:mod:`~e2far_lite.analysis.probes`) into rankings, and :func:`same_answers` says, question
by question, whether two sets of faces (or two probe splits) rank alike.

Letters: N faces, S the input size, K identity and E expression coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..checks import check_positive_int
from ..model.morphable_model import MorphableModel
from ..nets.network import E2FARNet
from ..paths import cache_dir as default_cache_dir
from ..paths import is_smoke
from ..synth.faces import DataConfig, face_split
from .attribution import attribution_depth, layer_attribution
from .inputs import check_batch, check_net
from .probes import best_layer, linear_probes
from .silencing import silence_taps
from .targets import TARGETS


def probe_batch(net: E2FARNet, model: MorphableModel, data: DataConfig | None = None,
                num_samples: int | None = None, seed: int = 7,
                cache_dir: str | Path | None = None) -> dict[str, Tensor]:
    """Fresh synthetic faces, drawn like the network's training faces, for measurements.

    ``seed`` 7 is neither the training nor the validation seed of the presets, so these faces
    were never seen in training. Pass the training run's ``config.data`` so that poses,
    backgrounds and augmentation match what the network learnt from: measured on other faces,
    a network can look worse than the mean face. Rendered once and cached on disk
    (:func:`~e2far_lite.synth.face_split`, in ``data/cache`` or ``$E2FAR_CACHE``), so a
    notebook and its exercise check read the same faces without rendering them twice.

    Args:
        net: the network (fixes the image size).
        model: the morphable model to draw faces from.
        data: how to draw them; default ``DataConfig()`` at the network's image size.
        num_samples: N; default 96 in smoke mode (``E2FAR_SMOKE=1``), else 768.
        seed: the faces' seed.
        cache_dir: where to cache the rendered faces.

    Returns:
        the batch dict of :class:`~e2far_lite.synth.SyntheticFaces` on the CPU: ``"image"``
        (N, 3, S, S), ``"a_id"`` (N, K), ``"a_exp"`` (N, E), ...
    """
    check_net(net)
    size = net.config.image_size
    data = DataConfig(image_size=size) if data is None else data
    if data.image_size != size:
        raise ValueError(f"data: expected image_size {size} like the network, "
                         f"got {data.image_size}")
    if num_samples is None:
        num_samples = 96 if is_smoke() else 768
    check_positive_int(num_samples, "num_samples")
    return face_split(model.cpu(), data, num_samples, seed, cache_dir or default_cache_dir(),
                      device="cpu")


def layer_answers(net: E2FARNet, model: MorphableModel, faces: Mapping[str, Tensor],
                  probe_seed: int = 0, attribution_faces: int = 32) -> dict[str, object]:
    """The chapter's three answers, measured on one set of faces, as rankings.

    The ablation and the probes read all N faces, gradient × activation the first
    ``attribution_faces`` (as the notebook's cells do). On an earlier shipped network the mean
    ablation's ranking of pool4 and pool5 changed with the faces when it read 64 of them; on
    768 it held on both of notebook 07's face sets, as it does on the shipped one
    (``experiments/layer_answers.py``).

    Args:
        net, model: the network and its model.
        faces: a batch from :func:`probe_batch`, N >= 64 faces.
        probe_seed: the probes' train/test split seed.
        attribution_faces: faces used for gradient × activation, at most 64.

    Returns:
        ``"ablation"``: the tap whose mean ablation costs the expression most, with every tap's
        cost to the expression (``costs_mm``) and to the identity (``identity_costs_mm``), in
        mm; ``"depth"``: expression's and identity's attribution depth and which is lower
        (``"expression"`` = expression leans on earlier layers; None when a depth is undefined
        because every share is 0); ``"best_probe"``: the layer whose probe reads each target
        best, with the R² of every layer.
    """
    check_batch(faces, net, "faces")
    if len(faces["image"]) < 64:
        raise ValueError(f"faces: expected at least 64 faces, got {len(faces['image'])}")
    if not 1 <= attribution_faces <= 64:
        raise ValueError(f"attribution_faces: expected 1 .. 64, got {attribution_faces}")
    changes = silence_taps(net, faces, model, "mean")
    costs = {tap: change["expression"] for tap, change in changes.items()}
    images = faces["image"][:attribution_faces]
    depth = {target: attribution_depth(layer_attribution(net, images, model, target))
             for target in TARGETS}
    probes = linear_probes(net, faces, model, seed=probe_seed)
    return {
        "ablation": {"first": max(costs, key=costs.__getitem__), "costs_mm": costs,
                     "identity_costs_mm": {tap: c["identity"] for tap, c in changes.items()}},
        "depth": {**depth, "earlier": None if any(math.isnan(d) for d in depth.values())
                  else min(depth, key=depth.__getitem__)},
        "best_probe": {**{target: best_layer(probes, target) for target in TARGETS},
                       "r2": probes},
    }


def same_answers(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, bool]:
    """Whether two :func:`layer_answers` give the same ranking, question by question."""
    return {"ablation": a["ablation"]["first"] == b["ablation"]["first"],
            "depth": a["depth"]["earlier"] == b["depth"]["earlier"],
            **{f"best_probe/{t}": a["best_probe"][t] == b["best_probe"][t] for t in TARGETS}}


__all__ = ["probe_batch", "layer_answers", "same_answers"]
