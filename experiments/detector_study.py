"""Compare face detectors on annotated real photos; fit the chosen one's box convention; measure
the network's landmark NME with detected boxes. Writes ``experiments/detector_study.json``.

Run from the repository root with a dlib XML file, a ``.pts`` file or a folder of them (any set
of photos with 68 annotated landmarks per face):

    python experiments/detector_study.py FACES.xml          # or set E2FAR_DEV_FACES=FACES.xml

Candidates: dlib's HOG frontal detector (``pip install dlib-bin``), OpenCV's bundled Haar
cascades (``pip install "opencv-python-headless<5"``: OpenCV 5 no longer ships them) and
scikit-image's LBP cascade. A candidate that does not import is recorded as missing.

Matching rule: a detection finds an annotated face when :func:`e2far_lite.photo.match_faces`
pairs them: its centre within 0.4 of the side of the face's 68-landmark box from that box's
centre, and that side 0.5-2 times the detection's side (the largest such detection; each
detection finds at most one face). Detections that find no annotated face are false faces.
The landmark box is used, not the file's box, because a dlib XML file's boxes are dlib's own
detections, which an IoU with them would favour.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data

from e2far_lite import photo
from e2far_lite.io.json_files import write_json
from e2far_lite.io.landmark_files import DEV_FACES_ENV, dev_annotations, read_annotations
from e2far_lite.paths import data_dir
from e2far_lite.train.checkpoint import load_checkpoint
from e2far_lite.train.shipped import SHIPPED_FILE

HERE = Path(__file__).resolve().parent
OUT = HERE / "detector_study.json"
RULE = ("a detection finds a face when its centre is within 0.4 x the side of the face's "
        "68-landmark box from that box's centre and that side is 0.5-2 x the detection's "
        "side (photo.match_faces); each detection finds at most one face; the rest are false")


def candidates() -> dict[str, Callable[[np.ndarray], list] | str]:
    """name -> detect(photo (H, W, 3) float) -> boxes, or a string saying why it is missing."""
    found: dict[str, Callable[[np.ndarray], list] | str] = {}
    try:
        import dlib

        hog = dlib.get_frontal_face_detector()

        def dlib_raw(upsample: int) -> Callable[[np.ndarray], list]:
            def detect(rgb: np.ndarray) -> list:
                pixels = (rgb * 255).round().astype(np.uint8)
                return [(r.left(), r.top(), r.width(), r.height()) for r in hog(pixels, upsample)]
            return detect

        for upsample in (0, 1, 2):
            found[f"dlib HOG, upsample {upsample}, threshold 0 (dlib's defaults)"] = \
                dlib_raw(upsample)
        found[f"dlib HOG, photo.detect_faces default (upsample 1, threshold "
              f"{photo.HOG_THRESHOLD})"] = lambda rgb: photo.detect_faces(rgb, detector="hog")
    except ImportError as err:
        found["dlib HOG"] = f"missing: {err} (pip install dlib-bin)"
    try:
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 "
                              "dropped them; pip install 'opencv-python-headless<5')")
        for name in ("default", "alt", "alt2", "alt_tree"):
            file = Path(cv2.data.haarcascades) / f"haarcascade_frontalface_{name}.xml"
            cascade = cv2.CascadeClassifier(str(file))
            for neighbours in (3, 5):
                def detect(rgb: np.ndarray, cascade=cascade, neighbours=neighbours) -> list:
                    grey = (rgb @ np.array([0.299, 0.587, 0.114], np.float32) * 255)
                    boxes = cascade.detectMultiScale(grey.round().astype(np.uint8), 1.1,
                                                     neighbours, minSize=(20, 20))
                    return [tuple(float(v) for v in box) for box in boxes]
                found[f"OpenCV {cv2.__version__} Haar {name}, minNeighbors {neighbours}"] = detect
    except ImportError as err:
        found["OpenCV Haar"] = f"missing: {err}"
    found["scikit-image LBP, photo.detect_faces default (8% of the side, 6 neighbours)"] = \
        lambda rgb: photo.detect_faces(rgb, detector="cascade")
    found["scikit-image LBP, min_size 24 px"] = \
        lambda rgb: photo.detect_faces(rgb, min_size=24, detector="cascade")
    return found


def score(detect: Callable, by_image: dict) -> dict:
    found = false = 0
    seconds = []
    for image, faces in by_image.items():
        rgb = photo.load_image(image)
        start = time.perf_counter()
        boxes = [tuple(float(v) for v in box) for box in detect(rgb)]
        seconds.append(time.perf_counter() - start)
        assigned = photo.assign_faces(boxes, [face.landmarks for face in faces])
        hits = [box for box in assigned if box is not None]
        found += len(hits)
        false += len(boxes) - len(hits)
    astronaut = len(detect(photo.load_image(skimage.data.astronaut())))
    return {"found": found, "faces": sum(map(len, by_image.values())), "false": false,
            "astronaut_boxes": astronaut, "seconds_per_photo": float(np.median(seconds))}


def fit(detector: str, faces: list, by_image: dict) -> dict:
    """The detector's box convention, fitted on the faces it finds, with per-face spreads."""
    boxes, landmarks = [], []
    for image, group in by_image.items():
        assigned = photo.assign_faces(photo.detect_faces(image, detector=detector),
                                      [face.landmarks for face in group])
        for face, box in zip(group, assigned, strict=True):
            if box is not None:
                boxes.append(box)
                landmarks.append(face.landmarks)
    fitted = photo.fit_box_convention(boxes, landmarks)
    rows = []
    for (x, y, w, h), points in zip(boxes, landmarks, strict=True):
        lo, hi = np.nanmin(points, 0), np.nanmax(points, 0)
        side = max(w, h)
        rows.append(((hi - lo).max() / side, ((lo[0] + hi[0]) / 2 - x - w / 2) / side,
                     ((lo[1] + hi[1]) / 2 - y - h / 2) / side))
    rows = np.array(rows)
    spread = (np.percentile(rows, 75, 0) - np.percentile(rows, 25, 0)) / 1.35
    return {"fitted_on": f"{len(boxes)} of {len(faces)} annotated faces found by "
                         f"photo.detect_faces(detector={detector!r}), against the boxes of "
                         "their 68 annotated landmarks (medians)",
            "scale": fitted.scale, "shift_x": fitted.shift_x, "shift_y": fitted.shift_y,
            "spread_scale_shift_x_shift_y": [round(float(v), 3) for v in spread]}


def nme_rows(source: Path, faces: list) -> dict:
    """The shipped network's NME from every kind of box, in one pass and refined."""
    path = data_dir() / SHIPPED_FILE
    net, model, config = load_checkpoint(path, device="cpu")
    boxes = {
        "landmarks' own box": dict(use_box="landmarks"),
        "annotated box (the file's)": dict(use_box="annotated"),
        "detected: scikit-image LBP cascade, CASCADE_BOX": dict(use_box="detected",
                                                                detector="cascade"),
        "detected: dlib HOG, HOG_BOX": dict(use_box="detected", detector="hog"),
    }
    runs = {f"{name}{suffix}": dict(kw, refine=refine) for name, kw in boxes.items()
            for suffix, refine in (("", 0), (f", refined ({photo.REFINE} re-crop)", photo.REFINE))}
    # one pass more than the default, on the default detector: what photo.REFINE leaves out
    runs[f"detected: dlib HOG, HOG_BOX, refined ({photo.REFINE + 1} re-crops)"] = dict(
        boxes["detected: dlib HOG, HOG_BOX"], refine=photo.REFINE + 1)
    results = {name: photo.real_landmark_nme(source, net, model, config, **kw)
               for name, kw in runs.items()}
    oracle = photo.real_landmark_nme(source, net, model, config, use_box="landmarks",
                                     oracle=True, refine=0)
    both = [i for i in range(len(faces))
            if all(np.isfinite(r.nme[i]) for r in results.values())]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    out = {"checkpoint": str(path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent)
                             else path),
           "checkpoint_sha256_prefix": digest,
           "oracle_percent": round(100 * oracle.oracle_mean, 2),
           "faces_found_by_every_box": len(both), "rows": {}}
    for name, result in results.items():
        out["rows"][name] = {
            "found": result.found, "refine": runs[name]["refine"],
            "nme_percent": round(100 * result.mean, 2),
            "mean_face_percent": round(100 * result.baseline_mean, 2),
            "nme_percent_by_part": {part: round(100 * v, 2)
                                    for part, v in result.by_part().items()},
            "nme_percent_on_common_faces": round(100 * float(np.mean(
                [result.nme[i] for i in both])), 2)}
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("dlib-bin", "dlib", "opencv-python-headless", "scikit-image", "torch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("annotations", nargs="?", default=None,
                        help=f"dlib XML, .pts or folder (default: ${DEV_FACES_ENV})")
    parser.add_argument("--out", default=str(OUT), help="the JSON file written")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # what else ran: the timings depend on it
    try:
        source = Path(args.annotations) if args.annotations else dev_annotations()
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    if source is None:
        raise SystemExit(f"annotations: expected a dlib XML file, .pts file or folder (or "
                         f"${DEV_FACES_ENV}), got neither")
    faces = read_annotations(source)
    by_image: dict = {}
    for face in faces:
        by_image.setdefault(face.image, []).append(face)
    print(f"{len(faces)} annotated faces in {len(by_image)} photos ({source.name})")
    print(f"matching rule: {RULE}")
    table = {}
    for name, detect in candidates().items():
        if isinstance(detect, str):
            table[name] = {"missing": detect}
            print(f"  {name}: {detect}")
            continue
        table[name] = row = score(detect, by_image)
        print(f"  {name:<78} found {row['found']:>2}/{row['faces']}, false {row['false']}, "
              f"astronaut boxes {row['astronaut_boxes']}, "
              f"{row['seconds_per_photo']:.2f} s/photo")
    conventions = {d: fit(d, faces, by_image) for d in photo.DETECTORS}
    for detector, row in conventions.items():
        print(f"box convention of {detector!r}, fitted on {row['fitted_on']}: side "
              f"{row['scale']}, dx {row['shift_x']:+}, dy {row['shift_y']:+} (spread "
              f"{row['spread_scale_shift_x_shift_y']}); used: "
              f"{photo.box_convention(detector)}")
    nme = nme_rows(source, faces)
    print(f"landmark NME of {nme['checkpoint']} (oracle {nme['oracle_percent']}%):")
    for name, row in nme["rows"].items():
        print(f"  {name:<68} {row['found']:>2} faces {row['nme_percent']:>6.2f}% (mean face "
              f"{row['mean_face_percent']:.2f}%); on the {nme['faces_found_by_every_box']} "
              f"faces every box finds {row['nme_percent_on_common_faces']:.2f}%")
    write_json(args.out, {
        "command": f"python experiments/detector_study.py {source.name}",
        "annotations": f"{len(faces)} faces in {len(by_image)} photos ({source.name})",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (seconds_per_photo: median, "
                   f"one process; load average {load:.2f} at the start)",
        "versions": _versions(),
        "matching_rule": RULE, "detectors": table, "box_conventions": conventions,
        "landmark_nme": nme})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
