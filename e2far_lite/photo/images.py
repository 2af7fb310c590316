"""Decoding photos: the package's one image decoder.

:func:`load_image` turns a file path, the bytes of an image file, a PIL image, a numpy array or
a torch tensor into one thing: an (H, W, 3) float32 RGB array in [0, 1], row 0 at the top.
Files and bytes are decoded with Pillow and turned upright by their EXIF orientation (phones
store a photo as the sensor saw it and the rotation in a tag), so every path into the package
(the detector, :func:`~e2far_lite.photo.reconstruct`, the command line, the upload widgets of
:mod:`e2far_lite.ui`) sees the photo the way a viewer shows it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import BadInput, MissingFile
from ..io.sniff import file_head

#: Images smaller than this on either side are refused (px): no face fits in them.
MIN_SIDE = 8


def load_image(image, name: str | None = None, argument: str = "image") -> np.ndarray:
    """A photo as an (H, W, 3) float32 RGB array in [0, 1].

    Args:
        image: a file path or the bytes of an image file (JPEG, PNG, ...; the EXIF orientation
            of phone photos is applied), a PIL image, a numpy array (H, W), (H, W, 1),
            (H, W, 3) or (H, W, 4) of uint8, uint16, bool or floats in [0, 1], or a torch
            tensor (C, H, W) like the package's images. Grey images are replicated to RGB; RGBA
            is composited on white.
        name: what to call the image in error messages (default: the file name; ``"image"``
            for anything else).
        argument: the caller's name for ``image``: the ``argument`` of the errors raised
            (the command line's ``photo``), and the start of the message for a missing file.

    Raises:
        MissingFile: a path that does not exist (a ``FileNotFoundError`` too).
        BadInput: not an image file, a broken one, or an array of another shape, dtype or value
            range, or under :data:`MIN_SIDE` px a side; named ``argument``, its message
            starting with ``name``.
        TypeError: none of the above kinds.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise MissingFile(argument, "an existing image file", repr(str(path)))
        return _decode(path, name or path.name, argument)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode(bytes(image), name or "image", argument)
    from PIL import Image  # Pillow comes with scikit-image and matplotlib

    name = name or "image"
    if isinstance(image, Image.Image):
        image = np.asarray(_plain_mode(image))
    if isinstance(image, Tensor):
        image = image.detach().cpu()
        if image.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            image = image.float()
        if image.dim() == 3 and image.shape[0] in (1, 3, 4):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a file path, image file bytes, PIL image, numpy "
                        f"array or tensor, got {type(image).__name__}")
    array = image

    def refused(expected: str, received: str) -> BadInput:
        return BadInput(argument, expected, received,
                        message=f"{name}: expected {expected}, got {received}")

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise refused("shape (H, W), (H, W, 3) or (H, W, 4)", str(tuple(array.shape)))
    if min(array.shape[:2]) < MIN_SIDE:
        raise refused(f"an image at least {MIN_SIDE} px on each side",
                      f"{array.shape[1]} x {array.shape[0]}")
    if array.dtype == np.uint8:
        out = array.astype(np.float32) / 255
    elif array.dtype == np.uint16:
        out = array.astype(np.float32) / 65535
    elif array.dtype == np.bool_:
        out = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32)
        if not np.isfinite(out).all():
            raise refused("finite values", "NaN or inf")
        lo, hi = float(out.min()), float(out.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise refused("floats in [0, 1]", f"range [{lo:g}, {hi:g}]"
                          + ("; divide 8-bit values by 255" if hi <= 255 else ""))
        out = out.clip(0, 1)
    else:
        raise refused("dtype uint8, uint16, bool or float", str(array.dtype))
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    elif out.shape[2] == 4:  # composite on white: transparent pixels become background
        alpha = out[..., 3:]
        out = out[..., :3] * alpha + (1 - alpha)
    return np.ascontiguousarray(out, dtype=np.float32)


def _plain_mode(image):
    """A PIL image in a mode numpy reads as uint8/uint16 grey, RGB or RGBA, or as float grey
    (mode "F", which then follows the float rule of :func:`load_image`: values in [0, 1])."""
    if image.mode in ("L", "RGB", "RGBA", "I;16", "F"):
        return image
    if image.mode in ("I", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(image)
        if array.min() >= 0 and array.max() <= 65535:
            from PIL import Image

            return Image.fromarray(array.astype(np.uint16))
        return image  # 32-bit integers beyond 16 bits: refused by dtype, not clipped
    if image.mode == "1":
        return image.convert("L")
    has_alpha = "A" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _decode(source: Path | bytes, name: str, argument: str) -> np.ndarray:
    """An image file (a path or its bytes) -> (H, W, 3) float32 in [0, 1], EXIF-upright.

    Refusals are :class:`~e2far_lite.errors.BadInput` named ``argument``; their ``received``
    and their message start with the file's ``name``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as handle:
            picture = ImageOps.exif_transpose(handle)  # phones store the rotation in EXIF
            picture.load()
            kind = handle.format
    except UnidentifiedImageError:
        head = file_head(source)
        raise BadInput(argument, "an image file Pillow can read (JPEG, PNG, BMP, TIFF, WebP, "
                                 "...)", f"{name}: not an image file ({head})",
                       message=f"{name}: not an image file Pillow can read (expected JPEG, "
                               f"PNG, BMP, TIFF, WebP, ...; got {head})") from None
    except Image.DecompressionBombError as err:
        reason = str(err).split(", could be")[0]  # "Image size (N pixels) exceeds limit of M"
        problem = f"refused as a possible decompression bomb ({reason})"
        raise BadInput(argument, "a photo small enough to decode safely (scale it down first)",
                       f"{name}: {problem}",
                       message=f"{name}: {problem}; scale the photo down first") from None
    except OSError as err:
        problem = f"a broken or truncated {_kind_of(source, name)} image ({err})"
        raise BadInput(argument, "a complete image file", f"{name}: {problem}",
                       message=f"{name}: {problem}") from None
    try:
        return load_image(np.asarray(_plain_mode(picture)), name=name)
    except BadInput as err:
        raise BadInput(argument, err.expected, f"{name}: {err.received} (a {kind} file)",
                       message=f"{err} (a {kind} file)") from None


def _kind_of(source: Path | bytes, name: str) -> str:
    """What the file claims to be by its extension: ``"JPG"``, ``"PNG"``, ..."""
    suffix = Path(name).suffix.lstrip(".").upper()
    if suffix or isinstance(source, bytes):
        return suffix or "image file's"
    return "extension-less"


def load_face_image(data: bytes, size: int) -> Tensor:
    """Decode an image file (PNG, JPEG, ...) into a network input: (3, size, size) in [0, 1].

    Decoded by :func:`load_image` (turned upright by its EXIF orientation,
    grey made RGB, transparency composited on white); then the largest centred square is kept
    and resized with anti-aliasing. The network was trained on synthetic crops framed around
    the landmarks, so a photo should be a tight, roughly centred crop of one face.
    """
    from skimage import transform

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected the bytes of an image file, got {type(data).__name__}")
    image = load_image(bytes(data), name="data")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = transform.resize(image[top:top + side, left:left + side], (size, size),
                             anti_aliasing=True)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().clamp(0, 1)


__all__ = ["load_face_image", "load_image", "MIN_SIDE"]
