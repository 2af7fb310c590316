"""Checks for notebook 08: the network's crop from a detected face box, written by the student.

- :func:`check_crop_from_box`: the student's ``crop_from_box(box, convention, crop_scale)`` (the
  landmark box a face box implies under a :class:`~e2far_lite.photo.BoxConvention`, then the
  square crop around it, ``crop_scale`` times its side) against the package's
  :func:`~e2far_lite.photo.crop_box`, on fresh random boxes, conventions and crop scales.

A wrong crop that matches a usual slip (the box measured by its width, the shift in pixels
instead of box sides, the box's corner for its centre, a factor left out, the rounding) is
named, in words, without the code.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..photo.detect import Box, BoxConvention
from ..photo.reconstruction import crop_box
from ..train.configs import TrainConfig, get_config
from .checks import CheckFailed, call, fresh_generator, not_written, passed

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


__all__ = ["TRIALS", "check_crop_from_box", "random_crop_problem"]
