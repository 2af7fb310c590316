"""Checks for notebook 08: the network's crop from a detected face box, written by the student.

- :func:`check_crop_from_box`: the student's ``crop_from_box(box, convention, crop_scale)`` (the
  landmark box a face box implies under a :class:`~e2far_lite.photo.BoxConvention`, then the
  square crop around it, ``crop_scale`` times its side) against the package's
  :func:`~e2far_lite.photo.crop_box`, on fresh random boxes, conventions and crop scales.
- :func:`check_jpeg`: the student's ``jpeg(image, quality)`` (one (3, H, W) image in [0, 1]
  through Pillow's JPEG encoder and decoder at ``quality``) against the package's
  :func:`~e2far_lite.synth.realism.jpeg`, on fresh random images and qualities.

A wrong crop that matches a usual slip (the box measured by its width, the shift in pixels
instead of box sides, the box's corner for its centre, a factor left out, the rounding) is
named, in words, without the code.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..photo.detect import Box, BoxConvention
from ..photo.reconstruction import crop_box
from ..synth.realism import jpeg as reference_jpeg
from ..train.configs import TrainConfig, get_config
from .checks import (
    CheckFailed,
    call,
    compare,
    fresh_generator,
    not_written,
    passed,
    refuse_reference,
)

#: random draws of one check: boxes, conventions and crop scales
TRIALS = 8


class _Convention(BoxConvention):
    """A :class:`BoxConvention` whose ``landmark_box`` the student may not call: that is the
    half of the crop they write."""

    def landmark_box(self, box: Box) -> tuple[float, float, float]:
        raise CheckFailed("crop_from_box: compute the landmark box from convention.scale, "
                          "convention.shift_x and convention.shift_y yourself: "
                          "convention.landmark_box is the half of the crop you write")


def _uniform(low: float, high: float, g: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def random_crop_problem(g: torch.Generator) -> tuple[Box, BoxConvention, tuple[float, float]]:
    """A random face box (x, y, w, h) in photo pixels, not square (w and h differ by 10 % or
    more, either larger); a random convention (scale 0.8 .. 1.1; in face box sides, shift_x
    0.03 .. 0.15 left or right and shift_y 0.05 .. 0.2 down, so neither is near 0); and a random
    training crop range (low 1.1 .. 1.3, high 0.1 .. 0.3 above it)."""
    side = _uniform(40.0, 300.0, g)
    aspect = _uniform(1.1, 1.4, g) ** (1 if float(torch.rand((), generator=g)) < 0.5 else -1)
    w, h = side, side * aspect
    box = (_uniform(-20.0, 500.0, g), _uniform(-20.0, 400.0, g), w, h)
    shift_x = _uniform(0.03, 0.15, g) * (1 if float(torch.rand((), generator=g)) < 0.5 else -1)
    convention = BoxConvention(scale=_uniform(0.8, 1.1, g), shift_x=shift_x,
                               shift_y=_uniform(0.05, 0.2, g))
    low = _uniform(1.1, 1.3, g)
    return box, convention, (low, low + _uniform(0.1, 0.3, g))


def _with_box_scale(config: TrainConfig, box_scale: tuple[float, float]) -> TrainConfig:
    """``config`` with its training crops' range ``box_scale``."""
    return dataclasses.replace(config, data=dataclasses.replace(config.data, box_scale=box_scale))


def _as_crop(got: Any, what: str) -> tuple[int, int, int]:
    """``got`` as (x0, y0, side) ints: a :class:`~e2far_lite.photo.CropBox` or a tuple or list
    of three whole numbers (Python or NumPy numbers, or one-element tensors)."""
    not_written(got, what)
    if all(hasattr(got, name) for name in ("x0", "y0", "side")):
        values = (got.x0, got.y0, got.side)
    elif isinstance(got, tuple | list) and len(got) == 3:
        values = tuple(got)
    else:
        length = f" of length {len(got)}" if isinstance(got, tuple | list) else ""
        raise CheckFailed(f"{what}: expected (x0, y0, side) or a CropBox, got "
                          f"{type(got).__name__}{length}")
    out = []
    for name, value in zip(("x0", "y0", "side"), values, strict=True):
        not_written(value, f"{what}: {name}")
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what}: expected {name} to be a number of pixels, got "
                              f"{type(value).__name__} {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number) or number != round(number):
            raise CheckFailed(f"{what}: expected {name} in whole pixels, got {value!r}: round "
                              "as the exercise says")
        out.append(int(round(number)))
    return out[0], out[1], out[2]


def _crop(cx: float, cy: float, landmark_side: float, crop_scale: float) -> tuple[int, int, int]:
    """The crop around a landmark box, rounded as the package rounds."""
    side = max(1, round(crop_scale * landmark_side))
    return round(cx - side / 2), round(cy - side / 2), side


def _crop_variants(box: Box, convention: BoxConvention,
                   crop_scale: float) -> list[tuple[tuple[int, int, int], str]]:
    """(x0, y0, side) as the usual slips compute it, each with what is wrong, in words."""
    x, y, w, h = box
    s = max(w, h)
    scale, dx, dy = convention.scale, convention.shift_x, convention.shift_y
    centre = (x + w / 2 + dx * s, y + h / 2 + dy * s)
    by_side = [(w, "its width"), (h, "its height"), ((w + h) / 2, "the mean of its sides"),
               (math.sqrt(w * h), "the geometric mean of its sides")]
    variants = [(_crop(x + w / 2 + dx * m, y + h / 2 + dy * m, scale * m, crop_scale),
                 f"the face box is measured by {name}; the convention measures it by its larger "
                 "side, max(w, h)") for m, name in by_side]
    variants += [
        (_crop(x + w / 2 + dx, y + h / 2 + dy, scale * s, crop_scale),
         "the shifts are added in pixels; the convention's shift_x and shift_y are in face box "
         "sides"),
        (_crop(x + w / 2 + dx * scale * s, y + h / 2 + dy * scale * s, scale * s, crop_scale),
         "the shifts are measured in landmark box sides; they are in face box sides"),
        (_crop(x + w / 2 - dx * s, y + h / 2 - dy * s, scale * s, crop_scale),
         "the shifts go the wrong way: a positive shift_y moves the centre down (y grows "
         "downwards in a photo), a positive shift_x to the right"),
        (_crop(x + dx * s, y + dy * s, scale * s, crop_scale),
         "the landmark box's centre starts from the face box's corner (x, y); it starts from "
         "the face box's centre"),
        ((round(centre[0]), round(centre[1]), _crop(*centre, scale * s, crop_scale)[2]),
         "(x0, y0) is the crop's centre; the crop is given by its top-left corner"),
        (_crop(*centre, s, crop_scale),
         "the crop's side leaves out the convention's scale (landmark box side / face box "
         "side)"),
        (_crop(*centre, scale * s, 1.0),
         "the crop's side is the landmark box's side: training crops were crop_scale times "
         "larger"),
    ]
    return variants


def _crop_hint(got: list[tuple[int, int, int]],
               problems: list[tuple[Box, BoxConvention, float, tuple[int, int, int]]]) -> str:
    """A sentence naming the slip every one of the student's crops fits (to a pixel), or the
    rounding when they are all within a pixel of the package's, else ``""``."""
    def near(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
        return all(abs(u - v) <= 1 for u, v in zip(a, b, strict=True))

    every = [_crop_variants(box, convention, scale) for box, convention, scale, _ in problems]
    for k, (_, hint) in enumerate(every[0]):
        if all(near(crop, variants[k][0]) for crop, variants in zip(got, every, strict=True)):
            return f". Your crops fit this: {hint}"
    if all(near(crop, expected) for crop, (*_, expected) in zip(got, problems, strict=True)):
        return (". Your crops are all within a pixel of the package's: round as the package "
                "does, the side first, then the corner from the unrounded centre and the "
                "already rounded side (x0 = round(cx - side / 2)), each with Python's round()")
    return ""


def _call_text(box: Box, convention: BoxConvention, crop_scale: float) -> str:
    """The call, as a message names it."""
    return (f"crop_from_box(box=({', '.join(f'{v:.2f}' for v in box)}), BoxConvention("
            f"scale={convention.scale:.4f}, shift_x={convention.shift_x:+.4f}, "
            f"shift_y={convention.shift_y:+.4f}), crop_scale={crop_scale:.4f})")


def check_crop_from_box(crop_from_box: Callable) -> None:
    """``crop_from_box(box, convention, crop_scale)`` -> ``(x0, y0, side)`` (or a
    :class:`~e2far_lite.photo.CropBox`) in photo pixels must equal the package's
    :func:`~e2far_lite.photo.crop_box` exactly, on fresh random boxes (x, y, w, h) that are not
    square, conventions with non-zero shifts, and crop scales: ``crop_box(box, config,
    convention)`` with ``config.data.box_scale`` a random range whose middle is
    ``crop_scale``."""
    g = fresh_generator()
    config = get_config("smoke")
    problems = []
    crops = []
    for _ in range(TRIALS):
        box, convention, box_scale = random_crop_problem(g)
        crop_scale = sum(box_scale) / 2  # as crop_box takes the middle of the range
        expected = crop_box(box, _with_box_scale(config, box_scale), convention)
        student = _Convention(convention.scale, convention.shift_x, convention.shift_y)
        what = _call_text(box, convention, crop_scale)
        got = _as_crop(call(crop_from_box, what, box, student, crop_scale), what)
        problems.append((box, convention, crop_scale, (expected.x0, expected.y0, expected.side)))
        crops.append(got)
    for got, (box, convention, crop_scale, expected) in zip(crops, problems, strict=True):
        if got != expected:
            what = _call_text(box, convention, crop_scale)
            wrong = ", ".join(f"{name} {u} (expected {v})" for name, u, v in
                              zip(("x0", "y0", "side"), got, expected, strict=True) if u != v)
            hint = _crop_hint(crops, problems)
            raise CheckFailed(f"{what}: got (x0, y0, side) = {got}: {wrong}{hint}"
                              + ("." if hint else ""))
    passed(f"crop_from_box(box, convention, crop_scale) gives the package's crop_box on "
           f"{TRIALS} fresh random boxes, conventions and crop scales")


#: random images of one JPEG check
JPEG_TRIALS = 4

#: Pillow's JPEG quality when none is given
PILLOW_DEFAULT_QUALITY = 75


def random_photo(g: torch.Generator) -> tuple[Tensor, int]:
    """A random image (3, H, W) in [0, 1], float32, and a random JPEG quality.

    H and W are 16 .. 72 and differ (so a transposed result shows in its shape); the content is
    a smooth random colour field (a 3x3 .. 6x6 grid of colours, enlarged bilinearly) plus noise
    of 0.02 .. 0.06, so JPEG both smooths and blocks it; the quality is 10 .. 60 or 85 .. 95,
    far from Pillow's default of 75.
    """
    h = int(torch.randint(16, 73, (), generator=g))
    w = int(torch.randint(16, 72, (), generator=g))
    w += w >= h  # W != H
    grid = torch.rand(1, 3, *torch.randint(3, 7, (2,), generator=g).tolist(), generator=g)
    smooth = torch.nn.functional.interpolate(grid, size=(h, w), mode="bilinear",
                                             align_corners=False)[0]
    noise = _uniform(0.02, 0.06, g) * torch.randn(3, h, w, generator=g)
    image = (0.1 + 0.8 * smooth + noise).clamp(0, 1).float()
    low = float(torch.rand((), generator=g)) < 0.5
    quality = int(torch.randint(10, 61, (), generator=g) if low
                  else torch.randint(85, 96, (), generator=g))
    return image, quality


def _truncating_jpeg(image: Tensor, quality: int) -> Tensor:
    """:func:`~e2far_lite.synth.realism.jpeg` with the 8-bit levels cut (truncated), not
    rounded: the slip it detects."""
    pixels = (image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255


def _jpeg_hint(got: Tensor, image: Tensor, quality: int) -> str:
    """A sentence naming the slip ``got`` (already (3, H, W), floating) matches, else ``""``."""
    def same(a: Tensor, b: Tensor) -> bool:
        return bool(torch.allclose(a.float(), b.float(), atol=1e-6, rtol=0))

    if same(got, image):
        return ("you returned the input unchanged: nothing went through JPEG; encode the image "
                "with Pillow as JPEG and decode it again")
    if same(got, (image.clamp(0, 1) * 255).round() / 255):
        return ("your image is the input rounded to 8 bits and nothing more: the JPEG "
                "compression (encode as JPEG at the quality, then decode) is missing")
    if same(got, reference_jpeg(image, PILLOW_DEFAULT_QUALITY)):
        return (f"your image is a JPEG at quality {PILLOW_DEFAULT_QUALITY}, Pillow's default, "
                f"not at the quality asked for ({quality}): pass the quality to the encoder")
    if same(got, _truncating_jpeg(image, quality)):
        return ("your 8-bit levels are truncated (x·255 cut to an integer, as .to(torch.uint8) "
                "or .byte() cut it); round them to the nearest level first, as the package does")
    if same(got.flip(0), reference_jpeg(image, quality)):
        return ("your channels are in reverse order (B, G, R): keep them R, G, B, as the input "
                "and Pillow's RGB images have them")
    return ""


def check_jpeg(jpeg_student: Callable) -> None:
    """``jpeg(image, quality)`` -> the (3, H, W) image in [0, 1] after a round trip through
    Pillow's JPEG encoder and decoder at ``quality`` must equal the package's
    :func:`~e2far_lite.synth.realism.jpeg` (to 1e-6, far below one 8-bit level of 1/255), on
    fresh random images (3, H, W) float32 in [0, 1] of random sizes, at random qualities."""
    refuse_reference(jpeg_student, ("realism",), "jpeg(image, quality)")
    g = fresh_generator()
    for _ in range(JPEG_TRIALS):
        image, quality = random_photo(g)
        _, h, w = image.shape
        what = f"jpeg(image, quality={quality}) for an image of shape {tuple(image.shape)}"
        expected = reference_jpeg(image, quality)
        got = call(jpeg_student, what, image.clone(), quality)
        not_written(got, what)
        if not isinstance(got, Tensor):
            raise CheckFailed(f"{what}: expected a torch.Tensor (3, H, W), got "
                              f"{type(got).__name__}")
        shape = tuple(got.shape)
        if shape == (h, w, 3):
            raise CheckFailed(f"{what}: got shape {shape}, (H, W, 3) as Pillow and NumPy hold "
                              "an image: return (3, H, W), the channels first, as the input")
        if shape == (3, w, h):
            raise CheckFailed(f"{what}: got shape {shape}, (3, W, H): H and W are swapped; "
                              "move the channel axis first and keep the rows before the columns")
        if not got.is_floating_point():
            raise CheckFailed(f"{what}: expected a float tensor in [0, 1], got dtype "
                              f"{got.dtype}: divide the 8-bit levels by 255")
        if shape == tuple(expected.shape) and float(got.detach().max()) > 1.5:
            raise CheckFailed(f"{what}: got values up to {float(got.detach().max()):.4g}, in "
                              "0-255 (8-bit levels): return the image in [0, 1], as the input")
        try:
            compare(got, expected, what, atol=1e-6, rtol=0.0)
        except CheckFailed as failed:
            hint = _jpeg_hint(got.detach().cpu(), image, quality)
            raise CheckFailed(f"{failed}" + (f". {hint[0].upper()}{hint[1:]}." if hint
                                             else "")) from None
    passed(f"jpeg(image, quality) gives the package's JPEG round trip exactly on {JPEG_TRIALS} "
           "fresh random images and qualities")


__all__ = ["JPEG_TRIALS", "TRIALS", "check_crop_from_box", "check_jpeg", "random_crop_problem",
           "random_photo"]
