"""Headless tests of layer_widgets.py: build each widget, call its handlers, check the figures."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image
from test_attribution import NAMES, blend_model, tiny_net

from e2far_lite.nets.backbone import TAP_NAMES
from e2far_lite.ui.layer_widgets import (
    FeatureMapViewer,
    LayerAttributionView,
    TapMixer,
    load_face_image,
)


@pytest.fixture(scope="module")
def model():
    return blend_model()


@pytest.fixture(scope="module")
def net(model):
    return tiny_net(model)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(5))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tap_mixer_sliders_move_mesh_and_bars(net, model, images):
    mixer = TapMixer(net, model, images, top=3)
    mesh, bars = mixer.figure.data[0], mixer.bars.data
    assert list(mixer.sliders) == ["pool4", "pool5"]
    assert len(bars[0].x) == 3 and set(bars[0].x) <= set(NAMES)
    np.testing.assert_allclose(bars[1].y, bars[0].y, atol=1e-6)  # all taps x1 = reference
    assert np.abs(mesh.intensity).max() < 1e-5
    z_before, y_before = np.array(mesh.z), np.array(bars[1].y)

    mixer.sliders["pool4"].value = 0.0  # the observer asks for a redraw
    mixer.wait()
    assert np.abs(np.array(mesh.z) - z_before).max() > 0
    assert np.abs(np.array(bars[1].y) - y_before).max() > 0
    assert np.max(mesh.intensity) > 0
    expected = mixer.readout_weights(mixer.predict_exp({"pool4": 0.0}))[mixer.shown]
    np.testing.assert_allclose(bars[1].y, expected.numpy(), rtol=1e-5, atol=1e-7)

    mixer.reset()
    mixer.wait()
    np.testing.assert_allclose(mesh.z, z_before, atol=1e-4)


def test_tap_mixer_draws_only_the_latest_of_a_burst(net, model, images):
    """Twenty slider events while a redraw runs cost at most two more redraws, and the figures
    end on the last value (a slow redraw must not replay every key press)."""
    mixer = TapMixer(net, model, images, top=3)
    draw = mixer.redraw.draw
    mixer.redraw.draw = lambda: (time.sleep(0.2), draw())
    slider = mixer.sliders["pool5"]
    for k in range(20):
        slider.value = round(1.0 - 0.05 * (k + 1), 2)
    mixer.wait()
    assert mixer.redraw.draws <= 2
    expected = mixer.readout_weights(mixer.predict_exp({"pool5": 0.0}))[mixer.shown]
    np.testing.assert_allclose(mixer.bars.data[1].y, expected.numpy(), rtol=1e-5, atol=1e-7)


def test_widget_layouts_flow(net, model, images):
    """No fixed pixel widths on the controls; labels as wide as the longest, with tooltips;
    scroll-zoom off on every plot."""
    mixer = TapMixer(net, model, images)
    view = LayerAttributionView(net, model, images)
    viewer = FeatureMapViewer(net, images)
    for slider in mixer.sliders.values():
        assert slider.layout.width == "100%" and slider.tooltip
        assert float(slider.style.description_width.removesuffix("ch")) >= len("pool5 ×")
    assert viewer.channel.layout.width == "100%" and viewer.channel.tooltip
    assert mixer.widget.layout.flex_flow == "row wrap"
    for figure in (mixer.figure, mixer.bars, view.figure, viewer.figure):
        assert figure._config["scrollZoom"] is False
        assert figure.layout.width is None  # follows the notebook's width


def test_tap_mixer_faces_and_uploads(net, model, images):
    mixer = TapMixer(net, model, images, names=["a", "b", "c"])
    picture, x_before = mixer.picture.value, np.array(mixer.figure.data[0].x)
    mixer.face.value = 2
    assert mixer.picture.value != picture
    assert np.abs(np.array(mixer.figure.data[0].x) - x_before).max() > 0

    photo = (np.random.default_rng(0).random((90, 120, 4)) * 255).astype(np.uint8)
    mixer._on_upload({"new": ({"name": "me.png", "content": memoryview(png_bytes(photo))},)})
    assert mixer.face.options[-1] == ("me.png", 3) and mixer.face.value == 3
    assert len(mixer.images) == 4 and mixer.images[-1].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="image: expected shape"):
        mixer.add_image(torch.rand(3, 32, 32))


def test_load_face_image():
    grey = (np.arange(40 * 60) % 255).astype(np.uint8).reshape(40, 60)
    image = load_face_image(png_bytes(grey), 32)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    with pytest.raises(ValueError, match="data: not an image file"):
        load_face_image(b"not an image", 32)
    with pytest.raises(TypeError, match="data: expected the bytes"):
        load_face_image("face.png", 32)


def test_layer_attribution_view_updates(net, model, images):
    view = LayerAttributionView(net, model, images, blendshape="eyeBlink_R")
    expression, identity = (np.array(t.y) for t in view.target_bars)
    assert list(view.target_bars[0].x) == list(TAP_NAMES)
    assert expression.sum() == pytest.approx(1.0) and identity.sum() == pytest.approx(1.0)
    shape_before = np.array(view.shape_bars.y)

    view.blendshape.value = "jawOpen"
    assert view.figure.layout.annotations[1].text == "jawOpen weight"
    assert np.abs(np.array(view.shape_bars.y) - shape_before).max() > 0

    view.faces.value = 1
    assert np.abs(np.array(view.target_bars[0].y) - expression).max() > 0
    for axis in (view.figure.layout.yaxis, view.figure.layout.yaxis2):
        assert tuple(axis.range) == (0.0, 1.0)  # fixed: bars compare between faces

    probes = {layer: {"expression": 0.1 * i, "identity": 0.2 * i}
              for i, layer in enumerate(TAP_NAMES)}
    view.set_probes(probes)
    np.testing.assert_allclose(view.probe_lines[1].y, [0.0, 0.2, 0.4, 0.6, 0.8])
    assert tuple(view.figure.layout.yaxis3.range) == (-0.05, 1.0)
    view.set_probes({**probes, "pool1": {"expression": -1.0, "identity": 0.0}})
    assert view.figure.layout.yaxis3.range[0] == pytest.approx(-1.1)


def test_feature_map_viewer_updates(net, images):
    viewer = FeatureMapViewer(net, images)
    heat = viewer.figure.data[1]
    assert np.array(heat.z).shape == (64, 64)
    assert viewer.channel.max == net.backbone.channels["pool3"] - 1
    z0 = np.array(heat.z)

    viewer.channel.value = 3
    viewer.wait()
    assert np.abs(np.array(heat.z) - z0).max() > 0
    assert f"channel {viewer.channel_index} " in viewer.figure.layout.title.text

    old = viewer.channel
    viewer.layer.value = "pool5"
    assert viewer.channel.max == net.backbone.channels["pool5"] - 1
    assert viewer.figure.layout.title.text.startswith("pool5")
    # a new range is a new slider (the browser's keeps its first range), in the same place
    assert viewer.channel is not old and viewer.channel.value == 3
    assert viewer.controls.children[-1] is viewer.channel and old not in viewer.controls.children
    viewer.channel.value = viewer.channel.max
    viewer.wait()
    assert viewer.channel_index == viewer.order[-1]
    assert f"channel {viewer.channel_index} " in viewer.figure.layout.title.text

    image0, z1 = np.array(viewer.figure.data[0].z), np.array(heat.z)
    viewer.face.value = 1
    assert np.abs(np.array(viewer.figure.data[0].z, float) - image0).max() > 0
    assert np.abs(np.array(heat.z) - z1).max() > 0
