"""The multi-task loss of UH-E2FAR, measured on 3D vertices rather than on coefficients.

Coefficient errors weigh every direction alike, but a unit of the first identity coefficient
moves the face far more than a unit of the last one. The paper therefore compares shapes:

    L_neutral = mean over vertices of || U_id diag(σ_id) (â_id - a_id) ||²    (mm², per vertex)
    L_exp     = the same with U_exp, σ_exp and a_exp                           (mm²)
    L         = L_neutral + λ L_exp                                            (λ = 5)

Building (B, V, 3) vertices for that is wasteful: with ``A = U diag(σ)`` flattened to (3V, K),
``||A d||² = dᵀ G d`` for the Gram matrix ``G = AᵀA`` (K, K), computed once. This module adds
two terms for the pose head: a 2D landmark reprojection error and an optional direct pose error.

"Single task" (``LossConfig(multi_task=False)``, for ``NetConfig(multi_task=False)``): one loss
on the full shape, ``mean ||U_id Δid + U_exp Δexp||²`` with σ folded in, i.e. λ = 1 and the
id/exp cross term included, computed with the Gram matrix of the stacked basis [A_id, A_exp].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_floating, check_shape
from ..model.morphable_model import NUM_LANDMARKS, MorphableModel
from ..render.camera import weak_perspective_project


@dataclass
class LossConfig:
    lambda_exp: float = 5.0  # λ, weight of the expression vertex loss (multi-task only)
    landmark_weight: float = 1.0  # landmark term, in (% of the image size)²
    pose_weight: float = 0.1  # direct pose term, in degrees² / (% of image)² / (% of scale)²
    multi_task: bool = True  # mirror NetConfig.multi_task; False: one full-shape loss, λ = 1
    image_size: int = 128  # S, the crop the landmarks and tx, ty are measured in (px)


def gram_matrix(basis: Tensor, std: Tensor) -> Tensor:
    """``G = (U diag σ)ᵀ (U diag σ)``, so that ``||U diag(σ) d||² = dᵀ G d``.

    Computed in float64 and returned in the basis' dtype.

    Args:
        basis: (K, V, 3) directions (need not be orthonormal).
        std: (K,) standard deviations in mm.

    Returns:
        (K, K) in mm².
    """
    scaled = basis.flatten(1).double() * std.double()[:, None]  # (K, 3V)
    return (scaled @ scaled.T).to(basis.dtype)


def quadratic_vertex_loss(delta: Tensor, gram: Tensor, num_vertices: int) -> Tensor:
    """Mean squared vertex distance ``dᵀ G d / V`` per sample: (B, K), (K, K) -> (B,) in mm²."""
    return ((delta @ gram) * delta).sum(-1) / num_vertices


def vertex_loss_explicit(model: MorphableModel, pred: Mapping[str, Tensor],
                         target: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The vertex losses the slow, obvious way (builds (B, V, 3) shapes); a test reference.

    Args:
        model: the morphable model.
        pred, target: dicts with ``"a_id"`` (B, K) and ``"a_exp"`` (B, E).

    Returns:
        scalars in mm², means over batch and vertices of the squared vertex distance:
        ``"neutral"`` between neutral shapes, ``"expression"`` between expression offsets,
        ``"shape"`` between full shapes (the single-task loss).
    """
    neutral = model.neutral(pred["a_id"]) - model.neutral(target["a_id"])
    expression = (model.expression_offset(pred["a_exp"])
                  - model.expression_offset(target["a_exp"]))
    return {
        "neutral": neutral.pow(2).sum(-1).mean(),
        "expression": expression.pow(2).sum(-1).mean(),
        "shape": (neutral + expression).pow(2).sum(-1).mean(),
    }


class MultiTaskLoss(nn.Module):
    """Vertex, landmark and pose losses for E2FARNet's predictions.

    Holds the Gram matrices and the landmark rows of the model as buffers (so ``.to(device)``
    and ``.double()`` work), not the model itself.

    Terms (scalars, each averaged over the batch):
        ``neutral``, ``expression``: vertex losses in mm² (see the module docstring).
        ``shape``: full-shape vertex loss, id/exp cross term included, in mm².
        ``landmarks``: squared 2D distance between the predicted shape's landmarks, projected
            with the predicted pose (``camera.weak_perspective_project``), and the target
            landmarks, in percent of the image size (so 1.0 = an error of 1% of the crop side),
            averaged per face over the landmarks both defined by the model and visible in the
            target, then over faces.
        ``pose``: mean over the six pose entries of the squared error in degrees (angles), %
            of the image size (tx, ty) and % of scale (100 Δ log scale).
        ``total``: multi-task ``neutral + λ expression``; single task ``shape``; plus
            ``landmark_weight * landmarks + pose_weight * pose``.

    A term whose weight is 0 is returned as 0 and its inputs are not needed.

    Args:
        model: the morphable model the coefficients refer to.
        config: weights; ``LossConfig()`` by default.

    Examples:
        >>> model = MorphableModel.default()
        >>> loss = MultiTaskLoss(model, LossConfig(landmark_weight=0, pose_weight=0))
        >>> zero = {"a_id": torch.zeros(2, 62), "a_exp": torch.zeros(2, 29)}
        >>> float(loss(zero, zero)["total"])
        0.0
    """

    gram_id: Tensor
    gram_exp: Tensor
    gram_shape: Tensor
    landmark_index: Tensor
    landmark_mean: Tensor
    landmark_id_basis: Tensor
    landmark_exp_basis: Tensor

    def __init__(self, model: MorphableModel, config: LossConfig | None = None) -> None:
        super().__init__()
        config = config or LossConfig()
        for name in ("lambda_exp", "landmark_weight", "pose_weight"):
            value = getattr(config, name)
            if not 0 <= value < math.inf:
                raise ValueError(f"config.{name}: expected a weight >= 0 (finite), got {value}")
        if not 0 < config.image_size < math.inf:
            raise ValueError(f"config.image_size: expected > 0 px, got {config.image_size}")
        self.config = config
        self.num_vertices = model.num_vertices
        self.num_id = model.num_id
        self.num_exp = model.num_exp
        self.register_buffer("gram_id", gram_matrix(model.id_basis, model.id_std))
        self.register_buffer("gram_exp", gram_matrix(model.exp_basis, model.exp_std))
        both = torch.cat([model.id_basis, model.exp_basis], 0)
        self.register_buffer("gram_shape",
                             gram_matrix(both, torch.cat([model.id_std, model.exp_std])))
        # landmark rows of the model, std folded in: a 68-point model, cheap to evaluate
        index = torch.nonzero(model.landmark_mask).squeeze(1)  # (L,) of the 68 slots
        vertex = model.landmarks[index]  # (L,) vertex ids
        self.register_buffer("landmark_index", index)
        self.register_buffer("landmark_mean", model.mean[vertex])
        self.register_buffer("landmark_id_basis",
                             model.id_basis[:, vertex] * model.id_std[:, None, None])
        self.register_buffer("landmark_exp_basis",
                             model.exp_basis[:, vertex] * model.exp_std[:, None, None])

    def landmark_points(self, a_id: Tensor, a_exp: Tensor) -> Tensor:
        """Model-frame landmarks defined by the model: (B, K), (B, E) -> (B, L, 3) in mm.

        The rows ``landmark_index`` of ``model.landmark_points``, without its finiteness check
        (a diverging prediction should reach the training loop as a NaN loss, not an error).
        """
        return (self.landmark_mean
                + torch.einsum("bk,klc->blc", a_id, self.landmark_id_basis)
                + torch.einsum("be,elc->blc", a_exp, self.landmark_exp_basis))

    def _required(self) -> tuple[list[str], list[str]]:
        """Keys that pred and target must hold under this config."""
        cfg = self.config
        pred_keys, target_keys = ["a_id", "a_exp"], ["a_id", "a_exp"]
        if cfg.landmark_weight > 0 or cfg.pose_weight > 0:
            pred_keys.append("pose")
        if cfg.pose_weight > 0:
            target_keys.append("pose")
        if cfg.landmark_weight > 0:
            target_keys += ["landmarks", "visible"]
        return pred_keys, target_keys

    def _check(self, pred: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> None:
        batch = None
        for arg, given, keys in zip(("pred", "target"), (pred, target), self._required(),
                                    strict=True):
            if not isinstance(given, Mapping):
                raise TypeError(f"{arg}: expected a dict of tensors, got {type(given).__name__}")
            missing = [k for k in keys if k not in given]
            if missing:
                raise ValueError(f"{arg}: expected keys {keys}, missing {missing}")
            sizes = {"a_id": (self.num_id,), "a_exp": (self.num_exp,), "pose": (6,),
                     "landmarks": (NUM_LANDMARKS, 2), "visible": (NUM_LANDMARKS,)}
            for key in keys:
                name = f"{arg}[{key!r}]"
                value = check_shape(given[key], name, (batch, *sizes[key]))
                batch = value.shape[0]  # the first tensor fixes B for the others
                if key == "visible":
                    if value.dtype != torch.bool:
                        raise ValueError(f"{name}: expected dtype torch.bool, got {value.dtype}")
                else:
                    check_floating(value, name)
        if batch == 0:  # a mean over no faces is NaN, which training would report as divergence
            raise ValueError("pred['a_id']: expected a batch of at least one face, got B = 0")

    def landmark_loss(self, pred: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        """Landmark reprojection term, (% of the image size)², see the class docstring."""
        points = self.landmark_points(pred["a_id"], pred["a_exp"])
        projected = weak_perspective_project(points, pred["pose"])  # (B, L, 2) px
        visible = target["visible"][:, self.landmark_index]  # (B, L)
        # zero, not NaN, where invisible: a NaN target would poison the gradient through where
        goal = torch.where(visible[..., None], target["landmarks"][:, self.landmark_index], 0.0)
        error = ((projected - goal) * (100.0 / self.config.image_size)).pow(2).sum(-1)
        error = torch.where(visible, error, 0.0)
        # mean per face, then over faces: each face weighs the same, and the batch mean splits
        # exactly across data-parallel processes (a global visible count would not)
        return (error.sum(1) / visible.sum(1).clamp(min=1)).mean()

    def pose_loss(self, pred: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:
        """Direct pose term: degrees² / (% of image)² / (% of scale)², see the class docstring."""
        p, t = pred["pose"], target["pose"]
        angles = (p[:, :3] - t[:, :3]) * (180.0 / math.pi)
        shift = (p[:, 3:5] - t[:, 3:5]) * (100.0 / self.config.image_size)
        scale = 100.0 * (p[:, 5:].clamp(min=1e-8).log() - t[:, 5:].clamp(min=1e-8).log())
        return torch.cat([angles, shift, scale], 1).pow(2).mean()

    def forward(self, pred: Mapping[str, Tensor],
                target: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """All terms of the loss.

        Args:
            pred: the network's output: ``"a_id"`` (B, K), ``"a_exp"`` (B, E), ``"pose"``
                (B, 6) yaw, pitch, roll (rad), tx, ty (px), scale (px/mm).
            target: the batch: the same keys, plus ``"landmarks"`` (B, 68, 2) px and
                ``"visible"`` (B, 68) bool.

        Returns:
            ``{"neutral", "expression", "shape", "landmarks", "pose", "total"}``, scalars.
        """
        self._check(pred, target)
        cfg = self.config
        d_id = pred["a_id"] - target["a_id"]
        d_exp = pred["a_exp"] - target["a_exp"]
        neutral = quadratic_vertex_loss(d_id, self.gram_id, self.num_vertices).mean()
        expression = quadratic_vertex_loss(d_exp, self.gram_exp, self.num_vertices).mean()
        shape = quadratic_vertex_loss(torch.cat([d_id, d_exp], 1), self.gram_shape,
                                      self.num_vertices).mean()
        zero = neutral.new_zeros(())
        landmarks = self.landmark_loss(pred, target) if cfg.landmark_weight > 0 else zero
        pose = self.pose_loss(pred, target) if cfg.pose_weight > 0 else zero
        total = neutral + cfg.lambda_exp * expression if cfg.multi_task else shape
        total = total + cfg.landmark_weight * landmarks + cfg.pose_weight * pose
        return {"neutral": neutral, "expression": expression, "shape": shape,
                "landmarks": landmarks, "pose": pose, "total": total}
