"""Real photographs: loading, detection, the crop convention, reconstruction, export, CLI, NME."""

from __future__ import annotations

import dataclasses
import re

import matplotlib
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torch import nn

from e2far_lite import photo
from e2far_lite.cli import main
from e2far_lite.paths import shared_dir
from e2far_lite.photo import detect
from e2far_lite.synth.faces import DataConfig, SyntheticFaces
from e2far_lite.train.checkpoint import save_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.ui import overlay_figure

matplotlib.use("Agg")
DEV_XML = shared_dir() / "data" / "real_faces_dev" / "faces_with_landmarks.xml"
ASTRONAUT_FACE = (180.0, 70.0, 90.0, 100.0)  # the face area of skimage.data.astronaut(), by eye


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


class Truth(nn.Module):
    """A stand-in network that 'predicts' given outputs, whatever the image."""

    def __init__(self, outputs: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.outputs = outputs
        self.seen: torch.Tensor | None = None

    def forward(self, images):
        self.seen = images
        return {k: v.clone() for k, v in self.outputs.items()}


# ---------------------------------------------------------------------------- loading
def test_load_image_dtypes_and_channels(astronaut):
    rgb = photo.load_image(astronaut)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1
    gray = photo.load_image((astronaut.mean(2)).astype(np.uint8))
    assert gray.shape == (512, 512, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    wide = photo.load_image(astronaut.astype(np.uint16) * 257)
    np.testing.assert_allclose(wide, rgb, atol=1e-6)
    rgba = np.dstack([astronaut, np.full((512, 512), 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # transparent corner -> white
    out = photo.load_image(rgba)
    assert np.allclose(out[:10, :10], 1.0) and np.allclose(out[20:, 20:], rgb[20:, 20:])
    tensor = photo.load_image(torch.from_numpy(rgb).permute(2, 0, 1))
    np.testing.assert_array_equal(tensor, rgb)
    assert photo.load_image(np.ones((16, 16), bool)).shape == (16, 16, 3)


@pytest.mark.parametrize("array, message", [
    (np.full((32, 32, 3), 200.0), r"floats in \[0, 1\].*divide 8-bit values by 255"),
    (np.zeros((32, 32, 2), np.uint8), r"shape \(H, W\), \(H, W, 3\)"),
    (np.zeros((32, 32, 3), np.int64), "dtype uint8, uint16, bool or float"),
    (np.zeros((4, 32, 3), np.uint8), "at least 8 px"),
    (np.full((32, 32), np.nan), "finite"),
])
def test_load_image_refuses_bad_arrays(array, message):
    with pytest.raises(ValueError, match=message):
        photo.load_image(array)


def test_load_image_files(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    np.testing.assert_array_equal(photo.load_image(tmp_path / "a.png"), photo.load_image(astronaut))
    Image.fromarray(astronaut[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    g16 = photo.load_image(tmp_path / "g16.png")
    np.testing.assert_allclose(g16[..., 1], astronaut[..., 0] / 255, atol=1e-6)
    (tmp_path / "notes.jpg").write_text("these are my notes, not a photo")
    with pytest.raises(ValueError, match="notes.jpg: not an image file.*text starting"):
        photo.load_image(tmp_path / "notes.jpg")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        photo.load_image(tmp_path / "missing.jpg")
    Image.fromarray(astronaut).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:3000])
    with pytest.raises(ValueError, match="cut.jpg: a broken or truncated JPG image"):
        photo.load_image(tmp_path / "cut.jpg")


def test_float_and_wide_integer_files_follow_the_array_rules(tmp_path, astronaut):
    grey = astronaut[..., 0].astype(np.float32) / 255
    Image.fromarray(grey, mode="F").save(tmp_path / "f.tif")  # 32-bit float TIFF in [0, 1]
    np.testing.assert_allclose(photo.load_image(tmp_path / "f.tif")[..., 2], grey, atol=1e-6)
    Image.fromarray(grey * 255, mode="F").save(tmp_path / "f255.tif")
    with pytest.raises(ValueError, match=r"f255.tif: expected floats in \[0, 1\].*divide 8-bit"):
        photo.load_image(tmp_path / "f255.tif")
    Image.fromarray((grey * 100_000).astype(np.int32), mode="I").save(tmp_path / "i32.tif")
    with pytest.raises(ValueError, match=r"i32.tif: expected dtype uint8, uint16, bool or "
                                         r"float, got int32"):
        photo.load_image(tmp_path / "i32.tif")
    # a half-precision tensor is an image too (numpy has no bfloat16)
    half = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
    for dtype in (torch.bfloat16, torch.float16):
        assert photo.load_image(half.to(dtype)).dtype == np.float32


def _exif_rotated_jpeg(upright: np.ndarray) -> bytes:
    """A JPEG stored as a phone stores a portrait photo: pixels as the sensor saw them (turned
    90° anticlockwise), and EXIF orientation 6 saying "rotate 90° clockwise to view"."""
    import io

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the 0th row is the visual right-hand side
    Image.fromarray(np.rot90(upright)).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_exif_orientation_is_applied_by_every_decoder(tmp_path):
    from e2far_lite.photo import load_face_image

    upright = np.zeros((60, 40, 3), np.uint8)  # portrait: 60 rows, 40 columns
    upright[:20] = (255, 0, 0)  # red at the top
    data = _exif_rotated_jpeg(upright)
    (tmp_path / "phone.jpg").write_bytes(data)
    for decoded in (photo.load_image(tmp_path / "phone.jpg"), photo.load_image(data)):
        assert decoded.shape == (60, 40, 3)  # upright, not the sensor's 40 x 60
        assert decoded[5, 20, 0] > 0.8 and decoded[55, 20, 0] < 0.2  # red stays on top
    square = load_face_image(data, 16)  # the layer explorer's upload: the centred square
    assert square.shape == (3, 16, 16)
    assert float(square[0, 0].mean()) > 0.8 and float(square[0, -1].mean()) < 0.2


# ---------------------------------------------------------------------------- detection
@pytest.mark.parametrize("detector", ["auto", "hog", "cascade"])
def test_detects_the_astronauts_face(astronaut, detector):
    boxes = photo.detect_faces(astronaut, detector=detector)
    assert len(boxes) == 1
    assert iou(boxes[0], ASTRONAUT_FACE) > 0.5


def test_hog_is_the_default_and_the_cascade_the_fallback(monkeypatch):
    pytest.importorskip("dlib")
    assert photo.default_detector() == "hog"
    assert photo.box_convention() == photo.HOG_BOX
    assert photo.box_convention("cascade") == photo.CASCADE_BOX

    def no_dlib():
        raise ImportError("No module named 'dlib'")

    monkeypatch.setattr(detect, "_hog", no_dlib)
    photo.default_detector.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"dlib is not installed \(pip install dlib-bin\)"):
            assert photo.default_detector() == "cascade"
        assert photo.box_convention() == photo.CASCADE_BOX
        assert len(photo.detect_faces(skimage.data.astronaut())) == 1
    finally:
        photo.default_detector.cache_clear()
    with pytest.raises(ValueError, match="detector: expected 'auto' or one of"):
        photo.detect_faces(skimage.data.astronaut(), detector="yolo")
    with pytest.raises(ValueError, match="detector: expected"):
        photo.box_convention("yolo")


def test_detection_survives_gray_rgba_uint16_and_downscaling(astronaut):
    gray = (skimage.color.rgb2gray(astronaut) * 65535).astype(np.uint16)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    huge = np.kron(astronaut, np.ones((3, 3, 1), np.uint8))  # 1536 px: searched at 640 px
    for image, scale in ((gray, 1), (rgba, 1), (huge, 3)):
        boxes = photo.detect_faces(image)
        assert boxes, "no face found"
        assert iou(tuple(v / scale for v in boxes[0]), ASTRONAUT_FACE) > 0.5


def test_smaller_min_size_finds_false_faces(astronaut):
    boxes = photo.detect_faces(astronaut, min_size=24, detector="cascade")
    assert len(boxes) > 1  # the cascade's false alarms: why the default is 8% of the side
    assert boxes == sorted(boxes, key=lambda b: -b[2] * b[3])
    # the HOG detector's score threshold keeps it to the face at this size too
    assert len(photo.detect_faces(astronaut, min_size=24, detector="hog")) == 1
    loose = photo.detect_faces(astronaut, detector="hog", threshold=0.0)
    assert len(loose) == 2  # dlib's own threshold also boxes her sleeve
    assert len(photo.detect_faces(astronaut, min_size=24)) == 1  # the default detector: HOG
    with pytest.raises(ValueError, match="min_size"):
        photo.detect_faces(astronaut, min_size=0)


def test_no_face_is_a_clear_error(smoke):
    net, model, config = smoke
    brick = skimage.data.brick()
    assert photo.detect_faces(brick) == photo.detect_faces(brick, detector="cascade") == []
    with pytest.raises(ValueError, match=r"no face found in the image; pass box=\(x, y, w, h\)"):
        photo.reconstruct(brick, net, model, config)
    with pytest.raises(ValueError, match="no face found in brick.png"):
        photo.reconstruct(brick, net, model, config, name="brick.png")


# ---------------------------------------------------------------------------- crop convention
def test_crop_box_follows_the_training_rule():
    config = get_config("smoke")  # box_scale (1.2, 1.45): 1.325 on average
    crop = photo.crop_box((100.0, 50.0, 80.0, 60.0), config)  # landmark box: side 80
    assert crop == photo.CropBox(x0=87, y0=27, side=106)
    cascade = photo.crop_box((100.0, 50.0, 80.0, 80.0), config, photo.CASCADE_BOX)
    assert cascade.side == round(1.325 * 0.85 * 80)
    assert cascade.y0 + cascade.side / 2 == pytest.approx(90 + 0.13 * 80, abs=1)
    with pytest.raises(ValueError, match="w, h > 0"):
        photo.crop_box((0, 0, 0, 10), config)


@pytest.mark.parametrize("crop", [photo.CropBox(100, 40, 96),  # plain resize
                                  photo.CropBox(-200, 300, 1500),  # block mean first, overhangs
                                  photo.CropBox(500, -10, 24)])  # upsampling
def test_cut_crop_maps_crop_pixels_to_photo_pixels(crop):
    """Pixel value = its centre's x coordinate: crop pixel j must hold x0 + (j + 0.5) side / S
    (clamped at the photo's border, which is repeated)."""
    height, width, size = 1200, 1600, 64
    ramp = (np.arange(width, dtype=np.float32) + 0.5) / width
    image = np.broadcast_to(ramp[None, :, None], (height, width, 3)).copy()
    out = photo.cut_crop(image, crop, size)
    assert out.shape == (3, size, size)
    centres = crop.x0 + (np.arange(size) + 0.5) * crop.side / size
    expected = np.clip(centres, 0.5, width - 0.5) / width
    inside = (centres > crop.side / size) & (centres < width - crop.side / size)
    inside[[0, -1]] = False  # resampling filters reflect at the crop's own edges
    np.testing.assert_allclose(out[0, size // 2].numpy()[inside], expected[inside],
                               atol=0.6 / width + 1e-6)


def _pair(size: int, box_scale: float, seed: int = 5):
    """The same faces (pose, light, identity) rendered with two crop rules: items' random draws
    do not depend on the image size or the crop, only on (seed, index)."""
    from e2far_lite import MorphableModel

    model = MorphableModel.default()
    config = DataConfig(image_size=size, box_scale=(box_scale, box_scale), box_shift=0.0,
                        augment=0.0, backgrounds=False, yaw_max=30, pitch_max=15, roll_max=10)
    return model, SyntheticFaces(model, 4, seed=seed, config=config).batch(range(2))


def test_a_photo_crop_matches_a_training_crop():
    """A face rendered wide (the 'photo'), cropped by the photo path from its landmark box, is
    the training crop of the same face: same pixels (up to resampling) and same landmarks."""
    config = get_config("smoke")  # 64 px input, box_scale (1.2, 1.45)
    middle = sum(config.data.box_scale) / 2
    model, wide = _pair(256, 2 * middle)  # landmark box ~ 97 px of 256
    _, crops = _pair(64, middle)
    for i in range(2):
        landmarks = wide["landmarks"][i].numpy()
        lo, hi = landmarks.min(0), landmarks.max(0)
        box = (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])
        crop = photo.crop_box(box, config)
        image = photo.cut_crop(wide["image"][i].permute(1, 2, 0).numpy(), crop, 64)
        assert (image - crops["image"][i]).abs().mean() < 0.02
        in_crop = (wide["landmarks"][i] - torch.tensor([crop.x0, crop.y0])) * 64 / crop.side
        assert (in_crop - crops["landmarks"][i]).norm(dim=-1).max() < 0.6  # px of 64


def test_true_coefficients_land_on_the_true_landmarks():
    """The photo path (crop, network in crop pixels, back to photo pixels) with a stand-in
    network that returns the true coefficients and pose: landmarks within a pixel."""
    from e2far_lite import MorphableModel

    model = MorphableModel.default()
    data = DataConfig(image_size=192, box_scale=(2.5, 2.5), box_shift=0.0, augment=0.0,
                      backgrounds=False, distance=(4000.0, 4000.0), yaw_max=30, pitch_max=15,
                      roll_max=10)
    wide = SyntheticFaces(model, 2, seed=3, config=data).batch(range(2))
    config = get_config("smoke")
    size = config.image_size
    for i in range(2):
        # the crop geometry alone: the landmark box as the face box
        lo, hi = wide["landmarks"][i].amin(0), wide["landmarks"][i].amax(0)
        box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        crop = photo.crop_box(box, config)
        pose = wide["pose"][i].clone()  # weak perspective in the wide image's pixels
        pose[3:5] = (pose[3:5] - torch.tensor([crop.x0, crop.y0])) * size / crop.side
        pose[5] = pose[5] * size / crop.side
        net = Truth({"a_id": wide["a_id"][i:i + 1], "a_exp": wide["a_exp"][i:i + 1],
                     "pose": pose[None]})
        face = photo.reconstruct(wide["image"][i], net, model, config, box=box, refine=0)
        assert face.crop == crop and net.seen.shape == (1, 3, size, size)
        # the fixed landmarks where the training labels are; the jaw line on the silhouette
        truth = wide["landmarks"][i].clone()
        truth[list(photo.JAW_CONTOUR)] = photo.contour_landmarks(
            model(wide["a_id"][i:i + 1], wide["a_exp"][i:i + 1]), wide["pose"][i:i + 1],
            model)[0, list(photo.JAW_CONTOUR)]
        error = (face.landmarks2d - truth).norm(dim=-1)
        assert float(error.max()) < 1.0, f"face {i}: {float(error.max()):.2f} px"
        torch.testing.assert_close(face.photo_pose, wide["pose"][i], atol=1e-3, rtol=1e-4)
        fixed = [j for j in range(68) if j not in photo.JAW_CONTOUR]
        torch.testing.assert_close(face.photo_vertices[model.landmarks[fixed], :2],
                                   face.landmarks2d[fixed])
        # a right answer is (within the projection's pixel) a fixed point of refining
        refined = photo.reconstruct(wide["image"][i], net, model, config, box=box, refine=1)
        assert _near(refined.crop, crop, 2)
        # from a box too large and off-centre, one re-crop frames the landmarks' own box
        x, y, w, h = box
        off = (x - 0.2 * w, y + 0.15 * h, 1.4 * w, 1.4 * h)
        net.outputs["pose"] = _pose_in_crop(wide["pose"][i], photo.crop_box(off, config), size)
        first = photo.reconstruct(wide["image"][i], net, model, config, box=off, refine=0)
        assert float((first.landmarks2d - truth).norm(dim=-1).max()) < 1.0
        again = photo.reconstruct(wide["image"][i], net, model, config, box=off, refine=1)
        assert again.box == off and not _near(first.crop, crop, 10) and _near(again.crop, crop, 2)


def _near(a: photo.CropBox, b: photo.CropBox, px: int) -> bool:
    return max(abs(a.x0 - b.x0), abs(a.y0 - b.y0), abs(a.side - b.side)) <= px


def _pose_in_crop(pose: torch.Tensor, crop: photo.CropBox, size: int) -> torch.Tensor:
    """A photo-pixel pose (6,) as the network predicts it in ``crop`` resized to ``size``."""
    pose = pose.clone()
    pose[3:5] = (pose[3:5] - torch.tensor([crop.x0, crop.y0])) * size / crop.side
    pose[5] = pose[5] * size / crop.side
    return pose[None]


def test_refining_recrops_around_the_first_passes_landmarks(astronaut, smoke):
    net, model, config = smoke
    box = photo.detect_faces(astronaut)[0]
    convention = photo.box_convention()
    first = photo.reconstruct(astronaut, net, model, config, box=box, convention=convention,
                              refine=0)
    lo, hi = first.landmarks2d.amin(0), first.landmarks2d.amax(0)
    around = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    second = photo.reconstruct(astronaut, net, model, config, box=around, refine=0)
    refined = photo.reconstruct(astronaut, net, model, config, box=box, convention=convention)
    assert refined.box == box  # refine=photo.REFINE: one re-crop
    assert refined.crop == second.crop == photo.crop_box(around, config)
    torch.testing.assert_close(refined.landmarks2d, second.landmarks2d)
    torch.testing.assert_close(refined.image, second.image)
    assert photo.reconstruct_faces(astronaut, net, model, config, boxes=[]) == []


@pytest.mark.parametrize("refine, error", [(-1, ValueError), (1.5, TypeError),
                                           (True, TypeError), ("1", TypeError)])
def test_refine_must_be_a_count_of_passes(astronaut, smoke, refine, error):
    net, model, config = smoke
    with pytest.raises(error, match=r"refine: expected a whole number of passes >= 0, got "
                                    rf"(\w+ )?{re.escape(repr(refine))}"):
        photo.reconstruct(astronaut, net, model, config, refine=refine)
    assert photo.reconstruct(astronaut, net, model, config, refine=np.int64(0)).crop == \
        photo.reconstruct(astronaut, net, model, config, refine=0).crop


def test_refining_keeps_the_crop_when_the_first_pass_gives_no_landmarks(astronaut, smoke):
    _, model, config = smoke
    nan = torch.full((1, 6), float("nan"))
    net = Truth({"a_id": torch.zeros(1, model.num_id), "a_exp": torch.zeros(1, model.num_exp),
                 "pose": nan})
    box = (180.0, 80.0, 100.0, 110.0)
    face = photo.reconstruct(astronaut, net, model, config, box=box, refine=2)
    assert face.crop == photo.crop_box(box, config)
    assert not torch.isfinite(face.landmarks2d).any()


# ---------------------------------------------------------------------------- outputs
def test_reconstruct_export_and_overlay(tmp_path, astronaut, smoke):
    trimesh = pytest.importorskip("trimesh")
    net, model, config = smoke
    face = photo.reconstruct(astronaut, net, model, config)
    assert face.vertices.shape == (model.num_vertices, 3)
    assert face.landmarks2d.shape == (68, 2) and face.a_id.shape == (model.num_id,)
    c = face.crop  # an untrained net predicts the mean face centred in its crop
    assert c.x0 < float(face.landmarks2d[:, 0].mean()) < c.x0 + c.side
    mesh = trimesh.load(photo.export_mesh(tmp_path / "face.obj", face, model), process=False)
    assert mesh.vertices.shape == (model.num_vertices, 3)
    np.testing.assert_allclose(mesh.vertices[:, 1], -face.photo_vertices[:, 1].numpy(), atol=1e-3)
    # right-handed after the y flip: the surface faces the viewer (+z), area-weighted
    facing = (mesh.face_normals * mesh.area_faces[:, None]).sum(0)
    assert facing[2] > 0.8 * np.linalg.norm(facing)
    ply = trimesh.load(photo.export_mesh(tmp_path / "face.ply", face, model), process=False)
    assert len(ply.faces) == model.triangles.shape[0]
    rgba = photo.render_overlay(face, model, resolution=64)
    assert rgba.shape == (64, 64, 4) and 0.1 < rgba[..., 3].mean() < 0.9
    fig = overlay_figure(astronaut, [face], model, title="astronaut")
    fig.savefig(tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").stat().st_size > 10_000


def test_mean_shape_baseline_fills_the_box(default_model):
    points = photo.mean_shape_landmarks(default_model, (10.0, 20.0, 100.0, 90.0))
    lo, hi = points.amin(0), points.amax(0)
    assert float((hi - lo).max()) == pytest.approx(100.0)
    torch.testing.assert_close((lo + hi) / 2, torch.tensor([60.0, 65.0]))


# ---------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, smoke):
    net, model, config = smoke
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", net, model, config)


def test_cli_reconstruct_writes_an_obj_trimesh_opens(tmp_path, astronaut, checkpoint, capsys):
    trimesh = pytest.importorskip("trimesh")
    Image.fromarray(astronaut).save(tmp_path / "astronaut.jpg")
    out = tmp_path / "face.obj"
    main(["reconstruct", str(tmp_path / "astronaut.jpg"), "-o", str(out), "--checkpoint",
          str(checkpoint), "--overlay", str(tmp_path / "overlay.png")])
    mesh = trimesh.load(out, process=False)
    assert len(mesh.vertices) == 6706 and (tmp_path / "overlay.png").is_file()
    assert "wrote" in capsys.readouterr().out
    main(["reconstruct", str(tmp_path / "astronaut.jpg"), "-o", str(tmp_path / "m.ply"),
          "--checkpoint", str(checkpoint), "--all"])
    assert (tmp_path / "m_0.ply").is_file()
    main(["reconstruct", str(tmp_path / "astronaut.jpg"), "-o", str(tmp_path / "b.obj"),
          "--checkpoint", str(checkpoint), "--box", "180", "80", "90", "95"])
    assert (tmp_path / "b.obj").is_file()
    header = (tmp_path / "b.obj").read_text().splitlines()[0]
    assert header == f"# e2far-lite mesh, units: {photo.EXPORT_UNITS}" and "mm" not in header
    assert b"units: photo pixels" in (tmp_path / "m_0.ply").read_bytes()[:200]


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_cli_reconstruct_colors_round_trip_through_trimesh(tmp_path, astronaut, checkpoint,
                                                           smoke, capsys, suffix):
    trimesh = pytest.importorskip("trimesh")
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    out = tmp_path / f"face{suffix}"
    main(["reconstruct", str(tmp_path / "astronaut.png"), "-o", str(out), "--checkpoint",
          str(checkpoint), "--colors"])
    assert "colours from the photo on" in capsys.readouterr().out
    mesh = trimesh.load(out, process=False)
    assert mesh.visual.kind == "vertex"
    rgb = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(int)
    assert rgb.shape == (6706, 3)
    # the checkpoint holds the smoke network: the same face, the same colours
    net, model, config = smoke
    face = photo.reconstruct(astronaut, net, model, config)
    colors, visible = photo.vertex_colors(astronaut, face, model)
    assert np.abs(rgb - (colors.numpy() * 255).round()).max() <= 1
    shown = visible.numpy()
    assert 0.5 < shown.mean() < 0.98  # some of the face is hidden from the camera
    assert (rgb[~shown] == 128).all()
    # the rest: the photo's colours where the vertices project (bilinear vs nearest pixel)
    xy = face.photo_vertices[:, :2].numpy()
    near = astronaut[xy[:, 1].astype(int), xy[:, 0].astype(int)].astype(int)
    assert np.median(np.abs(rgb[shown] - near[shown])) <= 8
    assert rgb[shown].std() > 10  # real photo colours, not a flat fill


def test_vertex_colors_sample_visible_vertices_and_grey_the_hidden(smoke):
    _, model, config = smoke
    size = config.image_size
    height, width = 120, 160
    ys, xs = np.mgrid[0:height, 0:width]
    # colour = position: red grows to the right, green downwards
    gradient = np.dstack([(xs + 0.5) / width, (ys + 0.5) / height,
                          np.full(xs.shape, 0.25)]).astype(np.float32)
    box = (50.0, 30.0, 60.0, 60.0)
    shown = []
    for yaw in (0.0, 0.9):
        pose = torch.tensor([[yaw, 0.0, 0.0, size / 2, size / 2, 0.3 * size / 64]])
        truth = Truth({"a_id": torch.zeros(1, model.num_id),
                       "a_exp": torch.zeros(1, model.num_exp), "pose": pose})
        face = photo.reconstruct(gradient, truth, model, config, box=box)
        colors, visible = photo.vertex_colors(gradient, face, model)
        assert colors.shape == (model.num_vertices, 3) and visible.dtype == torch.bool
        xy = face.photo_vertices[:, :2]
        expected = torch.stack([xy[:, 0] / width, xy[:, 1] / height], 1)
        torch.testing.assert_close(colors[visible, :2], expected[visible].float(),
                                   atol=0.6 / height, rtol=0)
        torch.testing.assert_close(colors[~visible], torch.full_like(colors[~visible], 0.5))
        shown.append(visible)
    # frontal: only what the nose and chin hide; turned by 52 degrees, a whole side goes
    assert shown[0].float().mean() > 0.85
    assert shown[1].float().mean() < shown[0].float().mean() - 0.1
    newly_hidden = shown[0] & ~shown[1]
    side = torch.sign(model.mean.cpu()[newly_hidden, 0])  # model frame x: the face's side
    assert abs(float(side.mean())) > 0.8


def test_reconstruct_names_the_argument_a_notebook_slip_got_wrong(astronaut, smoke):
    net, model, config = smoke
    box = (180, 40, 120, 150)
    slips = [
        (lambda: photo.reconstruct_faces(astronaut, net, model, config, boxes=box),
         TypeError, r"^boxes: expected a list of \(x, y, w, h\) boxes, got one box"),
        (lambda: photo.reconstruct(astronaut, net, model, config, box=[box]),
         TypeError, r"^box: expected \(x, y, w, h\)"),
        (lambda: photo.reconstruct(astronaut, model, net, config, box=box),
         TypeError, r"^net: expected an E2FARNet"),
        (lambda: photo.reconstruct(astronaut, net, None, config, box=box),
         TypeError, r"^model: expected a MorphableModel .*got NoneType"),
        (lambda: photo.reconstruct(astronaut, net, model, config, box=box, convention="hog"),
         TypeError, r"^convention: expected a BoxConvention"),
        (lambda: photo.reconstruct(astronaut, net, model, config, box=(5000, 5000, 100, 100)),
         ValueError, r"^boxes\[0\]: expected a box overlapping the image \(512 x 512 px\)"),
    ]
    for call, kind, message in slips:
        with pytest.raises(kind, match=message):
            call()
    # a numpy or torch box is a box (and boxes may come from a generator); four boxes are four
    for given in (np.array(box), torch.tensor(box), tuple(torch.tensor(box))):
        assert photo.reconstruct(astronaut, net, model, config, box=given).box == \
            tuple(float(v) for v in box)
    assert len(photo.reconstruct_faces(astronaut, net, model, config,
                                       boxes=(b for b in [box]))) == 1
    assert len(photo.reconstruct_faces(astronaut, net, model, config, boxes=[box] * 4)) == 4


def test_cli_reconstruct_bad_inputs(tmp_path, checkpoint, capsys):
    args = ["-o", str(tmp_path / "f.obj"), "--checkpoint", str(checkpoint)]
    with pytest.raises(SystemExit, match="missing.jpg"):
        main(["reconstruct", str(tmp_path / "missing.jpg"), *args])
    (tmp_path / "list.png").write_text("1, 2, 3")
    with pytest.raises(SystemExit, match="list.png: not an image file"):
        main(["reconstruct", str(tmp_path / "list.png"), *args])
    Image.fromarray(skimage.data.brick()).save(tmp_path / "brick.png")
    with pytest.raises(SystemExit, match=r"no face found in brick.png \(hog detector\); pass"):
        main(["reconstruct", str(tmp_path / "brick.png"), *args])
    with pytest.raises(SystemExit, match="expected a file name ending in .obj or .ply"):
        main(["reconstruct", str(tmp_path / "brick.png"), "-o", str(tmp_path / "f.stl")])
    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "a.png")
    with pytest.raises(SystemExit, match="--face: expected 0 .. 0"):
        main(["reconstruct", str(tmp_path / "a.png"), *args, "--face", "3"])
    with pytest.raises(SystemExit, match="--checkpoint"):
        main(["reconstruct", str(tmp_path / "a.png"), "-o", "x.obj", "--checkpoint",
              str(tmp_path / "none.pt")])
    with pytest.raises(SystemExit):
        main(["reconstruct", str(tmp_path / "a.png"), *args, "--refine", "-1"])
    assert "--refine: expected a whole number of passes from 0 to 10, got '-1'" in \
        capsys.readouterr().err
    for box, reason in ((("180", "40", "-5", "150"), r"w, h > 0 px"),
                        (("180", "40", "nan", "150"), r"w, h > 0 px"),
                        (("5000", "5000", "100", "100"), r"overlapping a.png \(512 x 512 px\)"),
                        (("180", "40", "1e9", "1e9"), r"at most twice the size of a.png")):
        with pytest.raises(SystemExit, match=f"^--box: expected .*{reason}"):
            main(["reconstruct", str(tmp_path / "a.png"), "-o", str(tmp_path / "no" / "f.obj"),
                  "--checkpoint", str(checkpoint), "--box", *box])
    assert not (tmp_path / "no").exists()  # the folder made for the output went again


# ---------------------------------------------------------------------------- real-face NME
def _annotated_render(tmp_path):
    """A rendered face saved as a photo, with its true landmarks in a dlib XML file."""
    from e2far_lite import MorphableModel

    model = MorphableModel.default()
    data = DataConfig(image_size=160, box_scale=(2.2, 2.2), box_shift=0.0, augment=0.0,
                      distance=(3000.0, 3000.0), yaw_max=20, pitch_max=10, roll_max=5)
    item = SyntheticFaces(model, 1, seed=11, config=data)[0]
    Image.fromarray((item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)) \
        .save(tmp_path / "render.png")
    parts = "".join(f"<part name='{i:02d}' x='{x - 0.5:.3f}' y='{y - 0.5:.3f}'/>"
                    for i, (x, y) in enumerate(item["landmarks"].tolist()))
    lo, hi = item["landmarks"].amin(0), item["landmarks"].amax(0)
    (tmp_path / "faces.xml").write_text(
        f"<dataset><images><image file='render.png'><box top='{float(lo[1]):.0f}' "
        f"left='{float(lo[0]):.0f}' width='{float(hi[0] - lo[0]):.0f}' "
        f"height='{float(hi[1] - lo[1]):.0f}'>{parts}</box></image></images></dataset>")
    return model, item


def test_real_landmark_nme_with_the_true_answer_is_near_zero(tmp_path):
    model, item = _annotated_render(tmp_path)
    config = get_config("smoke")
    lo, hi = item["landmarks"].amin(0), item["landmarks"].amax(0)
    box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    crop = photo.crop_box(box, config)
    pose = item["pose"].clone()
    pose[3:5] = (pose[3:5] - torch.tensor([crop.x0, crop.y0])) * 64 / crop.side
    pose[5] *= 64 / crop.side
    net = Truth({"a_id": item["a_id"][None], "a_exp": item["a_exp"][None], "pose": pose[None]})
    result = photo.real_landmark_nme(tmp_path / "faces.xml", net, model, config,
                                     use_box="landmarks", oracle=True)
    assert len(result.nme) == 1 and result.mean < 0.01
    parts = result.by_part()
    assert list(parts) == list(photo.LANDMARK_PARTS) and max(parts.values()) < 0.02
    assert result.oracle_mean < 0.01  # the model fits its own landmarks
    assert 0.01 < result.baseline_mean < 0.3
    table = photo.format_nme_table(result)
    assert "render.png" in table and "oracle" in table


def test_cli_landmarks_nme_prints_a_table(tmp_path, checkpoint, capsys):
    _annotated_render(tmp_path)
    main(["landmarks-nme", str(tmp_path / "faces.xml"), "--checkpoint", str(checkpoint),
          "--no-oracle"])
    out = capsys.readouterr().out
    assert "mean" in out and "render.png" in out and "%" in out
    assert "annotated boxes, then 1 re-crop around the predicted landmarks" in out
    main(["landmarks-nme", str(tmp_path / "faces.xml"), "--checkpoint", str(checkpoint),
          "--no-oracle", "--refine", "0"])
    assert "annotated boxes, one pass" in capsys.readouterr().out
    main(["landmarks-nme", str(tmp_path / "faces.xml"), "--checkpoint", str(checkpoint),
          "--no-oracle", "--box", "detected", "--detector", "hog"])
    out = capsys.readouterr().out
    assert "crops from the boxes of the hog detector, then 1 re-crop around" in out
    assert "1 faces" in out or "missed" in out  # a rendered mask may or may not be found
    with pytest.raises(SystemExit, match="does not exist"):
        main(["landmarks-nme", str(tmp_path / "none.xml"), "--checkpoint", str(checkpoint)])


@pytest.mark.skipif(not DEV_XML.is_file(), reason="the shared dev set is not here")
def test_real_landmark_nme_runs_on_the_dev_set(smoke):
    net, model, config = smoke
    result = photo.real_landmark_nme(DEV_XML, net, model, config)
    assert len(result.nme) == 18 and np.isfinite(result.nme).all()
    cascade = photo.real_landmark_nme(DEV_XML, net, model, config, use_box="detected",
                                      detector="cascade")
    assert cascade.found == 11 and np.isfinite(cascade.mean)  # the faces it finds, measured
    assert "missed" in photo.format_nme_table(cascade)


@pytest.mark.skipif(not DEV_XML.is_file(), reason="the shared dev set is not here")
def test_hog_finds_every_dev_face_and_its_box_convention_is_the_measured_one(smoke):
    pytest.importorskip("dlib")
    from e2far_lite.io.landmark_files import read_annotations

    faces = read_annotations(DEV_XML)
    boxes, landmarks, false = [], [], 0
    for image in dict.fromkeys(f.image for f in faces):
        found = photo.detect_faces(image, detector="hog")
        for face in (f for f in faces if f.image == image):
            box = photo.match_faces(found, face.landmarks)
            if box is not None:
                found.remove(box)
                boxes.append(box)
                landmarks.append(face.landmarks)
        false += len(found)
    assert len(boxes) == 18 and false == 0
    fitted = photo.fit_box_convention(boxes, landmarks)
    assert fitted.scale == pytest.approx(photo.HOG_BOX.scale, abs=0.005)
    assert fitted.shift_y == pytest.approx(photo.HOG_BOX.shift_y, abs=0.005)
    net, model, config = smoke
    result = photo.real_landmark_nme(DEV_XML, net, model, config, use_box="detected",
                                     detector="hog")
    assert result.found == 18 and all(c is not None for c in result.crops)


def test_nme_by_part_puts_the_error_where_it_is():
    from pathlib import Path

    from e2far_lite.io.landmark_files import AnnotatedFace

    rng = np.random.default_rng(1)
    truth = np.concatenate([[[0.0, 0.0], [40.0, 90.0]], rng.uniform(0, 40, (66, 2))])
    truth[5] = np.nan  # not annotated: left out
    moved = np.nan_to_num(truth).copy()
    moved[:17, 0] += 6.0  # the jaw line 6 px off; the face's box is 40 x 90 px
    faces = [AnnotatedFace(Path("a.jpg"), truth), AnnotatedFace(Path("b.jpg"), truth)]
    result = photo.LandmarkNME(faces, [0.1, float("nan")], [0.2, float("nan")],
                               [torch.as_tensor(moved), None], [None, None])
    parts = result.by_part()
    assert parts["jaw"] == pytest.approx(6.0 / 60.0)
    assert all(parts[name] == 0.0 for name in ("eyebrows", "nose", "eyes", "mouth"))
    assert "network by part: jaw 10.00%, eyebrows 0.00%" in photo.format_nme_table(result)


def test_box_convention_measurement_recovers_a_known_convention():
    rng = np.random.default_rng(0)
    truth = photo.BoxConvention(0.85, 0.0, 0.13)
    boxes, landmarks = [], []
    for _ in range(9):
        x, y = rng.uniform(0, 100, 2)
        s = rng.uniform(30, 90)
        cx, cy, side = truth.landmark_box((x, y, s, s))
        unit = np.array([[-0.5, -0.5], [0.5, 0.5], [0.0, 0.2]])
        landmarks.append(unit * side + [cx, cy])
        boxes.append((x, y, s, s))
    assert photo.fit_box_convention(boxes, landmarks) == truth
    assert photo.match_faces([(0, 0, 5, 5), boxes[0]], landmarks[0]) == boxes[0]
    assert photo.match_faces([(500, 500, 50, 50)], landmarks[0]) is None
    assert dataclasses.asdict(photo.LANDMARK_BOX) == {"scale": 1.0, "shift_x": 0.0,
                                                      "shift_y": 0.0}
