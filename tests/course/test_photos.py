"""Notebook 08's checks (e2far_lite/course/photos.py): they pass the crop the package cuts from a
face box and the package's JPEG round trip, and fail an unwritten or a deliberately wrong version
with a CheckFailed that names the slip."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.photos import (
    check_crop_from_box,
    check_jpeg,
    random_crop_problem,
    random_photo,
)
from e2far_lite.photo import CropBox
from e2far_lite.synth.realism import jpeg as realism_jpeg


def crop_from_box(box, convention, crop_scale, measure=max, shift_unit="side", centre=True,
                  scaled=True):
    """The crop written out plainly, or with one of the usual slips."""
    x, y, w, h = box
    s = measure(w, h)
    unit = s if shift_unit == "side" else 1.0
    cx = (x + w / 2 if centre else x) + convention.shift_x * unit
    cy = (y + h / 2 if centre else y) + convention.shift_y * unit
    side = round(crop_scale * (convention.scale if scaled else 1.0) * s)
    return round(cx - side / 2), round(cy - side / 2), side


def test_random_crop_problems_are_what_they_say():
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        (x, y, w, h), convention, (low, high) = random_crop_problem(g)
        assert abs(math.log(w / h)) > math.log(1.09)  # not square: width != larger side
        assert abs(convention.shift_x) >= 0.03 and convention.shift_y >= 0.05
        assert 1.1 <= low < high <= 1.6


def test_the_crop_check_passes_the_plain_crop(capsys):
    check_crop_from_box(crop_from_box)
    check_crop_from_box(lambda *args: CropBox(*crop_from_box(*args)))  # a CropBox will do
    check_crop_from_box(lambda *args: [float(v) for v in crop_from_box(*args)])  # whole floats
    assert capsys.readouterr().out.count("✓") == 3


def test_the_crop_check_names_the_usual_slips():
    with pytest.raises(CheckFailed, match="not written yet"):
        check_crop_from_box(lambda box, convention, crop_scale: None)
    with pytest.raises(CheckFailed, match="measured by its width.*larger side"):
        check_crop_from_box(lambda *args: crop_from_box(*args, measure=lambda w, h: w))
    with pytest.raises(CheckFailed, match="shifts are added in pixels"):
        check_crop_from_box(lambda *args: crop_from_box(*args, shift_unit="pixel"))
    with pytest.raises(CheckFailed, match="face box's corner"):
        check_crop_from_box(lambda *args: crop_from_box(*args, centre=False))
    with pytest.raises(CheckFailed, match="leaves out the convention's scale"):
        check_crop_from_box(lambda *args: crop_from_box(*args, scaled=False))

    def the_centre(box, convention, crop_scale):
        x0, y0, side = crop_from_box(box, convention, crop_scale)
        return x0 + side / 2, y0 + side / 2, side

    with pytest.raises(CheckFailed, match="whole pixels|crop's centre"):
        check_crop_from_box(the_centre)


def test_the_crop_check_names_the_rounding_and_the_types():
    def truncated(box, convention, crop_scale):  # int() rounds towards zero
        x, y, w, h = box
        s = max(w, h)
        side = round(crop_scale * convention.scale * s)
        return (int(x + w / 2 + convention.shift_x * s - side / 2),
                int(y + h / 2 + convention.shift_y * s - side / 2), side)

    with pytest.raises(CheckFailed, match="within a pixel of the package's"):
        check_crop_from_box(truncated)
    with pytest.raises(CheckFailed, match="whole pixels"):
        check_crop_from_box(lambda *args: (*crop_from_box(*args)[:2], 100.5))
    with pytest.raises(CheckFailed, match=r"expected \(x0, y0, side\) or a CropBox"):
        check_crop_from_box(lambda *args: crop_from_box(*args)[:2])


def test_the_convention_s_own_landmark_box_is_refused():
    def by_the_method(box, convention, crop_scale):
        cx, cy, side = convention.landmark_box(box)
        side = round(crop_scale * side)
        return round(cx - side / 2), round(cy - side / 2), side

    with pytest.raises(CheckFailed, match="landmark_box is the half of the crop you write"):
        check_crop_from_box(by_the_method)


# check_jpeg: the JPEG round trip of notebook 08's exercise


def jpeg(image, quality, levels=torch.round, use_quality=True, channels_first=True, scale=255.0):
    """The round trip written out plainly, or with one of the usual slips."""
    pixels = levels(image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    options = {"quality": quality} if use_quality else {}
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    out = torch.from_numpy(decoded.copy()).float() / 255 * (scale / 255)
    return out.permute(2, 0, 1) if channels_first else out


def test_random_photos_are_what_they_say():
    g = torch.Generator().manual_seed(5)
    for _ in range(20):
        image, quality = random_photo(g)
        assert image.dtype == torch.float32 and image.shape[0] == 3
        assert image.shape[1] != image.shape[2] and min(image.shape[1:]) >= 16
        assert 0 <= float(image.min()) and float(image.max()) <= 1
        assert 10 <= quality <= 60 or 85 <= quality <= 95


def test_the_jpeg_check_passes_the_package_s_round_trip(capsys):
    check_jpeg(realism_jpeg)
    check_jpeg(jpeg)
    check_jpeg(lambda image, quality: jpeg(image, quality).double())  # float64 will do
    assert capsys.readouterr().out.count("✓") == 3


def test_the_jpeg_check_names_the_usual_slips():
    with pytest.raises(CheckFailed, match="not written yet"):
        check_jpeg(lambda image, quality: None)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_jpeg(lambda image, quality: ...)
    with pytest.raises(CheckFailed, match="returned the input unchanged"):
        check_jpeg(lambda image, quality: image)
    with pytest.raises(CheckFailed, match="rounded to 8 bits and nothing more"):
        check_jpeg(lambda image, quality: (image * 255).round() / 255)
    with pytest.raises(CheckFailed, match=r"in 0-255 \(8-bit levels\)"):
        check_jpeg(lambda image, quality: jpeg(image, quality, scale=255.0 * 255))
    with pytest.raises(CheckFailed, match=r"\(H, W, 3\) as Pillow and NumPy hold"):
        check_jpeg(lambda image, quality: jpeg(image, quality, channels_first=False))
    with pytest.raises(CheckFailed, match="levels are truncated"):
        check_jpeg(lambda image, quality: jpeg(image, quality, levels=torch.trunc))
    with pytest.raises(CheckFailed, match="quality 75, Pillow's default"):
        check_jpeg(lambda image, quality: jpeg(image, quality, use_quality=False))
    with pytest.raises(CheckFailed, match="channels are in reverse order"):
        check_jpeg(lambda image, quality: jpeg(image, quality).flip(0))
    with pytest.raises(CheckFailed, match="expected a float tensor"):
        check_jpeg(lambda image, quality: (jpeg(image, quality) * 255).round().to(torch.uint8))
