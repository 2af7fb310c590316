"""Reconstructing the faces of a photo: crop each as training crops were cut, run the network,
place the result back in photo pixels.

    photo (H, W, 3) --detect_faces--> face box (x, y, w, h) px
        --BoxConvention--> the box the 68 landmarks should fill
        --square crop, side = mean(DataConfig.box_scale) x landmark box side--> (3, S, S)
        --E2FARNet--> a_id, a_exp, pose in crop pixels --> mesh and landmarks in photo pixels
        --refine: re-crop around the box of those 68 landmarks, run again--> the result

The refining pass frames the face exactly as training crops were framed (by its 68 landmarks'
box), whatever box the face came from: a detector's box and its convention are only a first
guess.

Pixel coordinates are the package's (:mod:`e2far_lite.render.camera`): x right, y down, origin at
the top-left corner of the top-left pixel. Boxes are ``(x, y, w, h)``: left, top, width, height.

The crop convention is explained in :mod:`e2far_lite.photo.detect`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import BadInput, NoFaceFound
from ..model.morphable_model import MorphableModel
from ..render.camera import rotation_matrix, weak_perspective_project
from ..train.configs import TrainConfig
from .contour import contour_landmarks
from .detect import (
    DETECTORS,
    LANDMARK_BOX,
    Box,
    BoxConvention,
    box_convention,
    default_detector,
    detect_faces,
)
from .images import load_image

#: Refining passes by default: one. On the development faces a second crop around the first
#: pass's landmarks cut the NME from detected boxes (4.54 -> 4.27 %), a third pass to 4.10 %
#: (``experiments/detector_study.json``, docs/real-photos.md); one re-crop stays the default
#: rather than a count tuned on the faces it is scored on.
REFINE = 1


@dataclass(frozen=True)
class CropBox:
    """A square crop of a photo: pixels ``[x0, x0 + side) x [y0, y0 + side)`` (may overhang)."""

    x0: int
    y0: int
    side: int

    def to_photo(self, points: Tensor, size: int) -> Tensor:
        """Crop pixels of an (S, S) input (size = S) -> photo pixels: (..., 2) -> (..., 2)."""
        return points * (self.side / size) + points.new_tensor((self.x0, self.y0))


def crop_box(box: Box, config: TrainConfig, convention: BoxConvention = LANDMARK_BOX,
             ) -> CropBox:
    """The square crop that frames ``box``'s face as training crops framed theirs.

    Training crops: centre = landmark box centre, side = U(box_scale) x landmark box side.
    Here the landmark box comes from ``convention`` and the side factor is the middle of
    ``config.data.box_scale`` (1.325 for the presets).
    """
    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
        raise ValueError(f"box: expected (x, y, w, h) with w, h > 0 px, got {tuple(box)}")
    cx, cy, lm_side = convention.landmark_box((x, y, w, h))
    side = max(1, round(sum(config.data.box_scale) / 2 * lm_side))
    return CropBox(round(cx - side / 2), round(cy - side / 2), side)


def cut_crop(photo: np.ndarray, crop: CropBox, size: int) -> Tensor:
    """Cut ``crop`` out of ``photo`` (H, W, 3) and resize it to the network input (3, S, S).

    Crop pixel ``(u, v)`` (corner origin) shows photo pixel ``(x0, y0) + (u, v) * side / S``;
    parts outside the photo repeat its border pixels. Crops over 8 S are first shrunk by an
    integer block mean (off by under one photo pixel per block), then resized with
    anti-aliasing.
    """
    from skimage.transform import downscale_local_mean, resize

    height, width = photo.shape[:2]
    x0, y0, side = crop.x0, crop.y0, crop.side
    rows = np.clip(np.arange(y0, y0 + side), 0, height - 1)
    cols = np.clip(np.arange(x0, x0 + side), 0, width - 1)
    block = max(1, side // (4 * size))
    if block > 1:  # sample a side that the block divides; a fraction of a pixel per block
        keep = side // block * block
        rows = rows[np.linspace(0, side - 1, keep).round().astype(int)]
        cols = cols[np.linspace(0, side - 1, keep).round().astype(int)]
    patch = photo[rows[:, None], cols[None, :]]
    if block > 1:
        patch = downscale_local_mean(patch, (block, block, 1))
    patch = resize(patch, (size, size), anti_aliasing=patch.shape[0] > size, order=1)
    return torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32)).permute(2, 0, 1)


@dataclass
class Reconstruction:
    """One face of a photo, reconstructed. Tensors on the CPU, float32.

    Attributes:
        box: (x, y, w, h) photo px, the face box (detected or given).
        crop: the square :class:`CropBox` of the last pass (after ``refine`` re-crops).
        image: (3, S, S) the network's input of the last pass, in [0, 1].
        a_id: (K,), a_exp: (E,) coefficients in std units.
        pose: (6,) yaw, pitch, roll (rad), tx, ty (crop px), scale (px/mm in the crop).
        photo_pose: (6,) the same camera in photo pixels (tx, ty, scale rescaled).
        vertices: (V, 3) mm, model frame (y up, z toward the camera): the face's shape.
        photo_vertices: (V, 3) the posed face in photo pixels: x right, y down (like the
            photo), z toward the camera in the same pixel units (weak perspective: depth is
            ``scale`` x the rotated model's z; its zero is the model origin's depth).
        landmarks2d: (68, 2) photo px, the model's landmarks projected (NaN where undefined),
            the jaw line's on the face's silhouette as photos are annotated
            (:func:`~e2far_lite.photo.contour_landmarks`).
    """

    box: Box
    crop: CropBox
    image: Tensor
    a_id: Tensor
    a_exp: Tensor
    pose: Tensor
    photo_pose: Tensor
    vertices: Tensor
    photo_vertices: Tensor
    landmarks2d: Tensor


def _posed(points: Tensor, pose: Tensor) -> Tensor:
    """Model-frame points (P, 3) mm -> (P, 3) px: weak-perspective x, y and scaled depth."""
    xy = weak_perspective_project(points[None], pose[None])[0]
    depth = (points @ rotation_matrix(pose[None, :3])[0].T)[:, 2] * pose[5]
    return torch.cat([xy, depth[:, None]], 1)


def _landmark_crop(landmarks: Tensor, config: TrainConfig, fallback: CropBox) -> CropBox:
    """The crop framing predicted landmarks (68, 2) photo px as training crops framed theirs
    (centre of their box, side from its larger side); ``fallback`` when they give no usable
    box (fewer than two finite points, or a larger side under 2 px)."""
    points = landmarks[torch.isfinite(landmarks).all(1)]
    if len(points) < 2:
        return fallback
    lo, hi = points.amin(0), points.amax(0)
    side = float((hi - lo).max())
    if not side >= 2:
        return fallback
    cx, cy = (float(v) for v in (lo + hi) / 2)
    return crop_box((cx - side / 2, cy - side / 2, side, side), config, LANDMARK_BOX)


def _run(net: nn.Module, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The network's a_id, a_exp, pose for (B, 3, S, S) crops, in eval mode, on the CPU."""
    device = next(iter(net.parameters()), torch.empty(0)).device
    was_training = net.training
    net.eval()
    try:
        out = net(images.to(device))
    finally:
        net.train(was_training)
    return tuple(out[k].detach().float().cpu() for k in ("a_id", "a_exp", "pose"))


def _check_config(config: TrainConfig) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig (load_checkpoint's third value), "
                        f"got {type(config).__name__}")


def _is_number(value: object) -> bool:
    """A plain, numpy or 0-d torch number (one coordinate of a box)."""
    return (isinstance(value, (int, float, np.number))
            or (isinstance(value, (Tensor, np.ndarray)) and value.ndim == 0))


def _check_boxes(boxes: Sequence[Box], width: int, height: int, name: str) -> list[Box]:
    """Boxes as float tuples, each finite, positive and overlapping the W x H photo ``name``,
    at most twice its size (larger crops would only hold the photo's repeated border)."""
    boxes = list(boxes)
    if len(boxes) == 4 and all(_is_number(v) for v in boxes):
        raise TypeError(f"boxes: expected a list of (x, y, w, h) boxes, got one box "
                        f"{tuple(float(v) for v in boxes)}; pass [box], or box= to reconstruct")
    out = []
    for i, box in enumerate(boxes):
        try:
            values = tuple(float(v) for v in box)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"boxes[{i}]: expected (x, y, w, h) in pixels, got {box!r}") from None
        if len(values) != 4:
            raise BadInput(f"boxes[{i}]", "(x, y, w, h) in pixels", repr(box))
        x, y, w, h = values
        if not (np.isfinite(values).all() and w > 0 and h > 0):
            raise BadInput(f"boxes[{i}]", "(x, y, w, h) with w, h > 0 px", str(values))
        if not (x < width and y < height and x + w > 0 and y + h > 0):
            raise BadInput(f"boxes[{i}]", f"a box overlapping {name} ({width} x {height} px)",
                           str(values))
        if max(w, h) > 2 * max(width, height):
            raise BadInput(f"boxes[{i}]", f"a box at most twice the size of {name} "
                                          f"({2 * max(width, height)} px)", str(values))
        out.append(values)
    return out


@torch.no_grad()
def reconstruct_faces(image, net: nn.Module, model: MorphableModel, config: TrainConfig,
                      boxes: Sequence[Box] | None = None,
                      convention: BoxConvention | None = None,
                      name: str | None = None, refine: int = REFINE,
                      detector: str = "auto") -> list[Reconstruction]:
    """Reconstruct every face of a photo in one batch.

    Args:
        image: anything :func:`load_image` takes.
        net: an E2FARNet (or any module with its output dict) for ``config.image_size``.
        model: the morphable model of its coefficients.
        config: the run's :class:`~e2far_lite.train.TrainConfig` (input size, crop rule).
        boxes: face boxes (x, y, w, h) in photo pixels; default :func:`detect_faces`.
        convention: how ``boxes`` relate to the landmarks; default the detector's
            (:func:`box_convention`) for detected faces, :data:`LANDMARK_BOX` for given boxes.
        name: the photo's name in messages (default the file name).
        refine: passes after the first (0 = one pass). Each cuts a new crop around the box of
            the previous pass's 68 projected landmarks, as training crops were cut, and runs
            the network again (:data:`REFINE` passes by default; README, "Real photographs",
            measures them).
        detector: the detector that finds the faces when ``boxes`` is None: ``"auto"``,
            ``"hog"`` or ``"cascade"`` (:func:`detect_faces`).

    Returns:
        one :class:`Reconstruction` per box, in the order of ``boxes`` (largest first when
        detected).

    Raises:
        NoFaceFound: ``no face found in <name>; pass box=(x, y, w, h)`` when the detector
            finds nothing.
        BadInput: (a ``ValueError``) a box that is not finite and positive, misses the photo or
            is over twice its size (named ``boxes[i]``); a ``detector`` or ``refine`` out of
            range; or the reasons of :func:`load_image`.
        TypeError: ``net``, ``model``, ``config`` or ``convention`` of another type (e.g. net
            and model swapped), or one box passed as ``boxes``.
    """
    _check_config(config)
    if not isinstance(net, nn.Module) or isinstance(net, MorphableModel):
        raise TypeError(f"net: expected an E2FARNet (load_checkpoint's first value), got "
                        f"{type(net).__name__}")
    if not isinstance(model, MorphableModel):
        raise TypeError(f"model: expected a MorphableModel (load_checkpoint's second value), "
                        f"got {type(model).__name__}")
    if convention is not None and not isinstance(convention, BoxConvention):
        raise TypeError(f"convention: expected a BoxConvention (e.g. photo.LANDMARK_BOX or "
                        f"photo.HOG_BOX), got {type(convention).__name__} {convention!r}")
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)):
        raise TypeError(f"refine: expected a whole number of passes >= 0, got "
                        f"{type(refine).__name__} {refine!r}")
    if refine < 0:
        raise BadInput("refine", "a whole number of passes >= 0", str(refine))
    refine = int(refine)
    if detector != "auto" and detector not in DETECTORS:
        raise BadInput("detector", f"'auto' or one of {DETECTORS}", repr(detector))
    if name is None:
        name = Path(image).name if isinstance(image, (str, os.PathLike)) else "the image"
    photo = load_image(image, name=name)
    if boxes is None:
        detector = default_detector() if detector == "auto" else detector
        boxes = detect_faces(photo, detector=detector)
        if not boxes:
            raise NoFaceFound("boxes", f"face boxes, or a photo in which the {detector} "
                                       "detector finds a face", f"{name}, in which it finds none",
                              message=f"no face found in {name}; pass box=(x, y, w, h)")
        convention = box_convention(detector) if convention is None else convention
    convention = LANDMARK_BOX if convention is None else convention
    boxes = _check_boxes(boxes, photo.shape[1], photo.shape[0], name)
    if not boxes:
        return []
    size = config.image_size
    where = model.mean.device  # the model stays where it is; results come to the CPU
    crops = [crop_box(box, config, convention) for box in boxes]
    for last in range(refine, -1, -1):
        images = torch.stack([cut_crop(photo, crop, size) for crop in crops])
        a_id, a_exp, pose = _run(net, images)
        photo_poses = [torch.cat([pose[i, :3], crop.to_photo(pose[i, 3:5], size),
                                  pose[i, 5:6] * (crop.side / size)])
                       for i, crop in enumerate(crops)]
        if last:  # the next crop frames the fixed landmarks, as training crops did
            points = model.landmark_points(a_id.to(where), a_exp.to(where)).cpu()
            fixed = weak_perspective_project(points, torch.stack(photo_poses))
            crops = [_landmark_crop(lm, config, crop)
                     for lm, crop in zip(fixed, crops, strict=True)]
    vertices = model(a_id.to(where), a_exp.to(where))
    landmarks = contour_landmarks(vertices, torch.stack(photo_poses).to(where), model).cpu()
    vertices = vertices.cpu()
    return [Reconstruction(
        box=box, crop=crop, image=images[i], a_id=a_id[i], a_exp=a_exp[i], pose=pose[i],
        photo_pose=photo_poses[i], vertices=vertices[i],
        photo_vertices=_posed(vertices[i], photo_poses[i]), landmarks2d=landmarks[i])
        for i, (box, crop) in enumerate(zip(boxes, crops, strict=True))]


def reconstruct(image, net: nn.Module, model: MorphableModel, config: TrainConfig,
                box: Box | None = None, convention: BoxConvention | None = None,
                name: str | None = None, refine: int = REFINE,
                detector: str = "auto") -> Reconstruction:
    """Reconstruct one face: the largest the detector finds, or the one in ``box``.

    Args:
        image: a file path, PIL image, array or tensor (see :func:`load_image`).
        net, model, config: what :func:`~e2far_lite.train.load_checkpoint` returns.
        box: (x, y, w, h) photo pixels of the face, tight around it (eyebrows to chin, jaw to
            jaw, like the 68 landmarks' box; ``convention`` says otherwise): four numbers, a
            tuple, list, numpy array or tensor; default: detect.
        convention, refine, detector: see :func:`reconstruct_faces`.
        name: the photo's name in error messages.

    Returns:
        :class:`Reconstruction`.

    Examples:
        >>> import skimage.data
        >>> from e2far_lite.train.shipped import pretrained
        >>> net, model, config, _ = pretrained(smoke=True)
        >>> face = reconstruct(skimage.data.astronaut(), net, model, config)
        >>> face.landmarks2d.shape
        torch.Size([68, 2])
    """
    if box is not None and not (len(box) == 4 and all(_is_number(v) for v in box)):
        raise TypeError(f"box: expected (x, y, w, h) in pixels, got {box!r}")
    boxes = None if box is None else [box]
    return reconstruct_faces(image, net, model, config, boxes, convention, name, refine,
                             detector)[0]


__all__ = ["REFINE", "CropBox", "crop_box", "cut_crop", "Reconstruction", "reconstruct",
           "reconstruct_faces"]
