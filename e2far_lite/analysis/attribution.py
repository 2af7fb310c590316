"""Which layers drive expression, and which identity? Ablations, attributions and linear probes.

UH-E2FAR argues that the neutral (identity) shape is best read from the top of the network
(pool5) while expression needs intermediate layers too, hence its fusion CNN on pool4 + pool5.
Three ways to put numbers on that claim for a trained :class:`~e2far_lite.nets.E2FARNet`:

- :func:`tap_ablation`: silence one fusion tap (its projected map set to 0, or to its batch
  mean) and measure how much worse the expression and identity become, in mm.
- :func:`layer_attribution`: how much of an output (the size of the predicted expression or
  identity, or one named blend shape's weight) each layer pool1 .. pool5 accounts for, by
  gradient x activation or by integrated gradients (:func:`integrated_gradients`).
  :func:`tap_attribution` does the same for the fusion CNN's projected taps.
- :func:`linear_probes`: how well a ridge regression on each layer's pooled features
  predicts ``a_exp`` and ``a_id`` on held-out faces (R²), i.e. where in depth the information
  is linearly available.

Scalar outputs ("targets"), per sample, all in units the model defines:

- ``"expression"``: RMS over vertices of the predicted expression offset,
  ``sqrt(a_expᵀ G_exp a_exp / V)`` in mm, with ``G = (U diag σ)ᵀ (U diag σ)`` as in the loss.
- ``"identity"``: the same for the neutral shape's offset from the mean face, ``a_id``, in mm.
- a blend-shape name such as ``"jawOpen"``: that shape's weight in the least-squares blend-shape
  reading of ``a_exp`` (:meth:`~e2far_lite.model.MorphableModel.exp_to_blendshapes`).

Letters: B batch, C channels, h, w a layer's map size, K identity and E expression
coefficients, V vertices. Everything runs in eval mode (batch-norm statistics frozen) and puts
the network's train/eval mode back afterwards.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_floating, check_positive_int, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from ..paths import cache_dir as default_cache_dir
from ..paths import is_smoke
from ..synth.faces import DataConfig, SyntheticFaces, cached_split
from ..train.losses import gram_matrix

TARGETS = ("expression", "identity")
METHODS = ("grad_x_act", "integrated_gradients")
ABLATION_MODES = ("zero", "mean")
#: Ridge penalties the probes choose from (per sample, on standardised features).
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


# ----------------------------------------------------------------------------- argument checks
def _check_net(net: object) -> E2FARNet:
    if not isinstance(net, E2FARNet):
        raise TypeError(f"net: expected an E2FARNet, got {type(net).__name__}")
    return net


def _check_model(model: object, net: E2FARNet) -> MorphableModel:
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if (model.num_id, model.num_exp) != (net.num_id, net.num_exp):
        raise ValueError(f"model: expected K={net.num_id}, E={net.num_exp} like the network, "
                         f"got K={model.num_id}, E={model.num_exp}")
    return model


def _check_images(images: object, net: E2FARNet, name: str = "images") -> Tensor:
    size = net.config.image_size
    check_shape(check_tensor(images, name), name, (None, 3, size, size))
    return check_floating(images, name)


def _check_fusion(net: E2FARNet):
    if net.fusion is None:
        raise ValueError("net: expected a network with a fusion CNN (NetConfig(fusion_enabled="
                         "True, multi_task=True)), got one without")
    return net.fusion


def _check_tap_scale(tap_scale: object, taps: Sequence[str]) -> dict[str, float | Tensor]:
    if tap_scale is None:
        return {}
    if not isinstance(tap_scale, Mapping):
        raise TypeError(f"tap_scale: expected a dict of tap name to scale, "
                        f"got {type(tap_scale).__name__}")
    unknown = [tap for tap in tap_scale if tap not in taps]
    if unknown:
        raise ValueError(f"tap_scale: expected keys among {tuple(taps)}, got {unknown}")
    return dict(tap_scale)


def _check_batch(batch: object, net: E2FARNet, name: str = "batch") -> dict[str, Tensor]:
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name}: expected a dict with 'image', 'a_id' and 'a_exp', "
                        f"got {type(batch).__name__}")
    missing = [k for k in ("image", "a_id", "a_exp") if k not in batch]
    if missing:
        raise ValueError(f"{name}: expected keys ['image', 'a_id', 'a_exp'], missing {missing}")
    images = _check_images(batch["image"], net, f"{name}['image']")
    check_shape(batch["a_id"], f"{name}['a_id']", (images.shape[0], net.num_id))
    check_shape(batch["a_exp"], f"{name}['a_exp']", (images.shape[0], net.num_exp))
    return dict(batch)


@contextlib.contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block, the caller's mode restored after it."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


# ------------------------------------------------------------------------ the network, in parts
def heads(net: E2FARNet, features: Mapping[str, Tensor],
          tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, Tensor]:
    """The network above the backbone: shape coefficients from the taps.

    Args:
        net: the network (any variant: fusion, FC expression branch, single task).
        features: ``{"pool1": (B, C1, h1, w1), ..., "pool5": (B, C5, g, g)}``.
        tap_scale: optional ``{tap: scale}`` for the fusion CNN, see
            :meth:`~e2far_lite.nets.FusionCNN.forward`.

    Returns:
        ``{"a_id": (B, K), "a_exp": (B, E)}`` in std units.
    """
    pool5 = features["pool5"]
    if net.shape_head is not None:
        a_id, a_exp = net.shape_head(pool5).split([net.num_id, net.num_exp], dim=1)
        return {"a_id": a_id, "a_exp": a_exp}
    a_id = net.id_head(pool5)
    if net.fusion is not None:
        a_exp = net.fusion(features, tap_scale=tap_scale or None)
    else:
        a_exp = net.exp_head(pool5)
    return {"a_id": a_id, "a_exp": a_exp}


def forward_from(net: E2FARNet, layer: str, activation: Tensor, features: Mapping[str, Tensor],
                 tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, Tensor]:
    """Run the sub-network that starts at ``layer``, with ``activation`` in place of its output.

    The backbone stages above ``layer`` are recomputed from ``activation``; taps below it keep
    their values from ``features`` (a fusion tap below ``layer`` is then a constant input).

    Args:
        net: the network.
        layer: one of ``"pool1"`` .. ``"pool5"``.
        activation: (B, C, h, w), replacing ``features[layer]``.
        features: the backbone's taps for the same images (``net(x, return_features=True)``).
        tap_scale: optional fusion tap scales.

    Returns:
        ``{"a_id": (B, K), "a_exp": (B, E)}``.
    """
    feats = dict(features)
    feats[layer] = activation
    x = activation
    for name in TAP_NAMES[TAP_NAMES.index(layer) + 1:]:
        x = net.backbone.stages[name](x)
        feats[name] = x
    return heads(net, feats, tap_scale)


# ------------------------------------------------------------------------------- scalar targets
def target_function(model: MorphableModel, target: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The scalar output ``target`` as a function ``(a_id (B, K), a_exp (B, E)) -> (B,)``.

    ``"expression"`` and ``"identity"``: RMS vertex offset in mm (see the module docstring);
    a blend-shape name: that shape's weight (unitless, 1 = the full blend shape).
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
            return (((a @ gram.to(a)) * a).sum(-1) / num_v + eps).sqrt()

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


# ------------------------------------------------------------------------------- tap ablation
def _gram_rms(delta: Tensor, gram: Tensor, num_vertices: int) -> Tensor:
    """Per-sample RMS vertex distance in mm: (B, K) coefficient differences -> (B,)."""
    return (((delta @ gram) * delta).sum(-1).clamp(min=0) / num_vertices).sqrt()


def vertex_errors(net: E2FARNet, batch: Mapping[str, Tensor], model: MorphableModel,
                  tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, float]:
    """Mean per-sample RMS vertex error of the expression offsets and neutral shapes, in mm.

    Computed through the loss's Gram matrices (no (B, V, 3) meshes, no rigid alignment):
    ``sqrt(Δᵀ G Δ / V)`` for the coefficient error Δ, averaged over the batch.

    Args:
        net: the network.
        batch: ``{"image": (B, 3, S, S), "a_id": (B, K), "a_exp": (B, E)}``.
        model: the morphable model the coefficients refer to.
        tap_scale: optional fusion tap scales.

    Returns:
        ``{"expression": mm, "identity": mm}``.
    """
    _check_net(net)
    _check_model(model, net)
    batch = _check_batch(batch, net)
    device = _device(net)
    with evaluating(net), torch.no_grad():
        features = net.backbone(batch["image"].to(device))
        pred = heads(net, features, tap_scale)
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
        out[name] = float(_gram_rms(delta, gram, model.num_vertices).mean())
    return out


def tap_ablation(net: E2FARNet, batch: Mapping[str, Tensor], model: MorphableModel,
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
        >>> model = MorphableModel.default()
        >>> net = E2FARNet(model.num_id, model.num_exp, NetConfig(image_size=64))
        >>> batch = SyntheticFaces(model, 2, config=DataConfig(image_size=64)).batch([0, 1])
        >>> sorted(tap_ablation(net, batch, model))
        ['pool4', 'pool5']
    """
    _check_net(net)
    fusion = _check_fusion(net)
    _check_model(model, net)
    batch = _check_batch(batch, net)
    if mode not in ABLATION_MODES:
        raise ValueError(f"mode: expected one of {ABLATION_MODES}, got {mode!r}")
    if mode == "mean" and batch["image"].shape[0] < 2:
        raise ValueError(f"batch: expected at least 2 images for mode='mean', "
                         f"got {batch['image'].shape[0]}")
    scales = _check_tap_scale(tap_scale, fusion.taps)
    device = _device(net)
    with evaluating(net), torch.no_grad():
        features = net.backbone(batch["image"].to(device))
        a_id = net.id_head(features["pool5"])
        projected = fusion.project_taps(features)
        maps = {}
        for tap in fusion.taps:
            scale = torch.as_tensor(scales.get(tap, 1.0), dtype=projected[tap].dtype,
                                    device=device)
            maps[tap] = projected[tap] * (scale.view(-1, 1, 1, 1) if scale.dim() else scale)

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


# --------------------------------------------------------------------------- layer attribution
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


def _check_layer(layer: object) -> str:
    if layer not in TAP_NAMES:
        raise ValueError(f"layer: expected one of {TAP_NAMES}, got {layer!r}")
    return layer  # type: ignore[return-value]


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
    _check_net(net)
    _check_model(model, net)
    images = _check_images(images, net)
    _check_layer(layer)
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
            out = forward_from(net, layer, a, features, tap_scale)
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
    f is the per-sample ``target`` output (see the module docstring), summed over the batch.

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
    _check_net(net)
    _check_model(model, net)
    images = _check_images(images, net)
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
            pred = heads(net, features, tap_scale)
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
    _check_net(net)
    fusion = _check_fusion(net)
    _check_model(model, net)
    images = _check_images(images, net)
    scales = _check_tap_scale(tap_scale, fusion.taps)
    fn = target_function(model, target)
    with evaluating(net):
        with torch.no_grad():
            features = net.backbone(images.to(_device(net)))
            a_id = net.id_head(features["pool5"])
            projected = fusion.project_taps(features)
        maps = []
        for tap in fusion.taps:
            scale = torch.as_tensor(scales.get(tap, 1.0), dtype=projected[tap].dtype,
                                    device=projected[tap].device)
            scaled = projected[tap] * (scale.view(-1, 1, 1, 1) if scale.dim() else scale)
            maps.append(scaled.detach().requires_grad_(True))
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


# ----------------------------------------------------------------------------- linear probes
def pooled_features(net: E2FARNet, images: Tensor, layers: Sequence[str] = TAP_NAMES,
                    grid: int = 2, batch_size: int = 64) -> dict[str, Tensor]:
    """Each layer's map average-pooled to a small ``grid`` x ``grid``: the probes' inputs.

    Args:
        net: the network.
        images: (B, 3, S, S) RGB in [0, 1].
        layers: which taps.
        grid: cells per side after pooling (1 = global average pooling).
        batch_size: images per forward pass.

    Returns:
        ``{layer: (B, C * grid²)}`` on the CPU, float32.
    """
    _check_net(net)
    images = _check_images(images, net)
    check_positive_int(grid, "grid")
    device = _device(net)
    parts: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    with evaluating(net), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            features = net.backbone(images[start:start + batch_size].to(device))
            for layer in layers:
                pooled = F.adaptive_avg_pool2d(features[layer], grid)
                parts[layer].append(pooled.flatten(1).float().cpu())
    return {layer: torch.cat(chunks) for layer, chunks in parts.items()}


def _ridge_fit(x: Tensor, y: Tensor, ridge: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Standardise x, centre y, solve ``(XᵀX + ridge n I) W = Xᵀ y``; all float64."""
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp(min=1e-8)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    n, d = xs.shape
    lhs = xs.T @ xs + ridge * n * torch.eye(d, dtype=x.dtype)
    weights = torch.linalg.solve(lhs, xs.T @ (y - y_mean))
    return mean, std, weights, y_mean


def _r2(pred: Tensor, y: Tensor, gram: Tensor | None) -> float:
    """``1 - Σ rᵀ G r / Σ (y - ȳ)ᵀ G (y - ȳ)`` over samples, r = pred - y (G = I if None)."""
    g = torch.eye(y.shape[1], dtype=y.dtype) if gram is None else gram
    residual, spread = pred - y, y - y.mean(0)
    total = ((spread @ g) * spread).sum()
    if total <= 0:
        return float("nan")
    return float(1 - ((residual @ g) * residual).sum() / total)


def probe_r2(features: Tensor, targets: Tensor, ridge: float | Sequence[float] = RIDGES,
             test_fraction: float = 0.25, seed: int = 0, gram: Tensor | None = None) -> float:
    """Held-out R² of a closed-form ridge regression from ``features`` to ``targets``.

    Samples are split at random (``seed``) into train and test. Features are standardised
    with the train statistics; the ridge penalty is ``ridge * n_train * |W|²``. Given several
    ``ridge`` values, the one with the best R² on a validation fifth of the train split is
    refitted on the whole train split. R² is pooled over the target's columns,
    ``1 - Σ rᵀ G r / Σ (y - ȳ)ᵀ G (y - ȳ)`` with residuals r; with a Gram matrix ``G`` of the
    morphable model (:func:`~e2far_lite.train.gram_matrix`) it is the share of the shapes'
    variance in vertex space (mm²) that the probe explains, so each coefficient counts by how
    far it moves the face; without one (G = I), columns count by their variance.

    Args:
        features: (N, D) inputs.
        targets: (N, T) outputs, e.g. ``a_exp`` (N, E).
        ridge: penalty, or candidates to choose from (default :data:`RIDGES`).
        test_fraction: share of samples held out for the reported R².
        seed: the split's random seed.
        gram: optional (T, T) symmetric positive semi-definite weighting.

    Returns:
        R² on the test split (1 = perfect, 0 = no better than the train mean, can be < 0).

    Examples:
        >>> x = torch.randn(200, 5)
        >>> round(probe_r2(x, x @ torch.randn(5, 3), ridge=1e-6), 4)
        1.0
    """
    check_shape(check_tensor(features, "features"), "features", (None, None))
    check_shape(check_tensor(targets, "targets"), "targets", (features.shape[0], None))
    if gram is not None:
        check_shape(check_tensor(gram, "gram"), "gram", (targets.shape[1], targets.shape[1]))
        gram = gram.double().cpu()
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    candidates = (ridge,) if isinstance(ridge, (int, float)) else tuple(ridge)
    if not candidates or not all(isinstance(r, (int, float)) and r > 0 for r in candidates):
        raise ValueError(f"ridge: expected a positive number or a sequence of them, "
                         f"got {ridge!r}")
    n = features.shape[0]
    n_test = int(round(n * test_fraction))
    if n_test < 2 or n - n_test < 4:
        raise ValueError(f"features: expected enough samples for a train/test split "
                         f"(>= 8), got {n}")
    x, y = features.double().cpu(), targets.double().cpu()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]

    def score(fit_idx: Tensor, eval_idx: Tensor, penalty: float) -> float:
        mean, std, weights, y_mean = _ridge_fit(x[fit_idx], y[fit_idx], penalty)
        return _r2((x[eval_idx] - mean) / std @ weights + y_mean, y[eval_idx], gram)

    best = candidates[0]
    if len(candidates) > 1:
        n_val = max(2, len(train) // 5)
        val, fit = train[:n_val], train[n_val:]
        scores = [score(fit, val, r) for r in candidates]
        best = candidates[max(range(len(candidates)),
                              key=lambda i: -math.inf if math.isnan(scores[i]) else scores[i])]
    return score(train, test, best)


def linear_probes(net: E2FARNet, faces_or_batch: SyntheticFaces | Mapping[str, Tensor],
                  model: MorphableModel | None = None, layers: Sequence[str] = TAP_NAMES,
                  ridge: float | Sequence[float] = RIDGES, grid: int = 2,
                  test_fraction: float = 0.25, seed: int = 0) -> dict[str, dict[str, float]]:
    """Where in depth are expression and identity linearly readable? R² of ridge probes.

    For each layer, a ridge regression from the layer's pooled features
    (:func:`pooled_features`, ``grid`` x ``grid`` average pooling) to the true ``a_exp`` and to
    the true ``a_id`` is fitted on a train split and scored on held-out faces
    (:func:`probe_r2`). R² is measured in vertex space: the share of the variance of the
    expression offsets (of the neutral shapes) over the test faces, in mm², that the probe
    explains. (Plain R² over the coefficients would weigh an identity mode that barely moves
    the face like the largest one.)

    Args:
        net: the network.
        faces_or_batch: a :class:`~e2far_lite.synth.SyntheticFaces` (all its items are
            rendered) or a batch ``{"image": (N, 3, S, S), "a_id": (N, K), "a_exp": (N, E)}``.
        model: the morphable model of the coefficients; default the faces' own model
            (required with a batch dict).
        layers: which taps.
        ridge: penalty or candidates, see :func:`probe_r2`.
        grid: pooling grid per side.
        test_fraction: share of faces held out.
        seed: the split's seed.

    Returns:
        ``{layer: {"expression": R², "identity": R²}}``.
    """
    _check_net(net)
    if isinstance(faces_or_batch, SyntheticFaces):
        faces = faces_or_batch
        if faces.config.image_size != net.config.image_size:
            raise ValueError(f"faces_or_batch: expected images of {net.config.image_size} px "
                             f"like the network, got {faces.config.image_size} px")
        model = faces.model if model is None else model
        chunks = [faces.batch(range(s, min(s + 64, len(faces))))
                  for s in range(0, len(faces), 64)]
        batch = {k: torch.cat([c[k].cpu() for c in chunks]) for k in ("image", "a_id", "a_exp")}
    else:
        batch = _check_batch(faces_or_batch, net, "faces_or_batch")
        if model is None:
            raise ValueError("model: expected the MorphableModel of the batch's coefficients, "
                             "got None")
    _check_model(model, net)
    for layer in layers:
        _check_layer(layer)
    grams = {"a_exp": gram_matrix(model.exp_basis, model.exp_std),
             "a_id": gram_matrix(model.id_basis, model.id_std)}
    features = pooled_features(net, batch["image"], layers, grid)
    return {layer: {name: probe_r2(features[layer], batch[key], ridge, test_fraction, seed,
                                   grams[key])
                    for name, key in (("expression", "a_exp"), ("identity", "a_id"))}
            for layer in layers}


def best_layer(probes: Mapping[str, Mapping[str, float]], target: str = "expression") -> str:
    """The layer whose probe has the highest R² for ``target`` (``"expression"``/``"identity"``)."""
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    return max(probes, key=lambda layer: probes[layer][target])


# ------------------------------------------------------------------- the network chapter 07 uses
def probe_batch(net: E2FARNet, model: MorphableModel, data: DataConfig | None = None,
                num_samples: int | None = None, seed: int = 7,
                cache_dir: str | Path | None = None) -> dict[str, Tensor]:
    """Fresh synthetic faces, drawn like the network's training faces, for measurements.

    ``seed`` 7 is neither the training nor the validation seed of the presets, so these faces
    were never seen in training. Pass the training run's ``config.data`` so that poses,
    backgrounds and augmentation match what the network learnt from: measured on other faces,
    a network can look worse than the mean face. Rendered once and cached on disk
    (:func:`~e2far_lite.synth.cached_split`, in ``data/cache`` or ``$E2FAR_CACHE``), so a
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
    _check_net(net)
    size = net.config.image_size
    data = DataConfig(image_size=size) if data is None else data
    if data.image_size != size:
        raise ValueError(f"data: expected image_size {size} like the network, "
                         f"got {data.image_size}")
    if num_samples is None:
        num_samples = 96 if is_smoke() else 768
    faces = SyntheticFaces(model.cpu(), num_samples, seed=seed, config=data, device="cpu")
    return cached_split(faces, cache_dir or default_cache_dir())


# ------------------------------------------------------------------- is the answer stable?
def layer_answers(net: E2FARNet, model: MorphableModel, faces: Mapping[str, Tensor],
                  probe_seed: int = 0, attribution_faces: int = 32) -> dict[str, object]:
    """The chapter's three answers, measured on one set of faces, as rankings.

    The ablation reads the first 64 faces, gradient × activation the first
    ``attribution_faces`` of those, the probes all N (as the notebook's cells do).

    Args:
        net, model: the network and its model.
        faces: a batch from :func:`probe_batch`, N >= 64 faces.
        probe_seed: the probes' train/test split seed.
        attribution_faces: faces used for gradient × activation, at most 64.

    Returns:
        ``"ablation"``: the tap whose mean ablation costs the expression most, with every tap's
        cost in mm; ``"depth"``: expression's and identity's attribution depth and which is
        lower (``"expression"`` = expression leans on earlier layers; None when a depth is
        undefined because every share is 0); ``"best_probe"``: the
        layer whose probe reads each target best, with the R² of every layer.
    """
    _check_batch(faces, net, "faces")
    if len(faces["image"]) < 64:
        raise ValueError(f"faces: expected at least 64 faces, got {len(faces['image'])}")
    if not 1 <= attribution_faces <= 64:
        raise ValueError(f"attribution_faces: expected 1 .. 64, got {attribution_faces}")
    batch = {key: value[:64] for key, value in faces.items()}
    costs = {tap: change["expression"]
             for tap, change in tap_ablation(net, batch, model, "mean").items()}
    images = batch["image"][:attribution_faces]
    depth = {target: attribution_depth(layer_attribution(net, images, model, target))
             for target in TARGETS}
    probes = linear_probes(net, faces, model, seed=probe_seed)
    return {
        "ablation": {"first": max(costs, key=costs.__getitem__), "costs_mm": costs},
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


__all__ = ["TARGETS", "METHODS", "ABLATION_MODES", "RIDGES", "evaluating", "heads",
           "forward_from", "target_function", "vertex_errors", "coefficient_errors",
           "tap_ablation", "IntegratedGradients", "integrated_gradients", "layer_attribution",
           "per_sample_attribution", "tap_attribution", "attribution_depth", "pooled_features",
           "probe_r2", "linear_probes", "best_layer", "probe_batch", "layer_answers",
           "same_answers"]
