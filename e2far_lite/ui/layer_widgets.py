"""Widgets for chapter 07: mix the fusion taps, see attributions per layer, look at feature maps.

House style of :mod:`e2far_lite.ui.widgets`: each widget is a class whose controls call
:meth:`update`, which changes plotly ``FigureWidget`` data in place; sliders go through a
:class:`~e2far_lite.ui.Redraw`, so a burst of slider events draws only the latest value,
and the layout flows (:func:`~e2far_lite.ui.flow_row`). The backbone runs once per chosen
image (its taps are cached), so moving a slider only reruns the small part above it. Tests call
the handlers directly, headless (and ``wait()`` for a slider's redraw).

- :class:`TapMixer`: one slider per fusion tap scales its contribution (0 .. 2); the predicted
  mesh (coloured by how far each vertex moved) and the blend-shape reading of the predicted
  expression follow live. Pictures can be uploaded.
- :class:`LayerAttributionView`: attribution shares per layer, expression vs identity and for
  one chosen blend shape, plus the linear-probe R² curves over depth.
- :class:`FeatureMapViewer`: one channel of one layer, upsampled over the input image.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from torch import Tensor

from ..analysis.attribution import METHODS, per_sample_attribution
from ..analysis.feature_maps import top_channels
from ..analysis.inputs import _check_fusion, _check_images, _check_model, _check_net, evaluating
from ..checks import check_floating, check_positive_int, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from ..photo.images import load_image
from .plots import mesh_figure, to_numpy_image
from .widgets import FitPlots, Redraw, control_layout, embed, flow_row, label_style

#: The two attribution targets drawn side by side, and their colours.
TARGETS_SHOWN = ("expression", "identity")
LAYER_COLOURS = {"expression": "#d62728", "identity": "#1f77b4"}

#: Fixed y range of the attribution bars: a share of the total, so faces and shapes compare.
SHARE_RANGE = (0.0, 1.0)


def _plot_box(figure: go.FigureWidget, min_width: str) -> W.Box:
    """A plot that takes its row's width, down to ``min_width`` (then the output scrolls)."""
    return W.VBox([embed(figure)], layout=W.Layout(width="100%", min_width=min_width))


def load_face_image(data: bytes, size: int) -> Tensor:
    """Decode an image file (PNG, JPEG, ...) into a network input: (3, size, size) in [0, 1].

    Decoded by :func:`~e2far_lite.photo.load_image` (turned upright by its EXIF orientation,
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


def _png(image: Tensor) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_numpy_image(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _labels(images: Tensor, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"face {i}" for i in range(images.shape[0])]
    if len(names) != images.shape[0]:
        raise ValueError(f"names: expected {images.shape[0]} labels like images, got "
                         f"{len(names)}")
    return [str(n) for n in names]


class TapMixer:
    """Scale each fusion tap's say in the expression and watch the prediction change.

    The mesh shows the predicted face (identity + expression); its colour is how far each
    vertex moved, in mm, from the prediction with every tap at x1. The bars read the
    predicted expression as blend-shape weights (grey: all taps x1; red: as mixed), for the
    ``top`` shapes strongest in the unmixed prediction of the chosen face.

    Args:
        net: a network with a fusion CNN.
        model: its morphable model.
        images: (B, 3, S, S) RGB in [0, 1], the faces to choose from.
        names: optional B labels for the face menu.
        top: how many blend shapes (or expression coefficients) to show.
    """

    def __init__(self, net: E2FARNet, model: MorphableModel, images: Tensor,
                 names: Sequence[str] | None = None, top: int = 12) -> None:
        self.net = _check_net(net)
        self.fusion = _check_fusion(net)
        self.model = _check_model(model, net).cpu()
        self.device = next(net.parameters()).device
        images = _check_images(images, net)
        self.images = list(images.detach().cpu())
        labels = _labels(images, names)
        self.top = top
        if self.model.num_blendshapes:
            with torch.no_grad():  # exp_to_blendshapes is linear: keep its (E, N) matrix
                self.readout = self.model.exp_to_blendshapes(torch.eye(self.model.num_exp))
            self.readout_names = list(self.model.blendshape_names)
        else:
            self.readout = torch.eye(self.model.num_exp)
            self.readout_names = [f"exp {j}" for j in range(self.model.num_exp)]
        style = label_style([f"{tap} ×" for tap in self.fusion.taps] + ["face"])
        self.face = W.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                               description="face", tooltip="the face the network reads",
                               style=style, layout=control_layout())
        self.sliders = {tap: W.FloatSlider(1.0, min=0.0, max=2.0, step=0.05,
                                           description=f"{tap} ×", style=style,
                                           tooltip=f"scale of the {tap} tap in the fusion CNN "
                                                   "(0 = silenced, 1 = as trained)",
                                           layout=control_layout())
                        for tap in self.fusion.taps}
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload face",
                                   tooltip="a tight crop of one face (PNG, JPEG, ...)")
        self.picture = W.Image(format="png", width=160, height=160)
        self._select_face(0)
        vertices, movement = self._mesh()
        self.figure = mesh_figure(vertices, self.model.triangles, intensity=movement,
                                  colorscale="Reds", cmin=0.0, cmax=self._cmax(movement),
                                  colorbar=dict(title=dict(text="moved (mm)")),
                                  widget=True, height=420)
        self.bars = go.FigureWidget(
            data=[go.Bar(name="all taps ×1", marker_color="#bbbbbb"),
                  go.Bar(name="mixed", marker_color="#d62728")],
            layout=go.Layout(height=320, barmode="group", margin=dict(l=50, r=10, t=60, b=90),
                             title=dict(text="predicted expression as blend-shape weights",
                                        y=0.97, yanchor="top"),
                             yaxis=dict(title="weight"),
                             legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom")))
        self._refresh_face()
        self.update()
        self.redraw = Redraw(self.update)
        self.face.observe(self.select, names="value")
        for slider in self.sliders.values():
            slider.observe(self.redraw.request, names="value")
        self.upload.observe(self._on_upload, names="value")
        reset = W.Button(description="all taps ×1", tooltip="every tap back to ×1")
        reset.on_click(self.reset)
        self.widget = flow_row([self.face, self.upload, self.picture, W.HTML("<b>fusion taps</b>"),
                                *self.sliders.values(), reset],
                               [embed(self.figure), embed(self.bars)])

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the figures show the sliders' current values (seconds)."""
        self.redraw.wait(timeout)

    # ------------------------------------------------------------------ computation
    def _select_face(self, index: int) -> None:
        """Run the backbone once for face ``index``; cache what the sliders do not change."""
        image = self.images[index][None].to(self.device)
        with evaluating(self.net), torch.no_grad():
            features = self.net.backbone(image)
            self._a_id = self.net.id_head(features["pool5"]).cpu()
            self._projected = self.fusion.project_taps(features)
        self._reference = self.predict_exp({})
        self._neutral = self.model.neutral(self._a_id)[0]
        self._ref_offset = self.model.expression_offset(self._reference)[0]
        weights = self.readout_weights(self._reference)
        self.shown = [int(i) for i in weights.abs().argsort(descending=True)[:self.top]]

    def predict_exp(self, tap_scale: Mapping[str, float] | None = None) -> Tensor:
        """(1, E) expression of the chosen face with the taps scaled (default: the sliders)."""
        if tap_scale is None:
            tap_scale = {tap: s.value for tap, s in self.sliders.items()}
        maps = [self._projected[tap] * float(tap_scale.get(tap, 1.0)) for tap in self.fusion.taps]
        with evaluating(self.net), torch.no_grad():
            return self.fusion.head(self.fusion.fuse(torch.cat(maps, dim=1))).cpu()

    def readout_weights(self, a_exp: Tensor) -> Tensor:
        """(N,) blend-shape weights of a (1, E) expression (or its coefficients, no shapes)."""
        return (a_exp @ self.readout)[0]

    def _mesh(self) -> tuple[np.ndarray, np.ndarray]:
        a_exp = self.predict_exp()
        with torch.no_grad():
            offset = self.model.expression_offset(a_exp)[0]
        self._a_exp = a_exp
        vertices = (self._neutral + offset).numpy()
        movement = (offset - self._ref_offset).norm(dim=-1).numpy()
        return vertices, movement

    @staticmethod
    def _cmax(movement: np.ndarray) -> float:
        return max(1.0, float(movement.max()))

    # --------------------------------------------------------------------- handlers
    def _refresh_face(self) -> None:
        self.picture.value = _png(self.images[self.face.value])
        names = [self.readout_names[i] for i in self.shown]
        reference = self.readout_weights(self._reference)[self.shown].numpy()
        with self.bars.batch_update():
            self.bars.data[0].x, self.bars.data[0].y = names, reference
            self.bars.data[1].x = names

    def update(self, _change: object = None) -> None:
        """Recompute the expression for the sliders; move the mesh and the bars in place."""
        vertices, movement = self._mesh()
        with self.figure.batch_update():
            mesh = self.figure.data[0]
            mesh.x, mesh.y, mesh.z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
            mesh.intensity = movement
            mesh.cmax = self._cmax(movement)
        self.bars.data[1].y = self.readout_weights(self._a_exp)[self.shown].numpy()

    def select(self, _change: object = None) -> None:
        """Another face chosen: rerun the backbone, pick its strongest shapes, redraw."""
        with self.redraw.lock:  # not while a slider's redraw reads the cached taps
            self._select_face(self.face.value)
            self._refresh_face()
            self.update()

    def add_image(self, image: Tensor, name: str = "uploaded") -> None:
        """Append a (3, S, S) image in [0, 1] to the face menu and show it."""
        size = self.net.config.image_size
        check_shape(check_tensor(image, "image"), "image", (3, size, size))
        self.images.append(check_floating(image, "image").detach().cpu())
        self.face.options = [*self.face.options, (name, len(self.images) - 1)]
        self.face.value = len(self.images) - 1  # observed: runs select()

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[-1]
        self.add_image(load_face_image(upload["content"], self.net.config.image_size),
                       upload.get("name", "uploaded"))

    def reset(self, _button: object = None) -> None:
        for slider in self.sliders.values():
            slider.value = 1.0


class LayerAttributionView:
    """Which layers does the prediction rest on? Attribution shares and probe curves.

    One figure, three panels: the share of each layer pool1 .. pool5 in the size of the
    predicted expression vs the predicted identity
    (:func:`~e2far_lite.analysis.layer_attribution`); the same for one blend shape's
    weight, chosen from the menu; the linear-probe R² over depth
    (:func:`~e2far_lite.analysis.linear_probes`), once given.

    Args:
        net: the network.
        model: its morphable model (with named blend shapes).
        images: (B, 3, S, S) faces the attributions sum over (the menu can pick one).
        probes: optional result of ``linear_probes`` (see :meth:`set_probes`).
        method: ``"grad_x_act"`` (one backward pass: live) or ``"integrated_gradients"``
            (``steps`` passes per layer: seconds per update).
        steps: integrated-gradients steps.
        blendshape: the blend shape shown first.
    """

    def __init__(self, net: E2FARNet, model: MorphableModel, images: Tensor,
                 probes: Mapping[str, Mapping[str, float]] | None = None,
                 method: str = "grad_x_act", steps: int = 16, blendshape: str = "jawOpen",
                 ) -> None:
        from plotly.subplots import make_subplots

        self.net = _check_net(net)
        self.model = _check_model(model, net)
        self.images = _check_images(images, net).detach()
        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        check_positive_int(steps, "steps")
        self.method, self.steps = method, steps
        self._per_face: dict[str, Tensor] = {}  # target -> (B, 5) raw attributions
        names = list(model.blendshape_names)
        if not names:
            raise ValueError("model: expected named blend shapes for the blend-shape menu, "
                             "got a model without")
        style = label_style(["faces", "shape"])

        def menu() -> W.Layout:
            return W.Layout(flex="1 1 220px", min_width="180px", max_width="320px")

        self.faces = W.Dropdown(options=[("all faces", -1)] + [
            (f"face {i}", i) for i in range(self.images.shape[0])], value=-1,
            description="faces", tooltip="the faces the attributions sum over", style=style,
            layout=menu())
        self.blendshape = W.Dropdown(options=names,
                                     value=blendshape if blendshape in names else names[0],
                                     description="shape", style=style, layout=menu(),
                                     tooltip="the blend shape of the middle panel")
        layers = list(TAP_NAMES)
        # one FigureWidget for all panels: each one ships plotly.js to the page
        figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, subplot_titles=(
            "expression vs identity", f"{self.blendshape.value} weight",
            "linear probes: held-out R²"))
        for target in TARGETS_SHOWN:
            figure.add_trace(go.Bar(name=target, x=layers, marker_color=LAYER_COLOURS[target],
                                    legendgroup=target), row=1, col=1)
        figure.add_trace(go.Bar(name="blend shape", x=layers, marker_color="#9467bd",
                                showlegend=False), row=1, col=2)
        for target in TARGETS_SHOWN:
            figure.add_trace(go.Scatter(name=f"{target} R²", x=layers, mode="lines+markers",
                                        line=dict(color=LAYER_COLOURS[target]),
                                        legendgroup=target), row=1, col=3)
        # shares are fractions of a total: a fixed 0..1 axis keeps bars comparable between
        # faces and shapes; the probes' axis is fixed by set_probes
        figure.update_yaxes(title_text="share of attribution", range=SHARE_RANGE, row=1, col=1)
        figure.update_yaxes(range=SHARE_RANGE, row=1, col=2)
        figure.update_yaxes(title_text="R²", range=(0.0, 1.0), row=1, col=3)
        figure.update_layout(height=360, barmode="group", margin=dict(l=60, r=10, t=50, b=40),
                             legend=dict(orientation="h", y=-0.15))
        self.figure = go.FigureWidget(figure)
        self.update()
        if probes is not None:
            self.set_probes(probes)
        self.faces.observe(self.update, names="value")
        self.blendshape.observe(self.update_shape, names="value")
        menus = W.Box([self.faces, self.blendshape], layout=W.Layout(
            display="flex", flex_flow="row wrap", width="100%"))
        self.widget = W.VBox([menus, _plot_box(self.figure, "600px"), FitPlots()],
                             layout=W.Layout(width="100%", overflow="auto"))

    @property
    def target_bars(self) -> tuple:
        """The expression and identity bar traces."""
        return self.figure.data[0:2]

    @property
    def shape_bars(self):
        """The blend-shape bar trace."""
        return self.figure.data[2]

    @property
    def probe_lines(self) -> tuple:
        """The expression and identity R² traces."""
        return self.figure.data[3:5]

    def _shares(self, target: str) -> list[float]:
        """Shares per layer for the chosen faces; each target is computed once for all faces."""
        if target not in self._per_face:
            self._per_face[target] = per_sample_attribution(
                self.net, self.images, self.model, target, self.method, self.steps)
        rows = self._per_face[target]
        i = self.faces.value
        raw = rows.sum(0) if i < 0 else rows[i]
        total = float(raw.sum())
        return [float(v) / total if total > 0 else 0.0 for v in raw]

    def update(self, _change: object = None) -> None:
        """Recompute every bar for the chosen faces."""
        with self.figure.batch_update():
            for trace, target in zip(self.target_bars, TARGETS_SHOWN, strict=True):
                trace.y = self._shares(target)
        self.update_shape()

    def update_shape(self, _change: object = None) -> None:
        """Recompute the blend-shape bars for the chosen shape."""
        name = self.blendshape.value
        with self.figure.batch_update():
            self.shape_bars.y = self._shares(name)
            self.figure.layout.annotations[1].text = f"{name} weight"

    def set_probes(self, probes: Mapping[str, Mapping[str, float]]) -> None:
        """Draw ``linear_probes`` results: ``{layer: {"expression": R², "identity": R²}}``."""
        layers = [layer for layer in TAP_NAMES if layer in probes]
        values = [probes[layer][target] for layer in layers for target in TARGETS_SHOWN]
        low = min([0.0, *values])  # a probe worse than the mean has R² < 0
        with self.figure.batch_update():
            for trace, target in zip(self.probe_lines, TARGETS_SHOWN, strict=True):
                trace.x = layers
                trace.y = [probes[layer][target] for layer in layers]
            self.figure.layout.yaxis3.range = (low - 0.05 * (1.0 - low), 1.0)


class FeatureMapViewer:
    """One channel of one layer's activation, upsampled and laid over the input image.

    Channels are listed by how much their map varies over the chosen face (spatial std,
    :func:`~e2far_lite.analysis.top_channels`), so the slider's low end shows maps with
    structure rather than dead or flat ones; the title names the channel's index in the layer.

    Args:
        net: the network.
        images: (B, 3, S, S) RGB in [0, 1].
        names: optional B labels for the face menu.
        opacity: of the heat map over the image.
    """

    def __init__(self, net: E2FARNet, images: Tensor, names: Sequence[str] | None = None,
                 opacity: float = 0.6) -> None:
        self.net = _check_net(net)
        self.images = _check_images(images, net).detach().cpu()
        self.size = net.config.image_size
        labels = _labels(self.images, names)
        self._style = label_style(["face", "layer", "rank"])
        self.face = W.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                               description="face", tooltip="the face the network reads",
                               style=self._style, layout=control_layout())
        self.layer = W.Dropdown(options=list(TAP_NAMES), value="pool3", description="layer",
                                tooltip="the backbone layer whose channels are shown",
                                style=self._style, layout=control_layout())
        self.redraw = Redraw(self.update)
        self.channel: W.IntSlider | None = None
        self.controls = W.VBox([self.face, self.layer])
        self._select_face()
        self._order_channels()
        self.figure = go.FigureWidget(
            data=[go.Image(z=to_numpy_image(self.images[self.face.value])),
                  go.Heatmap(z=self.feature_map(), colorscale="Inferno", opacity=opacity,
                             colorbar=dict(title=dict(text="activation")))],
            layout=go.Layout(height=420, margin=dict(l=10, r=10, t=40, b=10),
                             xaxis=dict(visible=False), yaxis=dict(visible=False,
                                                                   scaleanchor="x")))
        self.update()
        self.face.observe(self.select, names="value")
        self.layer.observe(self.select_layer, names="value")
        self.widget = flow_row([self.controls], [embed(self.figure)], plots_min="320px")

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the heat map shows the slider's current value (seconds)."""
        self.redraw.wait(timeout)

    def _rank_slider(self, channels: int, value: int) -> W.IntSlider:
        slider = W.IntSlider(value, min=0, max=channels - 1, description="rank",
                             tooltip="channels ranked by spatial spread, 0 = the busiest",
                             style=self._style, layout=control_layout())
        slider.observe(self.redraw.request, names="value")
        return slider

    def _select_face(self) -> None:
        image = self.images[self.face.value][None].to(next(self.net.parameters()).device)
        with evaluating(self.net), torch.no_grad():
            self._features = {k: v[0].cpu() for k, v in self.net.backbone(image).items()}

    def _order_channels(self) -> None:
        """Rank the layer's channels; a new range gets a new slider.

        The browser's slider (noUiSlider) keeps the range it was drawn with when only ``max``
        changes, so its End key would stop at the old maximum: the slider is replaced instead.
        """
        act = self._features[self.layer.value]  # (C, h, w)
        self.order = top_channels(act, act.shape[0])
        count = act.shape[0]
        if self.channel is None or self.channel.max != count - 1:
            value = 0 if self.channel is None else min(self.channel.value, count - 1)
            old, self.channel = self.channel, self._rank_slider(count, value)
            self.controls.children = [self.face, self.layer, self.channel]
            if old is not None:
                old.unobserve(self.redraw.request, names="value")
                old.close()

    @property
    def channel_index(self) -> int:
        """The chosen channel's index within its layer."""
        return self.order[self.channel.value]

    def feature_map(self) -> np.ndarray:
        """(S, S) the chosen channel, bilinearly upsampled to the image size."""
        act = self._features[self.layer.value][self.channel_index]
        up = F.interpolate(act[None, None], size=(self.size, self.size), mode="bilinear",
                           align_corners=False)
        return up[0, 0].numpy()

    def update(self, _change: object = None) -> None:
        """Redraw the heat map for the chosen face, layer and channel."""
        act = self._features[self.layer.value]
        c = self.channel_index
        with self.figure.batch_update():
            self.figure.data[1].z = self.feature_map()
            self.figure.layout.title.text = (
                f"{self.layer.value} channel {c} of {act.shape[0]} "
                f"({act.shape[1]}x{act.shape[2]} map), max {float(act[c].max()):.2f}")

    def select(self, _change: object = None) -> None:
        """Another face: rerun the backbone and show the image."""
        with self.redraw.lock:
            self._select_face()
            self._order_channels()
            self.figure.data[0].z = to_numpy_image(self.images[self.face.value])
            self.update()

    def select_layer(self, _change: object = None) -> None:
        """Another layer: channels re-ranked, a slider over its range (see _order_channels)."""
        with self.redraw.lock:
            self._order_channels()
            self.update()


# ------------------------------------------------------------------ static pictures (matplotlib)
def plot_layer_shares(shares: Mapping[str, Mapping[str, float]], title: str = "",
                      ylabel: str = "share of attribution"):
    """Grouped bars: one group per layer, one bar per target. Returns the figure.

    Args:
        shares: ``{target: {layer: share}}``, e.g. ``layer_attribution`` for several targets.
        title: figure title.
        ylabel: y-axis label.
    """
    import matplotlib.pyplot as plt

    targets = list(shares)
    layers = [layer for layer in TAP_NAMES if layer in shares[targets[0]]]
    width = 0.8 / len(targets)
    fig, ax = plt.subplots(figsize=(7.0 if len(targets) <= 2 else 9.0, 3.2))
    for j, target in enumerate(targets):
        x = np.arange(len(layers)) + (j - (len(targets) - 1) / 2) * width
        ax.bar(x, [shares[target][layer] for layer in layers], width, label=target,
               color=LAYER_COLOURS.get(target))
    ax.set_xticks(np.arange(len(layers)), layers)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(4, len(targets)))
    fig.tight_layout()
    return fig


def plot_probes(probes: Mapping[str, Mapping[str, float]], title: str = ""):
    """The linear-probe R² over depth, expression vs identity. Returns the figure.

    Args:
        probes: ``{layer: {"expression": R², "identity": R²}}`` from ``linear_probes``.
        title: figure title.
    """
    import matplotlib.pyplot as plt

    layers = [layer for layer in TAP_NAMES if layer in probes]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for target in TARGETS_SHOWN:
        ax.plot(layers, [probes[layer][target] for layer in layers], "o-", label=target,
                color=LAYER_COLOURS[target])
    ax.axhline(0.0, color="#888888", lw=0.8)
    ax.set_ylabel("held-out R²")
    ax.set_title(title or "linear probes: how readable is each target, layer by layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["TapMixer", "LayerAttributionView", "FeatureMapViewer", "load_face_image",
           "plot_layer_shares", "plot_probes"]
