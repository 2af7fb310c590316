"""Headless tests of layer_widgets.py: build each widget, call its handlers, check the figures."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from helpers_models import NAMES
from PIL import Image

from e2far_lite.nets.backbone import TAP_NAMES
from e2far_lite.ui.layer_widgets import (
    FeatureMapViewer,
    LayerAttributionView,
    TapMixer,
)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(5))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tap_mixer_sliders_move_mesh_and_bars(blend_net, blend_model, images):
    mixer = TapMixer(blend_net, blend_model, images, top=3)
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


def test_tap_mixer_draws_only_the_latest_of_a_burst(blend_net, blend_model, images):
    """Twenty slider events while a redraw runs cost at most two more redraws, and the figures
    end on the last value (a slow redraw must not replay every key press)."""
    mixer = TapMixer(blend_net, blend_model, images, top=3)
    draw = mixer.redraw.draw
    mixer.redraw.draw = lambda: (time.sleep(0.2), draw())
    slider = mixer.sliders["pool5"]
    for k in range(20):
        slider.value = round(1.0 - 0.05 * (k + 1), 2)
    mixer.wait()
    assert mixer.redraw.draws <= 2
    expected = mixer.readout_weights(mixer.predict_exp({"pool5": 0.0}))[mixer.shown]
    np.testing.assert_allclose(mixer.bars.data[1].y, expected.numpy(), rtol=1e-5, atol=1e-7)


def test_widget_layouts_flow(blend_net, blend_model, images):
    """No fixed pixel widths on the controls; labels as wide as the longest, with tooltips;
    scroll-zoom off on every plot."""
    mixer = TapMixer(blend_net, blend_model, images)
    view = LayerAttributionView(blend_net, blend_model, images)
    viewer = FeatureMapViewer(blend_net, images)
    for slider in mixer.sliders.values():
        assert slider.layout.width == "100%" and slider.tooltip
        assert float(slider.style.description_width.removesuffix("ch")) >= len("pool5 ×")
    assert viewer.channel.layout.width == "100%" and viewer.channel.tooltip
    assert mixer.widget.layout.flex_flow == "row wrap"
    for figure in (mixer.figure, mixer.bars, view.figure, viewer.figure):
        assert figure._config["scrollZoom"] is False
        assert figure.layout.width is None  # follows the notebook's width


def test_tap_mixer_faces_and_uploads(blend_net, blend_model, images):
    mixer = TapMixer(blend_net, blend_model, images, names=["a", "b", "c"])
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
    from e2far_lite.photo import load_face_image

    grey = (np.arange(40 * 60) % 255).astype(np.uint8).reshape(40, 60)
    image = load_face_image(png_bytes(grey), 32)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    with pytest.raises(ValueError, match="data: not an image file"):
        load_face_image(b"not an image", 32)
    with pytest.raises(TypeError, match="data: expected the bytes"):
        load_face_image("face.png", 32)


def test_layer_attribution_view_updates(blend_net, blend_model, images):
    view = LayerAttributionView(blend_net, blend_model, images, blendshape="eyeBlink_R")
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


def test_feature_map_viewer_updates(blend_net, images):
    viewer = FeatureMapViewer(blend_net, images)
    heat = viewer.figure.data[1]
    assert np.array(heat.z).shape == (64, 64)
    assert viewer.channel.max == blend_net.backbone.channels["pool3"] - 1
    z0 = np.array(heat.z)

    viewer.channel.value = 3
    viewer.wait()
    assert np.abs(np.array(heat.z) - z0).max() > 0
    assert f"channel {viewer.channel_index} " in viewer.figure.layout.title.text

    old = viewer.channel
    viewer.layer.value = "pool5"
    assert viewer.channel.max == blend_net.backbone.channels["pool5"] - 1
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


# ---------------------------------------------------------------- the features added with the
# fixed colour scale, the "at 0" and "measure" menus, the rank box and RepaintOnDraw


def _reference_predictions(blend_net, images):
    """All faces at once, every tap x1: the features, projected taps, a_id and a_exp."""
    with torch.no_grad():
        features = blend_net.backbone(images)
        projected = blend_net.fusion.project_taps(features)
        heads = blend_net.heads(features)
    return projected, heads["a_id"], heads["a_exp"]


def _fused(blend_net, projected, tap, replacement):
    """a_exp with ``tap``'s projected map replaced (the fusion CNN above the projections)."""
    fusion = blend_net.fusion
    maps = [replacement if t == tap else projected[t] for t in fusion.taps]
    with torch.no_grad():
        return fusion.head(fusion.fuse(torch.cat(maps, dim=1)))


def _vertex_rms(blend_model, a_exp, reference):
    """(B,) RMS over vertices of the expression offset between two predictions, mm."""
    with torch.no_grad():
        delta = blend_model.expression_offset(a_exp) - blend_model.expression_offset(reference)
    return delta.norm(dim=-1).pow(2).mean(-1).sqrt()


def test_tap_mixer_colour_scale_is_fixed_in_mm(blend_net, blend_model, images):
    """The colour scale ends at the largest movement one tap at 0 or x2 (either meaning of 0)
    causes on the given faces, rounded up to 1, 2, 5 x 10^k mm, and no setting rescales it while
    the colours themselves follow the sliders."""
    mixer = TapMixer(blend_net, blend_model, images, top=3)
    mesh = mixer.figure.data[0]
    assert (mesh.cmin, mesh.cmax) == (0.0, mixer.cmax) and not mesh.cauto
    assert mesh.colorbar.title.text == "moved (mm)"

    # the largest single-tap movement, computed here from the whole batch at once
    projected, _, reference = _reference_predictions(blend_net, images)
    with torch.no_grad():
        ref_offset = blend_model.expression_offset(reference)
    largest = 0.0
    for tap in blend_net.fusion.taps:
        own = projected[tap]
        for base in (torch.zeros_like(own), own.mean(0, keepdim=True).expand_as(own)):
            for scale in (0.0, 2.0):
                a_exp = _fused(blend_net, projected, tap, base + scale * (own - base))
                with torch.no_grad():
                    moved = (blend_model.expression_offset(a_exp) - ref_offset).norm(dim=-1)
                largest = max(largest, float(moved.max()))
    assert 0 < largest <= mixer.cmax * (1 + 1e-6) and mixer.cmax < 2.5 * largest
    mantissa = mixer.cmax / 10 ** np.floor(np.log10(mixer.cmax))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    assert f"0 to {mixer.cmax:g} mm" in mixer.moved.value

    scale = (mesh.cmin, mesh.cmax)
    seen = [np.array(mesh.intensity)]
    for change in (lambda: setattr(mixer.sliders["pool5"], "value", 0.0),
                   lambda: setattr(mixer.silence, "value", "mean"),
                   lambda: setattr(mixer.sliders["pool4"], "value", 2.0),
                   lambda: setattr(mixer.face, "value", 1)):
        change()
        mixer.wait()
        intensity = np.array(mesh.intensity)
        assert np.abs(intensity - seen[-1]).max() > 1e-6  # the colours moved ...
        assert (mesh.cmin, mesh.cmax) == scale and not mesh.cauto  # ... the scale did not
        seen.append(intensity)
    assert np.max(seen[1]) <= mixer.cmax * (1 + 1e-6)  # one tap at 0: within the scale


def test_tap_mixer_at_zero_menu(blend_net, blend_model, images):
    """"at 0": zeros is the tap silenced (the network's own tap_scale 0), "mean map" puts the
    tap's mean map over the faces in its place; both agree with silence_taps's modes."""
    from e2far_lite.analysis import silence_taps

    mixer = TapMixer(blend_net, blend_model, images, top=3)
    assert mixer.silence.value == "zero"
    tap = "pool5"
    projected, a_id, reference = _reference_predictions(blend_net, images)
    with torch.no_grad():
        silenced = blend_net.heads(blend_net.backbone(images), {tap: 0.0})["a_exp"]
    mean_map = projected[tap].mean(0, keepdim=True).expand_as(projected[tap])
    mean_ablated = _fused(blend_net, projected, tap, mean_map)

    # at x1 the menu changes nothing
    at_one = mixer.predict_exp()
    mixer.silence.value = "mean"
    mixer.wait()
    torch.testing.assert_close(mixer.predict_exp(), at_one)

    mixer.sliders[tap].value = 0.0
    mixer.wait()
    bars_mean = np.array(mixer.bars.data[1].y)
    mixer.silence.value = "zero"
    mixer.wait()
    bars_zero = np.array(mixer.bars.data[1].y)
    assert np.abs(bars_mean - bars_zero).max() > 1e-4  # the two choices differ
    weights = {mode: mixer.readout_weights(mixer.predict_exp(silence=mode))[mixer.shown].numpy()
               for mode in ("zero", "mean")}
    np.testing.assert_allclose(bars_zero, weights["zero"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bars_mean, weights["mean"], rtol=1e-5, atol=1e-7)

    moved = {"zero": [], "mean": []}
    for i in range(images.shape[0]):
        mixer.face.value = i
        for mode, expected in (("zero", silenced), ("mean", mean_ablated)):
            a_exp = mixer.predict_exp(silence=mode)
            torch.testing.assert_close(a_exp, expected[i:i + 1], rtol=1e-4, atol=1e-5)
            moved[mode].append(float(_vertex_rms(blend_model, a_exp, reference[i:i + 1])[0]))
    # against "true" faces equal to the unmixed predictions, silence_taps's cost of a tap is
    # exactly how far the mixer's prediction moves, averaged over the faces
    truth = {"image": images, "a_id": a_id, "a_exp": reference}
    for mode in ("zero", "mean"):
        cost = silence_taps(blend_net, truth, blend_model, mode=mode)[tap]["expression"]
        assert cost == pytest.approx(np.mean(moved[mode]), rel=1e-3, abs=1e-4)
    assert np.mean(moved["zero"]) != pytest.approx(np.mean(moved["mean"]), rel=1e-2)


def test_layer_attribution_measure_menu(blend_net, blend_model, images):
    """Each measure gives its own bars, the face and the blend shape move them, and the text
    says what the measure measures and when its bars hardly depend on the face."""
    from e2far_lite.analysis import silence_taps
    from e2far_lite.ui.layer_widgets import MEASURES

    view = LayerAttributionView(blend_net, blend_model, images, blendshape="jawOpen")
    assert [key for _, key in view.measure.options] == ["sum", "mean", "silence"]
    units = np.array([view.units[t] for t in TAP_NAMES], float)
    bars = {}
    for measure in ("sum", "mean", "silence"):
        view.measure.value = measure
        bars[measure] = [np.array(t.y) for t in (*view.target_bars, view.shape_bars)]
        assert MEASURES[measure][0] in view.reading.value
    for a, b in (("sum", "mean"), ("sum", "silence"), ("mean", "silence")):
        assert np.abs(bars[a][0] - bars[b][0]).max() > 0.01, (a, b)
    # per unit: the summed shares divided by the layer sizes, renormalised
    for summed, per_unit in zip(bars["sum"], bars["mean"], strict=True):
        expected = summed / units
        np.testing.assert_allclose(per_unit, expected / expected.sum(), rtol=1e-6, atol=1e-9)

    # silencing: only the fusion taps count, the identity never reads them ...
    expression, identity, shape = bars["silence"]
    assert np.all(expression[:3] == 0) and expression[3:].sum() == pytest.approx(1.0)
    assert np.all(identity == 0)
    # ... and the movement per tap is the mean ablation's, live
    _, a_id, reference = _reference_predictions(blend_net, images)
    truth = {"image": images, "a_id": a_id, "a_exp": reference}
    ablation = silence_taps(blend_net, truth, blend_model, mode="mean")
    rows = view.per_face("expression", "silence")
    for tap in blend_net.fusion.taps:
        assert float(rows[:, TAP_NAMES.index(tap)].mean()) == pytest.approx(
            ablation[tap]["expression"], rel=1e-3, abs=2e-3)

    # the face and the blend shape move the bars, under every measure
    for measure in ("sum", "mean", "silence"):
        view.faces.value = -1
        view.measure.value = measure
        overall = [np.array(t.y) for t in (view.target_bars[0], view.shape_bars)]
        view.faces.value = 2
        one_face = [np.array(t.y) for t in (view.target_bars[0], view.shape_bars)]
        assert np.abs(one_face[0] - overall[0]).max() > 1e-4, measure
        assert np.abs(one_face[1] - overall[1]).max() > 1e-4, measure
        view.blendshape.value = "eyeBlink_R"
        other_shape = np.array(view.shape_bars.y)
        assert np.abs(other_shape - one_face[1]).max() > 1e-4, measure
        view.blendshape.value = "jawOpen"

    # the summed measure barely depends on the face here; the text says so, and only then
    view.faces.value = -1
    view.measure.value = "sum"
    assert max(view.spread("expression"), view.spread("jawOpen")) < 0.05
    assert "hardly depend on the face" in view.reading.value
    view.measure.value = "silence"
    assert view.spread("expression") > 0.05
    assert "hardly depend" not in view.reading.value
    assert "One face moves these bars by up to" in view.reading.value


def test_feature_map_viewer_rank_box_follows_slider(blend_net, images):
    """The "go to rank" box and the rank slider stay equal both ways, also across a new slider
    for a layer of another size; typing a rank redraws that channel."""
    viewer = FeatureMapViewer(blend_net, images)
    box = viewer.rank_box
    assert viewer.controls.children[-2:] == (box, viewer.channel)
    assert (box.value, box.max) == (viewer.channel.value, viewer.channel.max)

    viewer.channel.value = 5
    assert box.value == 5
    box.value = 2
    assert viewer.channel.value == 2
    viewer.wait()
    np.testing.assert_allclose(viewer.figure.data[1].z, viewer.feature_map())
    assert viewer.channel_index == viewer.order[2]
    assert f"channel {viewer.order[2]} " in viewer.figure.layout.title.text

    box.value = 7  # the last of pool3's 8 channels
    viewer.layer.value = "pool5"  # 16 channels: a new slider, the rank kept
    assert (box.value, box.max) == (7, 15) and viewer.channel.value == 7
    box.value = 12
    assert viewer.channel.value == 12
    viewer.channel.value = 14
    assert box.value == 14
    viewer.wait()
    draw = viewer.redraw.draw
    viewer.redraw.draw = lambda: (time.sleep(0.3), draw())  # a slow redraw ...
    box.value = 99  # bounded: the box stops at the last rank, and so does the slider
    assert box.value == 15 and viewer.channel.value == 15

    viewer.layer.value = "pool1"  # ... still running: 4 channels, both clamp to the last rank
    assert (box.value, box.max) == (3, 3) and viewer.channel.value == 3
    viewer.wait()  # the redraw drew rank 15 of pool5 or rank 3 of pool1, never a mix
    viewer.redraw.draw = draw
    assert viewer.figure.layout.title.text.startswith(f"pool1 channel {viewer.order[3]} of 4")
    viewer.channel.value = 1
    assert box.value == 1
    box.value = 0
    assert viewer.channel.value == 0
    viewer.wait()
    np.testing.assert_allclose(viewer.figure.data[1].z, viewer.feature_map())


def test_repaint_on_draw_resends_what_the_page_lacks():
    """Told the page drew a figure with fewer traces than it has, RepaintOnDraw sends the
    missing traces and the layout again; a whole figure, or a message not about a figure of its
    own, sends nothing."""
    import plotly.graph_objects as go

    from e2far_lite.ui.layer_widgets import RepaintOnDraw

    figures = [go.FigureWidget(data=[go.Bar(y=[1, 2]), go.Scatter(y=[3, 4])],
                               layout=dict(title=dict(text="two"))),
               go.FigureWidget(data=[go.Heatmap(z=[[1, 2], [3, 4]])])]
    sent = []
    for index, figure in enumerate(figures):
        figure._send_addTraces_msg = (
            lambda traces, i=index: sent.append((i, "traces", traces)))
        figure._send_relayout_msg = (
            lambda layout, source_view_id=None, i=index: sent.append((i, "layout", layout)))
    repaint = RepaintOnDraw(figures)

    def page_says(content):
        repaint._handle_custom_msg(content, [])  # as a message from the page arrives

    for content in ({"event": "drawn", "index": 0, "traces": 2},  # drawn whole
                    {"event": "drawn", "index": 1, "traces": 1},
                    {"event": "drawn", "index": 2, "traces": 0},  # no such figure
                    {"event": "drawn", "index": -1, "traces": 0},
                    {"event": "clicked", "index": 0, "traces": 0},
                    "drawn"):
        page_says(content)
    assert sent == [] and repaint.repaints == 0

    page_says({"event": "drawn", "index": 0, "traces": 0})  # empty axes: everything again
    assert [(i, kind) for i, kind, _ in sent] == [(0, "traces"), (0, "layout")]
    traces, layout = sent[0][2], sent[1][2]
    assert [t["type"] for t in traces] == ["bar", "scatter"]
    assert list(traces[0]["y"]) == [1, 2] and list(traces[1]["y"]) == [3, 4]
    assert layout["title"]["text"] == "two"
    assert repaint.repaints == 1

    sent.clear()
    page_says({"event": "drawn", "index": 0, "traces": 1})  # one of two: the second again
    assert [t["type"] for t in sent[0][2]] == ["scatter"] and sent[0][0] == 0
    sent.clear()
    page_says({"event": "drawn", "index": 1, "traces": 0})
    assert [(i, kind) for i, kind, _ in sent] == [(1, "traces"), (1, "layout")]
    assert sent[0][2][0]["type"] == "heatmap" and repaint.repaints == 3
    # copies: a later edit of the figure does not change what was sent
    figures[1].data[0].z = [[0, 0], [0, 0]]
    assert sent[0][2][0]["z"] == [[1, 2], [3, 4]]


def test_repaint_on_draw_sends_and_the_figure_still_edits(blend_net, blend_model, images):
    """Each widget's RepaintOnDraw covers its figures and sits in its box; a real (unmocked)
    repaint works headless and the figure keeps taking edits afterwards."""
    viewer = FeatureMapViewer(blend_net, images)
    assert viewer.repaint.figures == [viewer.figure]
    assert viewer.repaint in viewer.widget.children[-1].children
    viewer.repaint._on_msg(viewer.repaint, {"event": "drawn", "index": 0, "traces": 0}, [])
    assert viewer.repaint.repaints == 1
    viewer.channel.value = 1
    viewer.wait()
    np.testing.assert_allclose(viewer.figure.data[1].z, viewer.feature_map())
