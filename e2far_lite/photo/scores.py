"""The network's landmarks scored against annotated real photos (landmark NME), beside the mean
face placed in the same box and, as a floor, the model fitted to the annotations themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..evaluate.fitting import fit_landmarks
from ..io.landmark_files import read_annotations
from ..model.metrics import landmark_nme
from ..model.morphable_model import MorphableModel
from ..render.camera import weak_perspective_project
from ..train.configs import TrainConfig
from .detect import (
    LANDMARK_BOX,
    Box,
    BoxConvention,
    assign_faces,
    box_convention,
    default_detector,
    detect_faces,
)
from .reconstruction import REFINE, CropBox, reconstruct_faces

#: The parts of the iBUG 68-point layout (0-based indices), for :meth:`LandmarkNME.by_part`.
LANDMARK_PARTS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)), "eyebrows": tuple(range(17, 27)), "nose": tuple(range(27, 36)),
    "eyes": tuple(range(36, 48)), "mouth": tuple(range(48, 68)),
}


def mean_shape_landmarks(model: MorphableModel, box: Box,
                         convention: BoxConvention = LANDMARK_BOX) -> Tensor:
    """The baseline: the mean face, frontal, scaled and moved so its landmark box is the one
    ``box`` implies (``convention``). No network, no pose: (68, 2) photo pixels."""
    where = model.mean.device
    points = model.landmark_points(torch.zeros(1, model.num_id, device=where),
                                   torch.zeros(1, model.num_exp, device=where))
    xy = points[0, :, :2].cpu() * torch.tensor([1.0, -1.0])  # frontal view, y down
    finite = xy[torch.isfinite(xy).all(1)]
    lo, hi = finite.amin(0), finite.amax(0)
    cx, cy, side = convention.landmark_box(box)
    return (xy - (lo + hi) / 2) * (side / float((hi - lo).max())) + torch.tensor([cx, cy])


@dataclass
class LandmarkNME:
    """Per-face landmark NME on annotated photos (fractions of ``sqrt(w * h)`` of the
    annotated landmarks' box; multiply by 100 for %)."""

    faces: list  # the AnnotatedFace records, in file order
    nme: list[float]  # the network's (NaN for a face the detector missed)
    baseline: list[float]  # the mean face, frontal, fitted to the box
    predicted: list[Tensor | None]  # the network's (68, 2) landmarks per face, photo pixels
    crops: list[CropBox | None]  # the crop of each face's last pass (after refining)
    oracle: list[float] | None = None  # fit_landmarks on the answers: a floor, not a rival
    boxes: list[Box | None] | None = None  # the box each face was cropped from

    @property
    def found(self) -> int:
        """Faces with a box (all of them unless boxes were detected)."""
        return int(np.isfinite(self.nme).sum())

    @property
    def mean(self) -> float:
        """Mean NME over the faces with a box."""
        return float(np.nanmean(self.nme)) if self.found else float("nan")

    @property
    def baseline_mean(self) -> float:
        return float(np.nanmean(self.baseline)) if self.found else float("nan")

    @property
    def oracle_mean(self) -> float:
        return float("nan") if self.oracle is None else float(np.mean(self.oracle))

    def by_part(self) -> dict[str, float]:
        """The network's NME per part of the face (:data:`LANDMARK_PARTS`): for each face found,
        the mean distance over the part's points / ``sqrt(w * h)`` of all its annotated points'
        box, averaged over faces (fractions, like :attr:`mean`). Points count where both the
        annotation and the prediction are finite; a part with none is NaN."""
        rows = []
        for face, points in zip(self.faces, self.predicted, strict=True):
            if points is None:
                continue
            target = np.asarray(face.landmarks, dtype=np.float64)
            annotated = np.isfinite(target).all(1)
            if annotated.sum() < 2:
                continue
            lo, hi = target[annotated].min(0), target[annotated].max(0)
            size = float(np.sqrt(np.prod(hi - lo)))
            if not size > 0:
                continue
            predicted = np.asarray(points, dtype=np.float64)
            both = annotated & np.isfinite(predicted).all(1)
            distance = np.linalg.norm(np.where(both[:, None], predicted - target, 0), axis=1)
            rows.append([distance[list(ids)][both[list(ids)]].mean() / size
                         if both[list(ids)].any() else np.nan
                         for ids in LANDMARK_PARTS.values()])
        table = np.array(rows).reshape(-1, len(LANDMARK_PARTS))
        return {name: float(np.mean(column[np.isfinite(column)])) if np.isfinite(column).any()
                else float("nan") for name, column in zip(LANDMARK_PARTS, table.T, strict=True)}


def real_landmark_nme(source: str | os.PathLike, net: nn.Module, model: MorphableModel,
                      config: TrainConfig, use_box: str = "annotated",
                      oracle: bool = False, detector: str = "auto",
                      refine: int = REFINE) -> LandmarkNME:
    """Landmark NME of the network on annotated real photos.

    For each annotated face: the box (dlib XML: the annotated box; ``.pts``: the landmarks'
    box) is taken as the landmark box (:data:`LANDMARK_BOX`), the face is cropped and
    reconstructed, the model's 68 landmarks are projected into the photo, and the NME is
    computed as :func:`~e2far_lite.model.landmark_nme` does (all annotated points,
    normalised by ``sqrt(w * h)`` of their box). The baseline is :func:`mean_shape_landmarks`
    for the same box.

    Args:
        source: a dlib ``.xml`` file, a ``.pts`` file, or a folder (see
            :func:`~e2far_lite.io.read_annotations`).
        net, model, config: what :func:`~e2far_lite.train.load_checkpoint` returns.
        use_box: ``"annotated"`` (the file's box where there is one), ``"landmarks"`` (the
            annotated landmarks' own box for every face: the 3DDFA AFLW2000-3D protocol) or
            ``"detected"`` (:func:`detect_faces`' box that :func:`assign_faces` pairs with the
            face, each box used once, read through :func:`box_convention`; a face without
            one gets NaN and is left out of the means: see :attr:`LandmarkNME.found`).
        detector: for ``use_box="detected"``: ``"auto"``, ``"hog"`` or ``"cascade"``.
        oracle: also fit the model to the annotated landmarks themselves
            (:func:`~e2far_lite.evaluate.fit_landmarks`): it reads the answers, so it is no
            competitor, but it shows how close the model's 68 points can come to these
            annotations at all (their definitions differ a little, e.g. on the jaw line).
        refine: passes after the first, each re-cropping around the previous pass's landmarks
            (:func:`~e2far_lite.photo.reconstruct_faces`); the mean face is placed in the
            box itself, once.
    """
    if use_box not in ("annotated", "landmarks", "detected"):
        raise ValueError(f"use_box: expected 'annotated', 'landmarks' or 'detected', "
                         f"got {use_box!r}")
    if detector == "auto" and use_box == "detected":
        detector = default_detector()
    convention = box_convention(detector) if use_box == "detected" else LANDMARK_BOX
    faces = read_annotations(source)
    if not faces:
        raise ValueError(f"source: expected annotated faces in {str(source)!r}, got none")
    by_image: dict[Path, list[int]] = {}
    for i, face in enumerate(faces):
        by_image.setdefault(face.image, []).append(i)
    nme = [float("nan")] * len(faces)
    baseline = [float("nan")] * len(faces)
    predicted: list = [None] * len(faces)
    crops: list = [None] * len(faces)
    used: list = [None] * len(faces)
    for image, indices in by_image.items():
        if use_box == "detected":
            boxes = assign_faces(detect_faces(image, detector=detector),
                                 [faces[i].landmarks for i in indices])
        else:
            boxes = [faces[i].box if faces[i].box is not None and use_box == "annotated"
                     else faces[i].landmark_box() for i in indices]
        pairs = [(i, box) for i, box in zip(indices, boxes, strict=True) if box is not None]
        if not pairs:
            continue
        recs = reconstruct_faces(image, net, model, config, [b for _, b in pairs], convention,
                                 refine=refine)
        for (i, box), rec in zip(pairs, recs, strict=True):
            target = torch.as_tensor(faces[i].landmarks, dtype=torch.float32)[None]
            nme[i] = float(landmark_nme(rec.landmarks2d[None], target)[0])
            predicted[i], crops[i], used[i] = rec.landmarks2d, rec.crop, box
            base = mean_shape_landmarks(model, box, convention)[None]
            baseline[i] = float(landmark_nme(base, target)[0])
    fitted = None
    if oracle:
        targets = torch.as_tensor(np.stack([f.landmarks for f in faces]), dtype=torch.float32)
        visible = torch.isfinite(targets).all(-1)
        fit = fit_landmarks(model, targets.nan_to_num(), visible)
        points = model.landmark_points(fit["a_id"], fit["a_exp"]).cpu()
        projected = weak_perspective_project(points, fit["pose"].cpu())
        fitted = [float(v) for v in landmark_nme(projected, targets)]
    return LandmarkNME(faces, nme, baseline, predicted, crops, fitted, used)


def format_nme_table(result: LandmarkNME) -> str:
    """Per-face and mean NME (%) of :func:`real_landmark_nme`'s result, as printable lines."""
    has_oracle = result.oracle is not None
    head = f"{'face':>4}  {'image':<22}{'box px':>7}  {'network':>8}  {'mean face':>9}"
    lines = [head + (f"  {'oracle*':>8}" if has_oracle else "")]
    for i, face in enumerate(result.faces):
        box = result.boxes[i] if result.boxes is not None else face.box
        if np.isfinite(result.nme[i]):
            x, y, w, h = box if box is not None else face.landmark_box()
            row = (f"{i:>4}  {face.image.name[:21]:<22}{np.sqrt(w * h):>7.0f}  "
                   f"{100 * result.nme[i]:>7.2f}%  {100 * result.baseline[i]:>8.2f}%")
        else:
            row = f"{i:>4}  {face.image.name[:21]:<22}{'':>7}  {'missed':>8}  {'':>9}"
        lines.append(row + (f"  {100 * result.oracle[i]:>7.2f}%" if has_oracle else ""))
    count = len(result.faces)
    label = f"{count} faces" if result.found == count else f"{result.found} of {count} found"
    mean = (f"{'mean':>4}  {label:<22}{'':>7}  {100 * result.mean:>7.2f}%"
            f"  {100 * result.baseline_mean:>8.2f}%")
    lines.append(mean + (f"  {100 * result.oracle_mean:>7.2f}%" if has_oracle else ""))
    lines.append("network by part: " + ", ".join(f"{name} {100 * value:.2f}%"
                                                  for name, value in result.by_part().items()))
    lines.append("NME = mean landmark distance / sqrt(w*h) of the annotated landmarks' box. "
                 "mean face: the mean shape, frontal, scaled into the box.")
    if result.found < count:
        lines.append(f"missed: no detected box matched the face; network and mean face are "
                     f"averaged over the {result.found} faces found"
                     + (", the oracle over all" if has_oracle else "") + ".")
    if has_oracle:
        lines.append("* oracle: the model fitted to the annotated landmarks themselves "
                     "(fitting.fit_landmarks). It reads the answers: a floor, not a baseline.")
    return "\n".join(lines)


__all__ = ["real_landmark_nme", "LandmarkNME", "LANDMARK_PARTS", "format_nme_table",
           "mean_shape_landmarks"]
