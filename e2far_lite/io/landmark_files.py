"""Read 68-point face annotations: dlib's image-metadata XML and iBUG ``.pts`` files.

Both formats come back in this package's pixel convention (see :mod:`e2far_lite.render.camera`): x
right, y down, origin at the top-left CORNER of the top-left pixel, so the centre of pixel
(0, 0) is (0.5, 0.5). The files use pixel-centre conventions, converted on reading:

- dlib (``imglab``, ``train_shape_predictor``) stores 0-based pixel centres: ``x + 0.5``. Its
  ``<box top left width height>`` spans whole pixels, so in corner coordinates the box is simply
  ``(left, top, width, height)``.
- iBUG 300-W ``.pts`` files store 1-based (MATLAB) pixel centres: ``x - 0.5``
  (``one_based=False`` reads 0-based files).

Landmarks are (68, 2) float arrays in iBUG-68 order; a point missing from an XML box is NaN.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 68


@dataclass
class AnnotatedFace:
    """One annotated face of a photograph.

    Attributes:
        image: path of the photograph (resolved against the annotation file's folder).
        landmarks: (68, 2) pixels, x right, y down, corner origin; NaN where not annotated.
        box: (x, y, w, h) pixels of the annotated face box, or None (``.pts`` files have none).
    """

    image: Path
    landmarks: np.ndarray
    box: tuple[float, float, float, float] | None = None

    def landmark_box(self) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the annotated landmarks' bounding box, in pixels."""
        points = self.landmarks[np.isfinite(self.landmarks).all(1)]
        lo, hi = points.min(0), points.max(0)
        return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def _number(element: ET.Element, key: str, where: str) -> float:
    value = element.get(key)
    if value is None:
        raise ValueError(f"{where}: expected attribute {key!r} on <{element.tag}>, got none")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{where}: expected a number for {key}=, got {value!r}") from None


def read_dlib_xml(path: str | os.PathLike) -> list[AnnotatedFace]:
    """All faces of a dlib image-metadata XML file (``<image file=...><box ...><part .../>``).

    Args:
        path: the ``.xml`` file; ``image`` paths in it are relative to its folder.

    Returns:
        one :class:`AnnotatedFace` per ``<box>`` that holds ``<part>`` children, in file order
        (boxes without parts, e.g. plain detection labels, are skipped). Boxes marked
        ``ignore='1'`` are skipped too.

    Raises:
        FileNotFoundError: no such file. ValueError: not XML, no ``<images>``, a box or part
        without its coordinates, a part name outside 0..67, or a part given twice.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected an existing dlib XML file, got {str(path)!r}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path.name}: expected dlib image-metadata XML, got a file that is "
                         f"not well-formed XML ({err})") from None
    images = root.find("images")
    if root.tag != "dataset" or images is None:
        raise ValueError(f"{path.name}: expected dlib image-metadata XML "
                         f"(<dataset><images><image file=...>), got root <{root.tag}>"
                         + ("" if images is not None else " without <images>"))
    faces = []
    for image in images.iter("image"):
        name = image.get("file")
        if not name:
            raise ValueError(f"{path.name}: expected a file= attribute on every <image>")
        for number, box in enumerate(image.findall("box")):
            where = f"{path.name}, image {name!r}, box {number}"
            if box.get("ignore", "0") not in ("0", ""):
                continue
            parts = box.findall("part")
            if not parts:
                continue
            rect = tuple(_number(box, k, where) for k in ("left", "top", "width", "height"))
            landmarks = np.full((NUM_LANDMARKS, 2), np.nan)
            for part in parts:
                label = part.get("name", "")
                if not label.isdigit() or not 0 <= int(label) < NUM_LANDMARKS:
                    raise ValueError(f"{where}: expected part names '00'..'67', got {label!r}")
                index = int(label)
                if np.isfinite(landmarks[index]).any():
                    raise ValueError(f"{where}: expected each part once, got {label!r} twice")
                # dlib: 0-based pixel centres -> corner origin
                landmarks[index] = (_number(part, "x", where) + 0.5,
                                    _number(part, "y", where) + 0.5)
            faces.append(AnnotatedFace(path.parent / name, landmarks, rect))
    return faces


_PTS_HEADER = re.compile(r"^\s*(\w+)\s*:\s*(\S+)\s*$")


def read_pts(path: str | os.PathLike, one_based: bool = True) -> np.ndarray:
    """Landmarks of an iBUG ``.pts`` file (``version: 1``, ``n_points: 68``, ``{ x y ... }``).

    Args:
        path: the ``.pts`` file.
        one_based: the file stores 1-based pixel centres, as 300-W's files do (MATLAB); False:
            0-based centres.

    Returns:
        (N, 2) float pixels in this package's convention (corner origin).

    Raises:
        FileNotFoundError: no such file. ValueError: a missing header line, braces, a line
        that is not two numbers, or a point count other than ``n_points``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected an existing .pts file, got {str(path)!r}")
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: expected an iBUG .pts text file, got binary data") from None
    lines = [line for line in lines if line]
    header: dict[str, str] = {}
    body_start = None
    for number, line in enumerate(lines):
        if line == "{":
            body_start = number + 1
            break
        match = _PTS_HEADER.match(line)
        if match is None:
            raise ValueError(f"{path.name}: expected header lines 'version: 1', "
                             f"'n_points: N' and '{{', got {line!r}")
        header[match.group(1)] = match.group(2)
    if body_start is None:
        raise ValueError(f"{path.name}: expected '{{' before the points, got none")
    if "n_points" not in header or not header["n_points"].isdigit():
        raise ValueError(f"{path.name}: expected a header line 'n_points: N', "
                         f"got {header.get('n_points')!r}")
    count = int(header["n_points"])
    if "}" not in lines[body_start:]:
        raise ValueError(f"{path.name}: expected '}}' after the points, got none")
    body = lines[body_start:lines.index("}", body_start)]
    points = []
    for line in body:
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            point = (float(fields[0]), float(fields[1]))
            if not np.isfinite(point).all():
                raise ValueError
            points.append(point)
        except ValueError:
            raise ValueError(f"{path.name}: expected two finite numbers 'x y' per point, "
                             f"got {line!r}") from None
    if len(points) != count:
        raise ValueError(f"{path.name}: expected {count} points (n_points), got {len(points)}")
    offset = 0.5 if one_based else -0.5
    return np.asarray(points, dtype=np.float64).reshape(-1, 2) - offset


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_annotations(source: str | os.PathLike) -> list[AnnotatedFace]:
    """Annotated faces from a dlib XML file, one ``.pts`` file, or a folder.

    A folder is read as its ``.xml`` files when it has any, else as ``.pts`` files each beside
    an image of the same stem (``face.pts`` + ``face.jpg``). ``.pts`` faces have ``box=None``.

    Raises:
        FileNotFoundError: nothing there, or a ``.pts`` file without its image. ValueError:
            a folder with no annotation files, or a malformed file (see the readers).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"source: expected a dlib .xml file, a .pts file or a folder, "
                                f"got {str(source)!r}, which does not exist")
    if source.is_dir():
        xmls = sorted(source.glob("*.xml"))
        if xmls:
            return [face for xml in xmls for face in read_dlib_xml(xml)]
        pts = sorted(source.glob("*.pts"))
        if not pts:
            raise ValueError(f"source: expected .xml or .pts files in {str(source)!r}, got none")
        return [_pts_face(p) for p in pts]
    if source.suffix.lower() == ".xml":
        return read_dlib_xml(source)
    if source.suffix.lower() == ".pts":
        return [_pts_face(source)]
    raise ValueError(f"source: expected a .xml or .pts file or a folder, got {source.name!r}")


#: The environment variable naming a development set of annotated real faces (a dlib XML
#: file, a ``.pts`` file or a folder, as :func:`read_annotations` takes) that notebook 08 and
#: the real-photo scripts measure on.
DEV_FACES_ENV = "E2FAR_DEV_FACES"


def dev_annotations() -> Path | None:
    """The annotated real-face set the user points at with ``E2FAR_DEV_FACES``, or None.

    Raises:
        FileNotFoundError: the variable is set but names nothing that exists.
    """
    value = os.environ.get(DEV_FACES_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{DEV_FACES_ENV}: expected a dlib .xml file, a .pts file or a "
                                f"folder of them, got {value!r}, which does not exist")
    return path


def _pts_face(path: Path) -> AnnotatedFace:
    landmarks = read_pts(path)
    if len(landmarks) != NUM_LANDMARKS:
        raise ValueError(f"{path.name}: expected {NUM_LANDMARKS} points, got {len(landmarks)}")
    for suffix in _IMAGE_SUFFIXES:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return AnnotatedFace(candidate, landmarks)
    raise FileNotFoundError(f"{path.name}: expected an image beside it with the same stem "
                            f"({', '.join(_IMAGE_SUFFIXES)}), got none")


__all__ = ["AnnotatedFace", "read_dlib_xml", "read_pts", "read_annotations", "NUM_LANDMARKS",
           "DEV_FACES_ENV", "dev_annotations"]
