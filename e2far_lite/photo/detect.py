"""Finding faces in a photo, and which landmark box a detector's box implies.

    photo (H, W, 3) --detect_faces--> face boxes (x, y, w, h) px, largest first
        --BoxConvention--> the box the 68 landmarks should fill (then photo.reconstruction)

Boxes are ``(x, y, w, h)`` photo pixels: left, top, width, height (x right, y down).

**The detector.** dlib's HOG frontal face detector (``dlib-bin`` wheel, model inside) when dlib
is installed, else scikit-image's LBP cascade with a warning. On the 18 faces of 4 development
photos (``experiments/detector_study.py``; a face is found when a box's centre lies within 0.4
of its 68-landmark box's side of that box's centre and the sides differ at most 2x): HOG 18/18
found, 0 false faces; OpenCV's best Haar cascade 15/18 with 1 false; the LBP cascade 11/18 with 2.

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
the synthetic figures. Annotated boxes in :func:`~e2far_lite.photo.real_landmark_nme` use no
detector unless ``use_box="detected"``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .images import load_image

Box = tuple[float, float, float, float]


#: Photos are searched for faces at most this many pixels on their longer side (speed); boxes
#: are scaled back, and the crop is cut from the full-resolution photo.
DETECT_MAX_SIDE = 640


#: The cascade's own window (its training size): no smaller face can be found.
CASCADE_WINDOW = 24


#: The detectors :func:`detect_faces` knows: dlib's HOG frontal detector (``pip install
#: dlib-bin``; the model is inside the wheel) and scikit-image's bundled LBP cascade.
DETECTORS = ("hog", "cascade")


#: dlib's HOG detector scans an 80 x 80 px window: smaller faces are found by upsampling.
HOG_WINDOW = 80


#: Detections scoring below this are dropped (dlib's own default is 0). On the development
#: photos the weakest true face scores 0.22; the false face on scikit-image's astronaut (her
#: sleeve) 0.12; the threshold is halfway (see experiments/detector_study.py).
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
#: ``experiments/detector_study.py`` on the 18 development faces (all found), its boxes against the
#: boxes of the faces' 68 annotated landmarks (medians: side 0.93, dx +0.11, dy +0.12; see
#: ``experiments/detector_study.json``). The sideways shift is set to 0 as for the cascade: most of
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


def assign_faces(boxes: Sequence[Box], faces: Sequence[np.ndarray]) -> list[Box | None]:
    """One entry per face of ``faces`` (each (68, 2) landmarks): the detection among ``boxes``
    that :func:`match_faces` pairs with it, each detection used at most once (faces in order),
    or None where none is left."""
    free = list(boxes)
    out: list[Box | None] = []
    for landmarks in faces:
        box = match_faces(free, landmarks)
        if box is not None:
            free.remove(box)
        out.append(box)
    return out


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


__all__ = ["detect_faces", "default_detector", "DETECTORS", "DETECT_MAX_SIDE", "HOG_THRESHOLD",
           "BoxConvention", "LANDMARK_BOX", "CASCADE_BOX", "HOG_BOX", "CASCADE_BOX_SYNTHETIC",
           "box_convention", "match_faces", "assign_faces", "fit_box_convention", "Box"]
