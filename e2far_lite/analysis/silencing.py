"""Silence one fusion tap and measure how much worse the face gets, in mm.

:func:`silence_taps` removes one of the fusion CNN's taps (its projected map set to 0, or to
its batch mean) and reports the change of :func:`vertex_errors`: the RMS vertex error of the
expression offsets and of the neutral shapes. The errors go through the vertex loss's Gram
matrices (:func:`~e2far_lite.train.quadratic_vertex_loss`), so no (B, V, 3) meshes are built.

Letters: B batch, S the input size, K identity and E expression coefficients, V vertices.
Everything runs in eval mode and puts the network's train/eval mode back afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..checks import check_shape
from ..model.morphable_model import MorphableModel
from ..nets.network import E2FARNet
from ..train.losses import gram_matrix, quadratic_vertex_loss
from .inputs import (
    _device,
    check_batch,
    check_fusion,
    check_model,
    check_net,
    check_tap_scale,
    evaluating,
)

SILENCING_MODES = ("zero", "mean")


def vertex_errors(net: E2FARNet, batch: Mapping[str, Tensor], model: MorphableModel,
                  tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, float]:
    """Mean per-sample RMS vertex error of the expression offsets and neutral shapes, in mm.

    Computed through the loss's Gram matrices (no (B, V, 3) meshes, no rigid alignment):
    ``sqrt(Δᵀ G Δ / V)`` for the coefficient error Δ, averaged over the batch.

    Args:
        net: the network.
        batch: ``{"image": (B, 3, S, S), "a_id": (B, K), "a_exp": (B, E)}``.
        model: the morphable model the coefficients refer to.
        tap_scale: optional fusion tap scales, see :meth:`~e2far_lite.nets.E2FARNet.heads`.

    Returns:
        ``{"expression": mm, "identity": mm}``.
    """
    check_net(net)
    check_model(model, net)
    batch = check_batch(batch, net)
    device = _device(net)
    with evaluating(net), torch.no_grad():
        features = net.backbone(batch["image"].to(device))
        pred = net.heads(features, tap_scale)
    return coefficient_errors(pred, batch, model)


def coefficient_errors(pred: Mapping[str, Tensor], target: Mapping[str, Tensor],
                       model: MorphableModel) -> dict[str, float]:
    """The errors of :func:`vertex_errors` for given coefficients, e.g. the mean face (zeros).

    Args:
        pred, target: ``{"a_id": (B, K), "a_exp": (B, E)}``.
        model: the morphable model.

    Returns:
        ``{"expression": mm, "identity": mm}``, means over the batch of per-sample RMS.
    """
    for name, given in (("pred", pred), ("target", target)):
        if not isinstance(given, Mapping) or "a_id" not in given or "a_exp" not in given:
            raise ValueError(f"{name}: expected a dict with keys 'a_id' and 'a_exp'")
        check_shape(given["a_id"], f"{name}['a_id']", (None, model.num_id))
        check_shape(given["a_exp"], f"{name}['a_exp']", (None, model.num_exp))
    out = {}
    for key, name, basis, std in (("a_exp", "expression", model.exp_basis, model.exp_std),
                                  ("a_id", "identity", model.id_basis, model.id_std)):
        gram = gram_matrix(basis, std).to(pred[key])
        delta = pred[key] - target[key].to(pred[key])
        squared = quadratic_vertex_loss(delta, gram, model.num_vertices)  # (B,) mm²
        out[name] = float(squared.clamp(min=0).sqrt().mean())
    return out


def silence_taps(net: E2FARNet, batch: Mapping[str, Tensor], model: MorphableModel,
                 mode: str = "zero", tap_scale: Mapping[str, float | Tensor] | None = None,
                 ) -> dict[str, dict[str, float]]:
    """How much worse the prediction gets when one fusion tap is silenced.

    ``mode="zero"`` removes the tap's projected contribution (``tap_scale`` 0);
    ``mode="mean"`` replaces the projected map by its mean over the batch, so the tap still
    says *something*, but the same for every face (the usual "mean ablation": it separates
    "this tap carries per-face information" from "the network needs this tap's typical level").

    Args:
        net: a network with a fusion CNN.
        batch: ``{"image": (B, 3, S, S), "a_id": (B, K), "a_exp": (B, E)}`` with the true
            coefficients, B >= 2 for ``mode="mean"``.
        model: the morphable model the coefficients refer to.
        mode: ``"zero"`` or ``"mean"``.
        tap_scale: optional scales applied to all taps first (the unablated reference uses
            them too); a tap already at scale 0 then has no effect to remove.

    Returns:
        ``{tap: {"expression": Δ mm, "identity": Δ mm}}`` for each fusion tap: the change of
        :func:`vertex_errors` (positive = worse without the tap).

    Examples:
        >>> from e2far_lite.nets.network import NetConfig
        >>> from e2far_lite.synth.faces import DataConfig, SyntheticFaces
        >>> model = MorphableModel.default()
        >>> net = E2FARNet(model.num_id, model.num_exp, NetConfig(image_size=64))
        >>> batch = SyntheticFaces(model, 2, config=DataConfig(image_size=64)).batch([0, 1])
        >>> sorted(silence_taps(net, batch, model))
        ['pool4', 'pool5']
    """
    check_net(net)
    fusion = check_fusion(net)
    check_model(model, net)
    batch = check_batch(batch, net)
    if mode not in SILENCING_MODES:
        raise ValueError(f"mode: expected one of {SILENCING_MODES}, got {mode!r}")
    if mode == "mean" and batch["image"].shape[0] < 2:
        raise ValueError(f"batch: expected at least 2 images for mode='mean', "
                         f"got {batch['image'].shape[0]}")
    scales = check_tap_scale(tap_scale, fusion.taps)
    device = _device(net)
    with evaluating(net), torch.no_grad():
        features = net.backbone(batch["image"].to(device))
        a_id = net.id_head(features["pool5"])
        # the fusion CNN's own scaling, stopped where it concatenates the taps
        maps = dict(zip(fusion.taps, fusion._scaled(fusion.project_taps(features), scales),
                        strict=True))

        def predict(replaced: dict[str, Tensor]) -> dict[str, Tensor]:
            fused = fusion.fuse(torch.cat([replaced[tap] for tap in fusion.taps], dim=1))
            return {"a_id": a_id, "a_exp": fusion.head(fused)}

        reference = coefficient_errors(predict(maps), batch, model)
        out = {}
        for tap in fusion.taps:
            silenced = dict(maps)
            if mode == "zero":
                silenced[tap] = torch.zeros_like(maps[tap])
            else:
                silenced[tap] = maps[tap].mean(0, keepdim=True).expand_as(maps[tap])
            errors = coefficient_errors(predict(silenced), batch, model)
            out[tap] = {k: errors[k] - reference[k] for k in reference}
    return out


__all__ = ["SILENCING_MODES", "vertex_errors", "coefficient_errors", "silence_taps"]
