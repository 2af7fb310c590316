"""Real photographs: find the face, crop it as training crops were cut, reconstruct, draw, export.

    photo (H, W, 3) --detect_faces--> face box (x, y, w, h) px
        --BoxConvention--> the box the 68 landmarks should fill
        --square crop, side = mean(DataConfig.box_scale) x landmark box side--> (3, S, S)
        --E2FARNet--> a_id, a_exp, pose in crop pixels --> mesh and landmarks in photo pixels

Pixel coordinates are the package's (:mod:`e2far_lite.render.camera`): x right, y down, origin at
the top-left corner of the top-left pixel. Boxes are ``(x, y, w, h)``: left, top, width, height.

**The detector.** dlib's HOG frontal face detector (``dlib-bin`` wheel, model inside) when dlib
is installed, else scikit-image's LBP cascade with a warning. On the 18 faces of 4 development
photos (``data/detector_study.py``; a face is found when a box's centre lies within 0.4 of its
68-landmark box's side of that box's centre and the sides differ at most 2x): HOG 18/18 found,
0 false faces; OpenCV's best Haar cascade 15/18 with 1 false; the LBP cascade 11/18 with 2.

**Why a box convention.** The network was trained on crops cut around the projected 68
landmarks: a square centred on the landmarks' box (jitter ±``box_shift`` of the side), its side
``box_scale`` (1.2-1.45) times the larger side of that box. A face detector's box is not the
landmark box: scikit-image's LBP cascade frames a real face from the forehead to just above
the chin. A :class:`BoxConvention` says which landmark box a detector box implies; the crop
follows from it. Measured with this module's :func:`detect_faces` and
:func:`fit_box_convention` (medians over faces; ``s`` = detector box side; ``dx, dy`` =
landmark box centre minus detector box centre; spread = interquartile range / 1.35 of the side
ratio):

=====================================================  ========  =========  ======  ======  ======
faces                                                  found     side / s   dx / s  dy / s  spread
=====================================================  ========  =========  ======  ======  ======
LBP cascade: synthetic renders, 256 px, yaw < 30°      99/240    1.05       0.00    +0.17   0.21
LBP cascade: real photos, dev set, dlib's 68 landmarks 11/18     0.85       +0.05   +0.13   0.07
HOG: real photos, dev set, dlib's 68 landmarks         18/18     0.93       +0.11   +0.12   0.11
=====================================================  ========  =========  ======  ======  ======

For the cascade the two disagree by 20% in size: it boxes a rendered mask (no hair, forehead,
ears) tighter than a real head. :data:`CASCADE_BOX` and :data:`HOG_BOX` use the real-photo
figures (sideways shift set to 0 by symmetry), because detections are made on real photos: on
the 11 dev faces the cascade finds, crops cut with the synthetic figures gave 800-step
``cpu-quick`` networks a landmark NME of 20.5% (trained on black backgrounds) and 8.7%
(cluttered), crops cut with the real ones 11.8% and 6.7%. :data:`CASCADE_BOX_SYNTHETIC` keeps
the synthetic figures. Annotated boxes in :func:`real_landmark_nme` use no detector unless
``use_box="detected"``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..model.morphable_model import MorphableModel
from ..render.camera import rotation_matrix, to_camera, weak_perspective_project
from ..train.configs import TrainConfig

Box = tuple[float, float, float, float]

#: Photos are searched for faces at most this many pixels on their longer side (speed); boxes
#: are scaled back, and the crop is cut from the full-resolution photo.
DETECT_MAX_SIDE = 640
#: The cascade's own window (its training size): no smaller face can be found.
CASCADE_WINDOW = 24


# ---------------------------------------------------------------------------- images
def load_image(image, name: str | None = None) -> np.ndarray:
    """A photo as an (H, W, 3) float32 RGB array in [0, 1].

    Args:
        image: a file path (JPEG, PNG, ...; the EXIF orientation of phone photos is applied), a
            PIL image, a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8,
            uint16, bool or floats in [0, 1], or a torch tensor (C, H, W) like the package's
            images. Grey images are replicated to RGB; RGBA is composited on white.
        name: what to call the image in error messages (default: the file name).

    Raises:
        FileNotFoundError: a path that does not exist. ValueError: not an image file, or an
            array of another shape, dtype or value range.
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_file(Path(image))
    from PIL import Image  # Pillow comes with matplotlib

    name = name or "image"
    if isinstance(image, Image.Image):
        image = np.asarray(_plain_mode(image))
    if isinstance(image, Tensor):
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3, 4):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a file path, PIL image, numpy array or tensor, "
                        f"got {type(image).__name__}")
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), "
                         f"got {tuple(array.shape)}")
    if min(array.shape[:2]) < 8:
        raise ValueError(f"{name}: expected an image at least 8 px on each side, "
                         f"got {array.shape[1]} x {array.shape[0]}")
    if array.dtype == np.uint8:
        out = array.astype(np.float32) / 255
    elif array.dtype == np.uint16:
        out = array.astype(np.float32) / 65535
    elif array.dtype == np.bool_:
        out = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        lo, hi = float(out.min()), float(out.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"{name}: expected floats in [0, 1], got range [{lo:g}, {hi:g}]"
                             + ("; divide 8-bit values by 255" if hi <= 255 else ""))
        out = out.clip(0, 1)
    else:
        raise ValueError(f"{name}: expected dtype uint8, uint16, bool or float, "
                         f"got {array.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    elif out.shape[2] == 4:  # composite on white: transparent pixels become background
        alpha = out[..., 3:]
        out = out[..., :3] * alpha + (1 - alpha)
    return np.ascontiguousarray(out, dtype=np.float32)


def _plain_mode(image):
    """A PIL image in a mode numpy reads as uint8/uint16 grey, RGB or RGBA."""
    if image.mode in ("L", "RGB", "RGBA", "I;16"):
        return image
    if image.mode in ("I", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(image)
        if array.min() >= 0 and array.max() <= 65535:
            from PIL import Image

            return Image.fromarray(array.astype(np.uint16))
    if image.mode == "1":
        return image.convert("L")
    has_alpha = "A" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _read_file(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"image: expected an existing image file, got {str(path)!r}")
    try:
        with Image.open(path) as handle:
            picture = ImageOps.exif_transpose(handle)  # phones store the rotation in EXIF
            picture.load()
            kind = handle.format
    except UnidentifiedImageError:
        raise ValueError(f"{path.name}: not an image file Pillow can read (expected JPEG, PNG, "
                         f"BMP, TIFF, WebP, ...; got {_sniff(path)})") from None
    except Image.DecompressionBombError as err:
        reason = str(err).split(", could be")[0]  # "Image size (N pixels) exceeds limit of M"
        raise ValueError(f"{path.name}: refused as a possible decompression bomb ({reason}); "
                         "scale the photo down first") from None
    except OSError as err:
        raise ValueError(f"{path.name}: a broken or truncated {_kind_of(path)} image "
                         f"({err})") from None
    try:
        return load_image(np.asarray(_plain_mode(picture)), name=path.name)
    except ValueError as err:
        raise ValueError(f"{err} (a {kind} file)") from None


def _kind_of(path: Path) -> str:
    return path.suffix.lstrip(".").upper() or "extension-less"


def _sniff(path: Path) -> str:
    head = path.read_bytes()[:64]
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
        return f"text starting {text[:24]!r}"
    except UnicodeDecodeError:
        return f"binary data starting {head[:8]!r}"


# ---------------------------------------------------------------------------- detection
#: The detectors :func:`detect_faces` knows: dlib's HOG frontal detector (``pip install
#: dlib-bin``; the model is inside the wheel) and scikit-image's bundled LBP cascade.
DETECTORS = ("hog", "cascade")
#: dlib's HOG detector scans an 80 x 80 px window: smaller faces are found by upsampling.
HOG_WINDOW = 80
#: Detections scoring below this are dropped (dlib's own default is 0). On the development
#: photos the weakest true face scores 0.22; the false face on scikit-image's astronaut (her
#: sleeve) 0.12; the threshold is halfway (see data/detector_study.py).
HOG_THRESHOLD = 0.17


@functools.lru_cache(maxsize=1)
def _cascade():
    import skimage.data
    from skimage.feature import Cascade

    return Cascade(skimage.data.lbp_frontal_face_cascade_filename())


@functools.lru_cache(maxsize=1)
def _hog():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def default_detector() -> str:
    """``"hog"`` when dlib imports, else ``"cascade"`` (with a one-line warning, once)."""
    try:
        _hog()
    except ImportError:
        import warnings

        warnings.warn("dlib is not installed (pip install dlib-bin): faces are found with "
                      "scikit-image's LBP cascade instead, which misses more of them",
                      stacklevel=2)
        return "cascade"
    return "hog"


def detect_faces(image, min_size: float | None = None, detector: str = "auto",
                 scale_factor: float = 1.1, min_neighbors: int = 6,
                 threshold: float = HOG_THRESHOLD) -> list[Box]:
    """Frontal faces in a photo, largest first.

    ``detector="hog"`` is dlib's HOG frontal face detector (an 80 px window over a pyramid;
    the photo is upsampled 2x per level needed to reach ``min_size``); ``"cascade"`` is
    scikit-image's LBP cascade (a 24 px window). ``"auto"``: HOG when dlib is installed, else
    the cascade (:func:`default_detector`). The photo is searched at most
    :data:`DETECT_MAX_SIDE` px on its longer side. Each detector frames faces its own way:
    :func:`box_convention` says how its boxes relate to the 68 landmarks.

    Args:
        image: anything :func:`load_image` takes.
        min_size: the smallest face side to look for, in photo pixels. Default: HOG 40 px at
            search size (one upsampling); cascade 8% of the photo's shorter side (never below
            its 24 px window at search size). Smaller values find smaller faces, more slowly,
            and more false ones.
        detector: ``"auto"``, ``"hog"`` or ``"cascade"``.
        scale_factor: cascade only: the window grows by this factor per search scale.
        min_neighbors: cascade only: raw hits a group needs to count as a face.
        threshold: HOG only: the smallest detection score kept (higher: fewer false faces).

    Returns:
        boxes ``(x, y, w, h)`` in photo pixels, sorted by area, largest first (maybe empty).

    Examples:
        >>> import skimage.data
        >>> len(detect_faces(skimage.data.astronaut()))
        1
    """
    if detector == "auto":
        detector = default_detector()
    if detector not in DETECTORS:
        raise ValueError(f"detector: expected 'auto' or one of {DETECTORS}, got {detector!r}")
    if min_size is not None and not min_size > 0:
        raise ValueError(f"min_size: expected a face size > 0 px, got {min_size!r}")
    from skimage.transform import resize

    photo = load_image(image)
    height, width = photo.shape[:2]
    factor = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if factor < 1:
        photo = resize(photo, (round(height * factor), round(width * factor)),
                       anti_aliasing=True)
    fy, fx = photo.shape[0] / height, photo.shape[1] / width
    if detector == "hog":
        found = _detect_hog(photo, None if min_size is None else min_size * factor, threshold)
    else:
        found = _detect_cascade(photo, None if min_size is None else min_size * factor,
                                scale_factor, min_neighbors)
    boxes = [(x / fx, y / fy, w / fx, h / fy) for x, y, w, h in found]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def _detect_hog(photo: np.ndarray, min_size: float | None, threshold: float) -> list[Box]:
    """dlib boxes (x, y, w, h) in ``photo``'s pixels; ``min_size`` in the same pixels."""
    smallest = HOG_WINDOW / 2 if min_size is None else min_size
    upsample = int(np.clip(np.ceil(np.log2(HOG_WINDOW / smallest)), 0, 3))
    pixels = (photo * 255).round().astype(np.uint8)
    rects, scores, _ = _hog().run(pixels, upsample, threshold)
    # dlib's rectangles are inclusive pixel ranges: (left, top) corner, width = right-left+1
    return [(float(r.left()), float(r.top()), float(r.width()), float(r.height()))
            for r, score in zip(rects, scores, strict=True) if score >= threshold]


def _detect_cascade(photo: np.ndarray, min_size: float | None, scale_factor: float,
                    min_neighbors: int) -> list[Box]:
    """LBP cascade boxes (x, y, w, h) in ``photo``'s pixels; ``min_size`` in the same pixels."""
    gray = photo @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    short = min(gray.shape)
    smallest = 0.08 * short if min_size is None else min_size
    smallest = int(round(max(CASCADE_WINDOW, smallest)))
    if smallest > short:
        return []
    found = _cascade().detect_multi_scale(
        gray, scale_factor=scale_factor, step_ratio=1, min_size=(smallest, smallest),
        max_size=(short, short), min_neighbor_number=min_neighbors)
    return [(float(d["c"]), float(d["r"]), float(d["width"]), float(d["height"]))
            for d in found]


# ---------------------------------------------------------------------------- cropping
@dataclass(frozen=True)
class BoxConvention:
    """Which box of the 68 landmarks a face box implies.

    With ``s = max(w, h)`` of the face box (x, y, w, h), the landmark box has side
    ``scale * s`` and centre ``(x + w/2 + shift_x * s, y + h/2 + shift_y * s)``.
    """

    scale: float = 1.0  # landmark box side / face box side
    shift_x: float = 0.0  # landmark box centre minus face box centre, in face box sides
    shift_y: float = 0.0

    def landmark_box(self, box: Box) -> tuple[float, float, float]:
        """(centre x, centre y, side) in pixels of the landmark box that ``box`` implies."""
        x, y, w, h = box
        side = max(w, h)
        return (x + w / 2 + self.shift_x * side, y + h / 2 + self.shift_y * side,
                self.scale * side)


#: The face box IS the landmark box: boxes you draw tightly around the face (eyebrows to chin,
#: jaw side to jaw side), the landmarks' own box, and dlib's detector boxes (dlib's 68-point
#: predictor was trained from them: on the dev set their side is 0.96 of the landmark box
#: side and their centre within 0.1 side of it, so they are used as they are).
LANDMARK_BOX = BoxConvention()
#: The cascade on rendered synthetic faces (measured, see the module docstring). Kept for
#: comparison, not used: the renders have no hair, forehead or ears, so the cascade frames them
#: lower and tighter than real faces, and crops cut with it are ~23% too large on real photos.
CASCADE_BOX_SYNTHETIC = BoxConvention(scale=1.05, shift_x=0.0, shift_y=0.17)
#: The cascade on real photos (measured, see the module docstring), used for detections. The
#: measured sideways shift (+0.05, 11 faces, most turned the same way) is set to 0: a mirrored
#: photo would give -0.05.
CASCADE_BOX = BoxConvention(scale=0.85, shift_x=0.0, shift_y=0.13)
#: dlib's HOG detector on real photos, used for its detections: fitted by
#: ``data/detector_study.py`` on the 18 development faces (all found), its boxes against the
#: boxes of the faces' 68 annotated landmarks (medians: side 0.93, dx +0.11, dy +0.12; see
#: ``data/detector_study.json``). The sideways shift is set to 0 as for the cascade: most of
#: those faces are turned the same way, and a mirrored photo would give -0.11.
HOG_BOX = BoxConvention(scale=0.93, shift_x=0.0, shift_y=0.12)


def box_convention(detector: str = "auto") -> BoxConvention:
    """The :class:`BoxConvention` of :func:`detect_faces`'s boxes for ``detector``."""
    if detector == "auto":
        detector = default_detector()
    if detector not in DETECTORS:
        raise ValueError(f"detector: expected 'auto' or one of {DETECTORS}, got {detector!r}")
    return HOG_BOX if detector == "hog" else CASCADE_BOX


def match_faces(boxes: Sequence[Box], landmarks: np.ndarray) -> Box | None:
    """The box among ``boxes`` that frames the face of ``landmarks`` (68, 2), or None.

    A box matches when its centre lies within 0.4 of the landmark box's side from the landmark
    box centre and its side is 0.5-2 times that side; the largest match wins.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    points = points[np.isfinite(points).all(1)]
    lo, hi = points.min(0), points.max(0)
    centre, side = (lo + hi) / 2, float((hi - lo).max())
    matches = [b for b in boxes
               if abs(b[0] + b[2] / 2 - centre[0]) < 0.4 * side
               and abs(b[1] + b[3] / 2 - centre[1]) < 0.4 * side
               and 0.5 < side / max(b[2], b[3]) < 2.0]
    return max(matches, key=lambda b: b[2] * b[3]) if matches else None


def fit_box_convention(boxes: Sequence[Box], landmarks: Sequence[np.ndarray]) -> BoxConvention:
    """The :class:`BoxConvention` of a detector, measured: medians over faces of the landmark
    box side and centre offset, in face box sides.

    Args:
        boxes: one face box (x, y, w, h) per face.
        landmarks: the faces' (68, 2) landmarks in the same pixels.
    """
    if len(boxes) != len(landmarks) or not len(boxes):
        raise ValueError(f"landmarks: expected one (68, 2) array per box (at least one), "
                         f"got {len(landmarks)} for {len(boxes)} boxes")
    rows = []
    for (x, y, w, h), points in zip(boxes, landmarks, strict=True):
        points = np.asarray(points, dtype=np.float64)
        points = points[np.isfinite(points).all(1)]
        lo, hi = points.min(0), points.max(0)
        side = max(w, h)
        rows.append(((hi - lo).max() / side, ((lo[0] + hi[0]) / 2 - x - w / 2) / side,
                     ((lo[1] + hi[1]) / 2 - y - h / 2) / side))
    scale, shift_x, shift_y = np.median(np.array(rows), axis=0)
    return BoxConvention(round(float(scale), 3), round(float(shift_x), 3),
                         round(float(shift_y), 3))


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


# ---------------------------------------------------------------------------- reconstruction
@dataclass
class Reconstruction:
    """One face of a photo, reconstructed. Tensors on the CPU, float32.

    Attributes:
        box: (x, y, w, h) photo px, the face box (detected or given).
        crop: the square :class:`CropBox` cut from the photo.
        image: (3, S, S) the network's input in [0, 1].
        a_id: (K,), a_exp: (E,) coefficients in std units.
        pose: (6,) yaw, pitch, roll (rad), tx, ty (crop px), scale (px/mm in the crop).
        photo_pose: (6,) the same camera in photo pixels (tx, ty, scale rescaled).
        vertices: (V, 3) mm, model frame (y up, z toward the camera): the face's shape.
        photo_vertices: (V, 3) the posed face in photo pixels: x right, y down (like the
            photo), z toward the camera in the same pixel units (weak perspective: depth is
            ``scale`` x the rotated model's z; its zero is the model origin's depth).
        landmarks2d: (68, 2) photo px, the model's landmarks projected (NaN where undefined).
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


def _check_config(config: TrainConfig) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig (load_checkpoint's third value), "
                        f"got {type(config).__name__}")


@torch.no_grad()
def reconstruct_faces(image, net: nn.Module, model: MorphableModel, config: TrainConfig,
                      boxes: Sequence[Box] | None = None,
                      convention: BoxConvention | None = None,
                      name: str | None = None) -> list[Reconstruction]:
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

    Returns:
        one :class:`Reconstruction` per box, in the order of ``boxes`` (largest first when
        detected).

    Raises:
        ValueError: ``no face found in <name>; pass box=(x, y, w, h)`` when the detector
            finds nothing, or the reasons of :func:`load_image`.
    """
    _check_config(config)
    if name is None:
        name = Path(image).name if isinstance(image, (str, os.PathLike)) else "the image"
    photo = load_image(image, name=name)
    if boxes is None:
        detector = default_detector()
        boxes = detect_faces(photo, detector=detector)
        if not boxes:
            raise ValueError(f"no face found in {name}; pass box=(x, y, w, h)")
        convention = box_convention(detector) if convention is None else convention
    convention = LANDMARK_BOX if convention is None else convention
    boxes = [tuple(float(v) for v in box) for box in boxes]
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"boxes: expected (x, y, w, h) per face, got {box}")
    size = config.image_size
    crops = [crop_box(box, config, convention) for box in boxes]
    images = torch.stack([cut_crop(photo, crop, size) for crop in crops])
    device = next(iter(net.parameters()), torch.empty(0)).device
    was_training = net.training
    net.eval()
    try:
        out = net(images.to(device))
    finally:
        net.train(was_training)
    a_id, a_exp, pose = (out[k].detach().float().cpu() for k in ("a_id", "a_exp", "pose"))
    where = model.mean.device  # the model stays where it is; results come to the CPU
    vertices = model(a_id.to(where), a_exp.to(where)).cpu()
    landmark_points = model.landmark_points(a_id.to(where), a_exp.to(where)).cpu()
    results = []
    for i, (box, crop) in enumerate(zip(boxes, crops, strict=True)):
        k = crop.side / size
        photo_pose = torch.cat([pose[i, :3], crop.to_photo(pose[i, 3:5], size),
                                pose[i, 5:6] * k])
        results.append(Reconstruction(
            box=box, crop=crop, image=images[i], a_id=a_id[i], a_exp=a_exp[i], pose=pose[i],
            photo_pose=photo_pose, vertices=vertices[i],
            photo_vertices=_posed(vertices[i], photo_pose),
            landmarks2d=weak_perspective_project(landmark_points[i:i + 1],
                                                 photo_pose[None])[0]))
    return results


def reconstruct(image, net: nn.Module, model: MorphableModel, config: TrainConfig,
                box: Box | None = None, convention: BoxConvention | None = None,
                name: str | None = None) -> Reconstruction:
    """Reconstruct one face: the largest the detector finds, or the one in ``box``.

    Args:
        image: a file path, PIL image, array or tensor (see :func:`load_image`).
        net, model, config: what :func:`~e2far_lite.train.load_checkpoint` returns.
        box: (x, y, w, h) photo pixels of the face, tight around it (eyebrows to chin, jaw to
            jaw, like the 68 landmarks' box; ``convention`` says otherwise); default: detect.
        convention: see :func:`reconstruct_faces`.
        name: the photo's name in error messages.

    Returns:
        :class:`Reconstruction`.

    Examples:
        >>> import skimage.data
        >>> from e2far_lite.train.checkpoint import pretrained
        >>> net, model, config, _ = pretrained(smoke=True)  # doctest: +SKIP
        >>> face = reconstruct(skimage.data.astronaut(), net, model, config)  # doctest: +SKIP
        >>> face.landmarks2d.shape  # doctest: +SKIP
        torch.Size([68, 2])
    """
    boxes = None if box is None else [box]
    return reconstruct_faces(image, net, model, config, boxes, convention, name)[0]


# ---------------------------------------------------------------------------- baseline
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


# ---------------------------------------------------------------------------- pictures
def _overlay_camera(face: Reconstruction, resolution: int,
                    region: tuple[float, float, float] | None = None,
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """The face's weak-perspective camera as a pinhole 100 m away with a long lens (relative
    depth differences of 0.1%), for a (resolution x resolution) render of the crop square, or
    of ``region`` = (x0, y0, side) in photo pixels: camera-frame points (1, V, 3) mm, focal
    (1,) and centre (1, 2) in render pixels."""
    distance = 1e5  # mm
    points = to_camera(face.vertices[None], face.pose[None, :3],
                       torch.tensor([[0.0, 0.0, distance]]))
    if region is None:
        zoom = resolution / face.image.shape[-1]
        focal = (face.pose[5] * distance * zoom)[None]
        centre = face.pose[None, 3:5] * zoom
    else:
        x0, y0, side = region
        zoom = resolution / side
        focal = (face.photo_pose[5] * distance * zoom)[None]
        centre = (face.photo_pose[None, 3:5] - torch.tensor([x0, y0])) * zoom
    return points, focal, centre


def render_overlay(face: Reconstruction, model: MorphableModel, resolution: int = 256,
                   ) -> np.ndarray:
    """A shaded render of the posed mesh over the crop square: (R, R, 4) RGBA float.

    The weak-perspective camera is stood in for by a pinhole 100 m away with a long lens
    (relative depth differences of 0.1%), so the renderer's z-buffer and shading apply.
    Draw it over the photo with ``extent=(x0, x0 + side, y0 + side, y0)``.
    """
    from ..render.renderer import Renderer
    from ..render.shading import skin_albedo

    points, focal, centre = _overlay_camera(face, resolution)
    albedo = skin_albedo(model.mean.cpu(), 1, torch.Generator().manual_seed(0))
    out = Renderer(resolution).render(points, model.triangles.cpu(), focal, centre, albedo)
    rgba = torch.cat([out.image[0], out.mask[0]]).permute(1, 2, 0)
    return rgba.numpy()


#: The colour of vertices the photo does not show (hidden or outside it), RGB in [0, 1].
HIDDEN_GREY = (0.5, 0.5, 0.5)


def vertex_colors(image, face: Reconstruction, model: MorphableModel,
                  tolerance: float = 4.0) -> tuple[Tensor, Tensor]:
    """Per-vertex colours sampled from the photo where the photo shows the vertex.

    The mesh is rendered with the camera of :func:`render_overlay` over a square around its
    projection, at about one render pixel per photo pixel; a vertex is visible when it lies
    inside the photo and at most ``tolerance`` mm behind the rendered depth
    (:func:`~e2far_lite.render.project_landmarks`'s test). Visible vertices take the photo's
    bilinearly interpolated colour at their projection; the others :data:`HIDDEN_GREY`.

    Args:
        image: the photo ``face`` was reconstructed from (anything :func:`load_image` takes).
        face: one :class:`Reconstruction` of it.
        model: its morphable model.
        tolerance: mm a vertex may lie behind the z-buffer and still count as visible.

    Returns:
        colors (V, 3) RGB in [0, 1] and visible (V,) bool.
    """
    from torch.nn.functional import grid_sample

    from ..render.renderer import Renderer, project_landmarks

    photo = torch.from_numpy(load_image(image))
    height, width = photo.shape[:2]
    # render a square around the whole projected mesh (it may reach outside the crop)
    projected = face.photo_vertices[:, :2]
    projected = projected[torch.isfinite(projected).all(1)]
    lo, hi = projected.amin(0) - 2, projected.amax(0) + 2
    side = float((hi - lo).max())
    x0, y0 = (float(v) for v in (lo + hi) / 2 - side / 2)
    resolution = int(np.clip(round(side), 64, 1024))
    points, focal, centre = _overlay_camera(face, resolution, (x0, y0, side))
    grey = torch.ones(1, points.shape[1], 3)
    depth = Renderer(resolution).render(points, model.triangles.cpu(), focal, centre,
                                        grey).depth
    pixels, visible = project_landmarks(points, focal, centre, depth, tolerance)
    xy = pixels[0] * (side / resolution) + torch.tensor([x0, y0])
    inside = ((xy >= 0) & (xy < torch.tensor([width, height]))).all(-1)
    visible = visible[0] & inside
    # grid_sample's align_corners=False grid: -1 and +1 are the photo's outer pixel corners
    grid = (xy / torch.tensor([width, height]) * 2 - 1).nan_to_num(0.0)
    sampled = grid_sample(photo.permute(2, 0, 1)[None], grid[None, None].float(),
                          mode="bilinear", padding_mode="border", align_corners=False)
    sampled = sampled[0, :, 0].T  # (V, 3)
    colors = torch.where(visible[:, None], sampled, torch.tensor(HIDDEN_GREY))
    return colors.clamp(0, 1), visible


def overlay_figure(image, faces: Sequence[Reconstruction], model: MorphableModel,
                   alpha: float = 0.65, show_boxes: bool = True, title: str = "",
                   size: float = 6.0):
    """The photo with each face's shaded mesh, its 68 landmarks and (optionally) its boxes.

    Args:
        image: the photo (anything :func:`load_image` takes).
        faces: reconstructions of that photo.
        model: their morphable model.
        alpha: opacity of the mesh.
        show_boxes: draw the face box (solid) and the crop (dashed).

    Returns:
        a matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    photo = load_image(image)
    height, width = photo.shape[:2]
    fig, ax = plt.subplots(figsize=(size, size * height / width))
    ax.imshow(photo)
    for face in faces:
        rgba = render_overlay(face, model)
        rgba[..., 3] *= alpha
        c = face.crop
        ax.imshow(rgba, extent=(c.x0, c.x0 + c.side, c.y0 + c.side, c.y0), interpolation="bilinear")
        lm = face.landmarks2d.numpy()
        dot = float(np.clip((c.side / width * size * 72 / 30) ** 2, 1.0, 16.0))  # points²
        ax.scatter(lm[:, 0], lm[:, 1], s=dot, c="lime", edgecolors="black", linewidths=0.3)
        if show_boxes:
            x, y, w, h = face.box
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec="yellow", lw=1))
            ax.add_patch(Rectangle((c.x0, c.y0), c.side, c.side, fill=False, ec="white",
                                   lw=1, ls="--"))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def upload_widget(net: nn.Module, model: MorphableModel, config: TrainConfig):
    """A file picker (ipywidgets, Jupyter and Colab) that reconstructs every face of the
    uploaded photo and shows :func:`overlay_figure` below it. Returns the widget."""
    import io

    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display
    from PIL import Image, ImageOps

    upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your photo")
    out = widgets.Output()

    def on_upload(change) -> None:
        files = change["new"]
        if not files:
            return
        if isinstance(files, dict):  # ipywidgets 7: {name: {"content": ...}}
            name, item = next(iter(files.items()))
        else:  # ipywidgets 8: ({"name": ..., "content": ...},)
            item = files[0]
            name = item["name"]
        out.clear_output()
        with out:
            try:
                with Image.open(io.BytesIO(bytes(item["content"]))) as handle:
                    picture = ImageOps.exif_transpose(handle)
                    image = load_image(picture, name=name)
                faces = reconstruct_faces(image, net, model, config, name=name)
            except (ValueError, OSError) as err:  # PIL's "not an image" is an OSError
                print(f"{name}: {err}")
                return
            print(f"{name}: {len(faces)} face(s), largest first")
            fig = overlay_figure(image, faces, model, title=name)
            display(fig)
            plt.close(fig)

    upload.observe(on_upload, names="value")
    return widgets.VBox([upload, out])


# ---------------------------------------------------------------------------- export
#: What the vertex coordinates of :func:`export_mesh`'s files are, written in their header.
EXPORT_UNITS = "photo pixels (x right, y up = -row, z toward the viewer)"


def export_mesh(path: str | os.PathLike, face: Reconstruction, model: MorphableModel,
                colors: Tensor | None = None) -> Path:
    """Save the posed face as ``.obj`` or ``.ply``, placed as in the photo. Written atomically.

    Vertex ``(x, y, z)`` = ``(u, -v, depth)``: ``u, v`` are photo pixels and ``depth`` the
    toward-the-camera depth in the same pixels (:attr:`Reconstruction.photo_vertices`). The
    y flip makes the frame right-handed (x right, y up, z toward the viewer), so the triangles
    keep their counter-clockwise winding and a viewer shows the face upright, facing you.
    Units are photo pixels, and the file's header says so (:data:`EXPORT_UNITS`).

    Args:
        path: output file, ``.obj`` (``v x y z r g b`` lines with colours) or ``.ply``
            (binary, uchar vertex colours).
        face: the reconstruction.
        model: its morphable model (for the triangles).
        colors: optional (V, 3) RGB in [0, 1], e.g. :func:`vertex_colors`.
    """
    from ..io.mesh_files import save_mesh

    flipped = face.photo_vertices * torch.tensor([1.0, -1.0, 1.0])
    return save_mesh(path, flipped, model.triangles.cpu(), colors, units=EXPORT_UNITS)


# ---------------------------------------------------------------------------- real-face NME
@dataclass
class LandmarkNME:
    """Per-face landmark NME on annotated photos (fractions of ``sqrt(w * h)`` of the
    annotated landmarks' box; multiply by 100 for %)."""

    faces: list  # the AnnotatedFace records, in file order
    nme: list[float]  # the network's (NaN for a face the detector missed)
    baseline: list[float]  # the mean face, frontal, fitted to the box
    predicted: list[Tensor | None]  # the network's (68, 2) landmarks per face, photo pixels
    crops: list[CropBox | None]  # the crop each face was cut with
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


def real_landmark_nme(source: str | os.PathLike, net: nn.Module, model: MorphableModel,
                      config: TrainConfig, use_box: str = "annotated",
                      oracle: bool = False, detector: str = "auto") -> LandmarkNME:
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
            ``"detected"`` (:func:`detect_faces`' box that :func:`match_faces` pairs with the
            face, each box used once, read through :func:`box_convention`; a face without
            one gets NaN and is left out of the means: see :attr:`LandmarkNME.found`).
        detector: for ``use_box="detected"``: ``"auto"``, ``"hog"`` or ``"cascade"``.
        oracle: also fit the model to the annotated landmarks themselves
            (:func:`~e2far_lite.evaluate.fit_landmarks`): it reads the answers, so it is no
            competitor, but it shows how close the model's 68 points can come to these
            annotations at all (their definitions differ a little, e.g. on the jaw line).
    """
    from ..io.landmark_files import read_annotations
    from ..model.metrics import landmark_nme

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
            found = detect_faces(image, detector=detector)
            boxes = []
            for i in indices:
                box = match_faces(found, faces[i].landmarks)
                if box is not None:
                    found.remove(box)
                boxes.append(box)
        else:
            boxes = [faces[i].box if faces[i].box is not None and use_box == "annotated"
                     else faces[i].landmark_box() for i in indices]
        pairs = [(i, box) for i, box in zip(indices, boxes, strict=True) if box is not None]
        if not pairs:
            continue
        recs = reconstruct_faces(image, net, model, config, [b for _, b in pairs], convention)
        for (i, box), rec in zip(pairs, recs, strict=True):
            target = torch.as_tensor(faces[i].landmarks, dtype=torch.float32)[None]
            nme[i] = float(landmark_nme(rec.landmarks2d[None], target)[0])
            predicted[i], crops[i], used[i] = rec.landmarks2d, rec.crop, box
            base = mean_shape_landmarks(model, box, convention)[None]
            baseline[i] = float(landmark_nme(base, target)[0])
    fitted = None
    if oracle:
        from ..evaluate.fitting import fit_landmarks

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


__all__ = ["load_image", "detect_faces", "default_detector", "box_convention", "DETECTORS",
           "BoxConvention", "LANDMARK_BOX", "CASCADE_BOX", "HOG_BOX",
           "CASCADE_BOX_SYNTHETIC", "CropBox", "crop_box", "cut_crop", "Reconstruction",
           "reconstruct", "reconstruct_faces", "mean_shape_landmarks", "render_overlay",
           "vertex_colors", "HIDDEN_GREY", "EXPORT_UNITS",
           "overlay_figure", "upload_widget", "export_mesh", "LandmarkNME", "real_landmark_nme",
           "format_nme_table", "match_faces", "fit_box_convention"]
