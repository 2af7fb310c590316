"""What the chapter-07 measurements take: their argument checks, and the eval mode they run in.

The public functions of :mod:`~e2far_lite.analysis.silencing`, ``attribution``, ``probes`` and
``stability`` (and the widgets of ``ui.layer_widgets``) check their inputs with these
``check_*`` functions, once, with the package's "name: expected X, got Y" messages; inner
functions trust them.

Letters: B batch, S the network's input size, K identity and E expression coefficients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..checks import check_floating, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.fusion import FusionCNN
from ..nets.network import E2FARNet


@contextlib.contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (batch-norm statistics frozen) inside the block, the caller's mode after it."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def check_net(net: object) -> E2FARNet:
    if not isinstance(net, E2FARNet):
        raise TypeError(f"net: expected an E2FARNet, got {type(net).__name__}")
    return net


def check_model(model: object, net: E2FARNet) -> MorphableModel:
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
    if (model.num_id, model.num_exp) != (net.num_id, net.num_exp):
        raise ValueError(f"model: expected K={net.num_id}, E={net.num_exp} like the network, "
                         f"got K={model.num_id}, E={model.num_exp}")
    return model


def check_images(images: object, net: E2FARNet, name: str = "images") -> Tensor:
    """(B, 3, S, S) floating point at the network's input size S."""
    size = net.config.image_size
    check_shape(check_tensor(images, name), name, (None, 3, size, size))
    return check_floating(images, name)


def check_fusion(net: E2FARNet) -> FusionCNN:
    if net.fusion is None:
        raise ValueError("net: expected a network with a fusion CNN (NetConfig(fusion_enabled="
                         "True, multi_task=True)), got one without")
    return net.fusion


def check_tap_scale(tap_scale: object, taps: Sequence[str]) -> dict[str, float | Tensor]:
    if tap_scale is None:
        return {}
    if not isinstance(tap_scale, Mapping):
        raise TypeError(f"tap_scale: expected a dict of tap name to scale, "
                        f"got {type(tap_scale).__name__}")
    unknown = [tap for tap in tap_scale if tap not in taps]
    if unknown:
        raise ValueError(f"tap_scale: expected keys among {tuple(taps)}, got {unknown}")
    return dict(tap_scale)


def check_batch(batch: object, net: E2FARNet, name: str = "batch") -> dict[str, Tensor]:
    """``{"image": (B, 3, S, S), "a_id": (B, K), "a_exp": (B, E)}`` (more keys allowed)."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name}: expected a dict with 'image', 'a_id' and 'a_exp', "
                        f"got {type(batch).__name__}")
    missing = [k for k in ("image", "a_id", "a_exp") if k not in batch]
    if missing:
        raise ValueError(f"{name}: expected keys ['image', 'a_id', 'a_exp'], missing {missing}")
    images = check_images(batch["image"], net, f"{name}['image']")
    check_shape(batch["a_id"], f"{name}['a_id']", (images.shape[0], net.num_id))
    check_shape(batch["a_exp"], f"{name}['a_exp']", (images.shape[0], net.num_exp))
    return dict(batch)


def check_layer(layer: object) -> str:
    if layer not in TAP_NAMES:
        raise ValueError(f"layer: expected one of {TAP_NAMES}, got {layer!r}")
    return layer  # type: ignore[return-value]


__all__ = ["check_batch", "check_fusion", "check_images", "check_layer", "check_model", "check_net",
           "check_tap_scale", "evaluating"]
