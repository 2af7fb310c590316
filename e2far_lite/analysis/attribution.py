"""Which layers account for an output? Gradient × activation and integrated gradients.

UH-E2FAR argues that the neutral (identity) shape is best read from the top of the network
(pool5) while expression needs intermediate layers too, hence its fusion CNN on pool4 + pool5.
Attribution puts a number on that for a trained :class:`~e2far_lite.nets.E2FARNet`:

- :func:`layer_attribution`: how much of a scalar output (the size of the predicted expression
  or identity, or one named blend shape's weight; :mod:`~e2far_lite.analysis.targets`) each
  layer pool1 .. pool5 accounts for, by gradient × activation or by integrated gradients
  (:func:`integrated_gradients`); :func:`per_sample_attribution` gives it per face.
- :func:`tap_attribution`: the same for the fusion CNN's projected taps.
- :func:`attribution_depth`: one number for where in depth a profile sits.

The sub-network from a layer up is :meth:`~e2far_lite.nets.E2FARNet.forward_from`.

Letters: B batch, C channels, h, w a layer's map size, S the input size, L layers. Everything
runs in eval mode (batch-norm statistics frozen) and puts the network's train/eval mode back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_positive_int, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from .inputs import (
    _device,
    check_fusion,
    check_images,
    check_layer,
    check_model,
    check_net,
    check_tap_scale,
    evaluating,
)
from .targets import target_function

METHODS = ("grad_x_act", "integrated_gradients")


@dataclass
class IntegratedGradients:
    """Integrated gradients of one scalar output with respect to one layer's activation.

    Attributes:
        attributions: (B, C, h, w), ``(A - A₀) ⊙ ∫₀¹ ∂f/∂A(A₀ + α (A - A₀)) dα``.
        value: (B,) the output f at the real activation A.
        baseline_value: (B,) the output at the baseline activation A₀.

    Completeness: ``attributions.sum((1, 2, 3)) ≈ value - baseline_value`` per sample, up to
    the error of the ``steps``-point quadrature.
    """

    attributions: Tensor
    value: Tensor
    baseline_value: Tensor


def integrated_gradients(net: E2FARNet, images: Tensor, model: MorphableModel, layer: str,
                         target: str = "expression", steps: int = 16,
                         baseline: Tensor | None = None,
                         tap_scale: Mapping[str, float | Tensor] | None = None,
                         ) -> IntegratedGradients:
    """Integrated gradients at one layer, for the sub-network from that layer up.

    The path runs straight from ``baseline`` (default: all zeros, i.e. no feature firing; the
    taps follow a ReLU and a max pool, so activations are >= 0) to the real activation;
    the integral is the midpoint rule with ``steps`` points. Samples are independent (eval
    mode), so completeness holds per sample.

    Args:
        net: the network.
        images: (B, 3, S, S) RGB in [0, 1].
        model: the morphable model (defines the scalar ``target``).
        layer: ``"pool1"`` .. ``"pool5"``.
        target: ``"expression"``, ``"identity"`` or a blend-shape name.
        steps: quadrature points along the path.
        baseline: optional (B, C, h, w) or (1, C, h, w) baseline activation.
        tap_scale: optional fusion tap scales.

    Returns:
        :class:`IntegratedGradients`.
    """
    check_net(net)
    check_model(model, net)
    images = check_images(images, net)
    check_layer(layer)
    check_positive_int(steps, "steps")
    fn = target_function(model, target)
    device = _device(net)
    with evaluating(net):
        with torch.no_grad():
            features = net.backbone(images.to(device))
        act = features[layer]
        if baseline is None:
            baseline = torch.zeros_like(act)
        else:
            check_shape(check_tensor(baseline, "baseline"), "baseline",
                        (None, *act.shape[1:]))
            if baseline.shape[0] not in (1, act.shape[0]):
                raise ValueError(f"baseline: expected batch size 1 or {act.shape[0]}, "
                                 f"got {baseline.shape[0]}")
            baseline = baseline.to(act).expand_as(act)

        def f(a: Tensor) -> Tensor:
            out = net.forward_from(layer, a, features, tap_scale)
            return fn(out["a_id"], out["a_exp"])

        total = torch.zeros_like(act)
        for k in range(steps):
            alpha = (k + 0.5) / steps
            point = (baseline + alpha * (act - baseline)).requires_grad_(True)
            grad, = torch.autograd.grad(f(point).sum(), point)
            total += grad
        with torch.no_grad():
            value, base_value = f(act), f(baseline)
    return IntegratedGradients((act - baseline) * total / steps, value, base_value)


def _normalised(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {k: v / total if total > 0 else 0.0 for k, v in values.items()}


def layer_attribution(net: E2FARNet, images: Tensor, model: MorphableModel,
                      target: str = "expression", method: str = "grad_x_act", steps: int = 16,
                      layers: Sequence[str] = TAP_NAMES, normalize: bool = True,
                      tap_scale: Mapping[str, float | Tensor] | None = None,
                      ) -> dict[str, float]:
    """How much of a scalar output each layer accounts for.

    ``"grad_x_act"``: ``Σ |∂f/∂A ⊙ A|`` over the layer's units and the batch, from one
    backward pass (the gradient at a tap in the full network is the gradient of the
    sub-network from that tap up). ``"integrated_gradients"``: ``Σ |IG|`` of
    :func:`integrated_gradients` at each layer (``steps`` forward/backward passes per layer).
    f is the per-sample ``target`` output (:func:`~e2far_lite.analysis.target_function`),
    summed over the batch.

    Magnitudes of different layers are sums over different numbers of units, so read them as
    shares: compare the *profile* for expression with the profile for identity.

    Args:
        net: the network.
        images: (B, 3, S, S) RGB in [0, 1].
        model: the morphable model (defines the scalar ``target``).
        target: ``"expression"``, ``"identity"`` or a blend-shape name (e.g. ``"jawOpen"``).
        method: ``"grad_x_act"`` or ``"integrated_gradients"``.
        steps: quadrature points for integrated gradients.
        layers: which taps, in order.
        normalize: divide by the sum over ``layers`` so the shares add up to 1.
        tap_scale: optional fusion tap scales.

    Returns:
        ``{layer: attribution}``, shares summing to 1 when ``normalize`` (all 0 when the
        output does not depend on any layer).
    """
    check_net(net)
    check_model(model, net)
    images = check_images(images, net)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    layers = tuple(layers)
    if not layers:
        raise ValueError("layers: expected at least one tap name, got none")
    for layer in layers:
        if layer not in TAP_NAMES:
            raise ValueError(f"layers: expected names among {TAP_NAMES}, got {layer!r}")
    check_positive_int(steps, "steps")
    per_sample = per_sample_attribution(net, images, model, target, method, steps, layers,
                                        tap_scale)
    out = {layer: float(value) for layer, value in zip(layers, per_sample.sum(0), strict=True)}
    return _normalised(out) if normalize else out


def per_sample_attribution(net: E2FARNet, images: Tensor, model: MorphableModel,
                           target: str, method: str = "grad_x_act", steps: int = 16,
                           layers: Sequence[str] = TAP_NAMES,
                           tap_scale: Mapping[str, float | Tensor] | None = None) -> Tensor:
    """The raw attributions of :func:`layer_attribution` per face: (B, L) for L ``layers``.

    Samples are independent in eval mode, so the batch's attribution is the sum of the rows
    (a widget keeps these rows and re-sums them for any choice of faces). Arguments as for
    :func:`layer_attribution`, whose checks this inner function trusts.
    """
    fn = target_function(model, target)
    columns: list[Tensor] = []
    if method == "integrated_gradients":
        for layer in layers:
            ig = integrated_gradients(net, images, model, layer, target, steps,
                                      tap_scale=tap_scale)
            columns.append(ig.attributions.abs().sum((1, 2, 3)))
    else:
        with evaluating(net):
            features = net.backbone(images.to(_device(net)))
            pred = net.heads(features, tap_scale)
            acts = [features[layer] for layer in layers]
            grads = torch.autograd.grad(fn(pred["a_id"], pred["a_exp"]).sum(), acts,
                                        allow_unused=True)
            for grad, act in zip(grads, acts, strict=True):
                columns.append(torch.zeros(act.shape[0], device=act.device) if grad is None
                               else (grad * act).detach().abs().sum((1, 2, 3)))
    return torch.stack(columns, 1).double().cpu()


def tap_attribution(net: E2FARNet, images: Tensor, model: MorphableModel,
                    target: str = "expression", normalize: bool = True,
                    tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, float]:
    """Gradient x activation at the fusion CNN's input: each tap's share of an output.

    The activation is the tap's projected (and scaled) map, ``(B, width, g, g)``, right
    where the fusion CNN concatenates the taps; a tap at ``tap_scale`` 0 gets exactly 0.

    Args:
        net: a network with a fusion CNN.
        images: (B, 3, S, S) RGB in [0, 1].
        model: the morphable model (defines the scalar ``target``).
        target: ``"expression"`` or a blend-shape name (identity never reads the fusion CNN).
        normalize: shares summing to 1 (all 0 when no tap matters).
        tap_scale: optional fusion tap scales.

    Returns:
        ``{tap: attribution}`` in the fusion CNN's tap order.
    """
    check_net(net)
    fusion = check_fusion(net)
    check_model(model, net)
    images = check_images(images, net)
    scales = check_tap_scale(tap_scale, fusion.taps)
    fn = target_function(model, target)
    with evaluating(net):
        with torch.no_grad():
            features = net.backbone(images.to(_device(net)))
            a_id = net.id_head(features["pool5"])
            # the fusion CNN's own scaling, stopped where it concatenates the taps
            scaled = fusion._scaled(fusion.project_taps(features), scales)
        maps = [m.detach().requires_grad_(True) for m in scaled]
        a_exp = fusion.head(fusion.fuse(torch.cat(maps, dim=1)))
        grads = torch.autograd.grad(fn(a_id, a_exp).sum(), maps, allow_unused=True)
    out = {tap: 0.0 if g is None else float((g * m).detach().abs().sum())
           for tap, g, m in zip(fusion.taps, grads, maps, strict=True)}
    return _normalised(out) if normalize else out


def attribution_depth(shares: Mapping[str, float]) -> float:
    """Where an attribution profile sits in depth: ``Σ k · share(pool k)`` / ``Σ share``.

    1.0 = all in pool1, 5.0 = all in pool5; NaN when every share is 0. One number to compare
    profiles: lower = earlier layers.
    """
    total = sum(shares.values())
    if total <= 0:
        return float("nan")
    return sum((TAP_NAMES.index(layer) + 1) * value for layer, value in shares.items()) / total


__all__ = ["METHODS", "IntegratedGradients", "integrated_gradients", "layer_attribution",
           "per_sample_attribution", "tap_attribution", "attribution_depth"]
