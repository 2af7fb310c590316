"""E2FARNet: one image in; identity, expression and pose out.

    images (B, 3, S, S) -> backbone -> pool1 .. pool5
        neutral branch    pool5 -> flatten -> FC -> ReLU -> FC        -> a_id  (B, K)
        expression branch fusion CNN on the taps (pool4 + pool5)      -> a_exp (B, E)
        pose head         pool5 -> flatten -> FC -> ReLU -> FC        -> pose  (B, 6)

Variants used in the paper's ablation: ``fusion_enabled=False`` predicts a_exp from pool5 with an
FC branch like the neutral one; ``multi_task=False`` ("single task") uses ONE FC head from pool5
for the concatenated ``[a_id, a_exp]``, split afterwards (the fusion CNN is then not built).

:meth:`E2FARNet.heads` runs the shape heads on given taps and :meth:`E2FARNet.forward_from`
the network from one tap up, for looking inside (``e2far_lite.analysis``).

Coefficients are in std units of the morphable model (prior N(0, 1)); the last layers start
near zero, so an untrained net predicts the mean face, frontal, centred, at a typical scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..checks import MAX_IMAGE_SIZE, check_floating, check_positive_int, check_tensor
from .backbone import STRIDE, BackboneConfig, build_backbone
from .fusion import FusionCNN, FusionConfig


@dataclass
class NetConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    fusion_enabled: bool = True  # a_exp from the fusion CNN; False: an FC branch on pool5
    multi_task: bool = True  # separate id / exp branches; False: one head for [a_id, a_exp]
    image_size: int = 128  # S, the square input crop in px (a multiple of 32)
    id_hidden: int = 512  # hidden units of the neutral branch (and of the single-task head)
    exp_hidden: int = 256  # hidden units of the FC expression branch (fusion_enabled=False)
    pose_hidden: int = 128  # hidden units of the pose head
    # Pose head's starting scale in px/mm for a 128 px crop (proportional to image_size): a
    # ~150 mm wide face in a crop ~1.2-1.45 times its landmark box is 0.6-0.7 px/mm.
    typical_scale: float = 0.65


def _fc_head(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    head = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_features))
    nn.init.normal_(head[-1].weight, std=1e-3)  # outputs start near 0
    nn.init.zeros_(head[-1].bias)
    return head


class E2FARNet(nn.Module):
    """The end-to-end face reconstruction network.

    Args:
        num_id: K, identity coefficients (``model.num_id``).
        num_exp: E, expression coefficients (``model.num_exp``).
        config: architecture; ``NetConfig()`` by default.

    Examples:
        >>> net = E2FARNet(62, 29)
        >>> out = net(torch.rand(2, 3, 128, 128))
        >>> out["a_id"].shape, out["a_exp"].shape, out["pose"].shape
        (torch.Size([2, 62]), torch.Size([2, 29]), torch.Size([2, 6]))
    """

    def __init__(self, num_id: int, num_exp: int, config: NetConfig | None = None) -> None:
        super().__init__()
        config = config or NetConfig()
        check_positive_int(num_id, "num_id")
        check_positive_int(num_exp, "num_exp")
        size = config.image_size
        if not isinstance(size, int) or not STRIDE <= size <= MAX_IMAGE_SIZE or size % STRIDE:
            raise ValueError(f"config.image_size: expected a multiple of {STRIDE} in "
                             f"[{STRIDE}, {MAX_IMAGE_SIZE}], got {size!r}")
        if config.typical_scale <= 0:
            raise ValueError(f"config.typical_scale: expected > 0 px/mm, "
                             f"got {config.typical_scale}")
        self.config = config
        self.num_id = num_id
        self.num_exp = num_exp
        self.grid_size = size // STRIDE
        self.backbone = build_backbone(config.backbone)
        pool5 = self.backbone.channels["pool5"] * self.grid_size**2
        self.id_head: nn.Sequential | None = None
        self.exp_head: nn.Sequential | None = None
        self.fusion: FusionCNN | None = None
        self.shape_head: nn.Sequential | None = None  # single task: [a_id, a_exp] together
        if config.multi_task:
            self.id_head = _fc_head(pool5, config.id_hidden, num_id)
            if config.fusion_enabled:
                self.fusion = FusionCNN(self.backbone.channels, num_exp, config.fusion,
                                        self.grid_size)
            else:
                self.exp_head = _fc_head(pool5, config.exp_hidden, num_exp)
        else:
            self.shape_head = _fc_head(pool5, config.id_hidden, num_id + num_exp)
        self.pose_head = _fc_head(pool5, config.pose_hidden, 6)

    @property
    def scale_init(self) -> float:
        """The pose head's starting scale in px/mm at this image size."""
        return self.config.typical_scale * self.config.image_size / 128

    def decode_pose(self, raw: Tensor) -> Tensor:
        """Raw pose-head outputs (B, 6) -> pose (B, 6).

        ``raw = 0`` is the default pose: frontal, face centred in the crop, ``scale_init``.
        yaw, pitch, roll = raw[:, :3] radians; (tx, ty) = S * (0.5 + raw[:, 3:5]) px, i.e. raw
        offsets from the crop centre in units of the crop side S; scale = scale_init *
        exp(raw[:, 5]) px/mm, always positive.
        """
        raw = raw.float()  # in float32 under autocast too: 0.5 + raw in bf16 is 0.2 px coarse
        size = self.config.image_size
        centre = size * (0.5 + raw[:, 3:5])
        scale = self.scale_init * torch.exp(raw[:, 5:6])
        return torch.cat([raw[:, :3], centre, scale], dim=1)

    def heads(self, features: Mapping[str, Tensor],
              tap_scale: Mapping[str, float | Tensor] | None = None) -> dict[str, Tensor]:
        """The shape heads: identity and expression coefficients from the backbone's taps.

        Whichever variant this is (fusion CNN, FC expression branch, single task), the part of
        :meth:`forward` above the backbone that predicts the shape; the pose head is left out.

        Args:
            features: ``{"pool1": (B, C1, S/2, S/2), ..., "pool5": (B, C5, S/32, S/32)}`` as
                the backbone returns them (the fusion CNN reads its taps, the FC heads pool5).
            tap_scale: optional ``{tap: scale}`` for the fusion CNN, a number or a (B,) tensor
                per tap, see :meth:`~e2far_lite.nets.FusionCNN.forward`; only for a network
                with a fusion CNN.

        Returns:
            ``{"a_id": (B, K), "a_exp": (B, E)}`` in std units.
        """
        if not isinstance(features, Mapping) or "pool5" not in features:
            raise TypeError(f"features: expected a dict of taps with 'pool5', "
                            f"got {type(features).__name__}")
        if tap_scale and self.fusion is None:
            raise ValueError("tap_scale: expected None for a network without a fusion CNN, "
                             f"got {dict(tap_scale)}")
        pool5 = features["pool5"]
        if self.shape_head is not None:
            a_id, a_exp = self.shape_head(pool5).split([self.num_id, self.num_exp], dim=1)
        else:
            a_id = self.id_head(pool5)
            a_exp = (self.fusion(features, tap_scale=tap_scale) if self.fusion is not None
                     else self.exp_head(pool5))
        return {"a_id": a_id, "a_exp": a_exp}

    def forward_from(self, layer: str, activation: Tensor, features: Mapping[str, Tensor],
                     tap_scale: Mapping[str, float | Tensor] | None = None,
                     ) -> dict[str, Tensor]:
        """Run the network from ``layer`` up, with ``activation`` in place of that tap.

        The backbone stages above ``layer`` are recomputed from ``activation``; the taps below
        it keep their values from ``features`` (a fusion tap below ``layer`` is then a constant
        input). With ``activation = features[layer]`` it gives :meth:`forward`'s ``a_id`` and
        ``a_exp``.

        Args:
            layer: one of the backbone's taps, ``"pool1"`` .. ``"pool5"``.
            activation: (B, C, h, w) replacing ``features[layer]``, same shape.
            features: the backbone's taps for the same images
                (``net(images, return_features=True)["features"]``).
            tap_scale: optional fusion tap scales, see :meth:`heads`.

        Returns:
            ``{"a_id": (B, K), "a_exp": (B, E)}`` in std units.
        """
        taps = self.backbone.taps
        if layer not in taps:
            raise ValueError(f"layer: expected one of {taps}, got {layer!r}")
        feats = dict(features)
        feats[layer] = activation
        x = activation
        for name in taps[taps.index(layer) + 1:]:
            x = self.backbone.stages[name](x)
            feats[name] = x
        return self.heads(feats, tap_scale)

    def forward(self, images: Tensor, return_features: bool = False) -> dict[str, Any]:
        """Predict the face in each image.

        Args:
            images: (B, 3, S, S) RGB in [0, 1], S = ``config.image_size``, floating point.
                An empty batch (B = 0) gives empty outputs. Values are not checked for NaN/inf
                (that would cost a device sync per step): they come out as non-finite
                predictions, which ``train`` reports as a non-finite loss.
            return_features: also return the backbone taps under ``"features"``.

        Returns:
            ``{"a_id": (B, K), "a_exp": (B, E)}`` in std units; ``"pose"`` (B, 6) yaw, pitch,
            roll (rad), tx, ty (px in the crop), scale (px/mm) for
            ``camera.weak_perspective_project``; optionally ``"features"``
            ``{"pool1": (B, C1, S/2, S/2), ..., "pool5": (B, C5, S/32, S/32)}``.
        """
        check_tensor(images, "images")
        size = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images: expected shape (B, 3, {size}, {size}), "
                             f"got {tuple(images.shape)}")
        check_floating(images, "images")
        features = self.backbone(images)
        out: dict[str, Any] = {**self.heads(features),
                               "pose": self.decode_pose(self.pose_head(features["pool5"]))}
        if return_features:
            out["features"] = features
        return out
