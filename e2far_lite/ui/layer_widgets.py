"""Widgets for chapter 07: mix the fusion taps, see attributions per layer, look at feature maps.

House style of :mod:`e2far_lite.ui.widgets`: each widget is a class whose controls call
:meth:`update`, which changes plotly ``FigureWidget`` data in place; sliders go through a
:class:`~e2far_lite.ui.Redraw`, so a burst of slider events draws only the latest value,
and the layout flows (:func:`~e2far_lite.ui.flow_row`). The backbone runs once per chosen
image (its taps are cached), so moving a slider only reruns the small part above it. Tests call
the handlers directly, headless (and ``wait()`` for a slider's redraw).

- :class:`TapMixer`: one slider per fusion tap scales its contribution (0 .. 2); the predicted
  mesh (coloured by how far each vertex moved, on a fixed scale in mm) and the blend-shape
  reading of the predicted expression follow live. Pictures can be uploaded.
- :class:`LayerAttributionView`: shares per layer, expression vs identity and for one chosen
  blend shape, under a chosen measure (gradient × activation summed or per unit, or the
  movement when a fusion tap is silenced), plus the linear-probe R² curves over depth; the text
  under it says what the measure measures, whether it depends on the face and shape, and where
  it disagrees with the ablation and the probes.
- :class:`FeatureMapViewer`: one channel of one layer, upsampled over the input image.

Empty axes on a first Run All: a plotly ``FigureWidget`` gives the page its data as widget
state, and on a notebook's first run the page can draw the figure before that state has
arrived (plotly's 4 MB script still loading, a cell drawn as it scrolls into view); the edits a
constructor makes in place travel as one-off messages that are lost the same way. Edits sent
after the page has drawn the figure always show. So every figure here is created with its data,
and a :class:`RepaintOnDraw` beside it sends that data again when the page reports the figure
drawn.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping, Sequence

import anywidget
import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from torch import Tensor

from ..analysis.attribution import METHODS, per_sample_attribution
from ..analysis.feature_maps import top_channels
from ..analysis.inputs import check_fusion, check_images, check_model, check_net, evaluating
from ..analysis.targets import target_function
from ..checks import check_floating, check_positive_int, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from ..photo.images import load_face_image
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


class RepaintOnDraw(anywidget.AnyWidget):
    """An invisible widget that sends its figures' data again once the page has drawn them.

    A plotly ``FigureWidget`` hands the page its data as widget state when it is created; on a
    notebook's first Run All the page can draw the figure without it (plotly's 4 MB script
    still loading, a cell drawn only as it scrolls into view), and the figure stays empty axes;
    in-place edits sent before the page drew it are lost the same way. So this widget, put in
    the same box as its figures, looks at them every half second for a minute after it or one
    of them is drawn (plotly's ``plotlywidget-after-render`` event) and tells the kernel which
    figure the page drew with how many traces (each count once);
    the kernel then sends what the page lacks (:meth:`repaint`): every trace, when it drew
    none, and the layout. A figure drawn whole is left as it is.

    Args:
        figures: the ``FigureWidget`` objects, in the order they appear in the box.
    """

    _esm = """
    function render({ model, el }) {
      el.style.height = "0px";
      const told = new WeakMap();  // plot -> the trace count last reported
      const box = () => el.closest(".widget-box") || el.parentElement;
      // before plotly draws a figure it puts an empty placeholder in its place: skip that
      const placeholder = (plot) => !(plot.data || []).length && plot.layout
        && plot.layout.xaxis && Array.isArray(plot.layout.xaxis.tickvals);
      const report = (plot, index) => {
        if (!plot.querySelector(".main-svg") || placeholder(plot)) return;
        const traces = (plot.data || []).length;
        if (told.get(plot) === traces) return;
        told.set(plot, traces);
        model.send({ event: "drawn", index, traces });
      };
      let timer = null, until = 0;
      const look = () => {
        const here = box();
        if (here) here.querySelectorAll(".js-plotly-plot").forEach(report);
        timer = Date.now() < until ? setTimeout(look, 500) : null;
      };
      const watch = () => {
        until = Date.now() + 60000;
        if (timer === null) timer = setTimeout(look, 100);
      };
      const drawn = (event) => {
        const plot = event.detail && event.detail.element, here = box();
        if (plot && here && here.contains(plot)) watch();
      };
      watch();
      document.addEventListener("plotlywidget-after-render", drawn);
      return () => {
        document.removeEventListener("plotlywidget-after-render", drawn);
        clearTimeout(timer);
      };
    }
    export default { render };
    """

    def __init__(self, figures: Sequence[go.FigureWidget]) -> None:
        super().__init__()
        self.figures = list(figures)
        self.repaints = 0  # figures sent again, for tests and curiosity
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: object, content: dict, _buffers: object) -> None:
        if not (isinstance(content, dict) and content.get("event") == "drawn"):
            return
        index, traces = content.get("index", -1), content.get("traces", 0)
        if 0 <= index < len(self.figures) and traces < len(self.figures[index].data):
            self.repaint(self.figures[index], traces)

    def repaint(self, figure: go.FigureWidget, drawn: int = 0) -> None:
        """Send ``figure``'s traces after the first ``drawn`` ones, and its layout, again."""
        missing = copy.deepcopy(figure._data[drawn:])
        if missing:
            figure._send_addTraces_msg(missing)
        figure._send_relayout_msg(copy.deepcopy(figure._layout))
        self.repaints += 1

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


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k (k integer) at least ``value`` (> 0): a round scale end."""
    value = max(float(value), 1e-3)
    decade = 10.0 ** np.floor(np.log10(value))
    return float(next(m * decade for m in (1, 2, 5, 10) if m * decade >= value * (1 - 1e-9)))


#: What the TapMixer's slider at 0 puts in place of a tap's projected map.
SILENCE_MODES = {"zero": "zeros (silenced)", "mean": "its mean over these faces"}


class TapMixer:
    """Scale each fusion tap's say in the expression and watch the prediction change.

    The mesh shows the predicted face (identity + expression); its colour is how far each
    vertex moved, in mm, from the prediction with every tap at x1, on a colour scale that stays
    fixed whatever the sliders say (0 .. ``cmax`` mm), so two settings compare by eye. The bars
    read the predicted expression as blend-shape weights (grey: all taps x1; red: as mixed),
    for the ``top`` shapes strongest in the unmixed prediction of the chosen face.

    A slider at s puts ``base + s · (map - base)`` in place of the tap's projected map, with
    ``base`` zeros (the tap silenced, as ``tap_scale``) or the map's mean over the given faces
    (the menu "at 0": the mean ablation of :func:`~e2far_lite.analysis.silence_taps`). The
    colour measures how much the prediction *moves*, not whether it gets worse: only the
    printed ablation compares with the true faces.

    The figures are created with their data (nothing is sent to the page before it has drawn
    them: a plotly ``FigureWidget`` drops in-place edits that reach the page while plotly's
    script is still loading, which left empty axes on a notebook's first run).

    Args:
        net: a network with a fusion CNN.
        model: its morphable model.
        images: (B, 3, S, S) RGB in [0, 1], the faces to choose from.
        names: optional B labels for the face menu.
        top: how many blend shapes (or expression coefficients) to show.
        cmax: the colour scale's end in mm; default: the largest movement any one tap at 0 or
            x2 causes on these faces, rounded up to 1, 2 or 5 x 10^k mm.
    """

    def __init__(self, net: E2FARNet, model: MorphableModel, images: Tensor,
                 names: Sequence[str] | None = None, top: int = 12,
                 cmax: float | None = None) -> None:
        self.net = check_net(net)
        self.fusion = check_fusion(net)
        self.model = check_model(model, net).cpu()
        self.device = next(net.parameters()).device
        images = check_images(images, net)
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
        style = label_style([f"{tap} ×" for tap in self.fusion.taps] + ["face", "at 0"])
        self.face = W.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                               description="face", tooltip="the face the network reads",
                               style=style, layout=control_layout())
        self.sliders = {tap: W.FloatSlider(1.0, min=0.0, max=2.0, step=0.05,
                                           description=f"{tap} ×", style=style,
                                           tooltip=f"scale of the {tap} tap in the fusion CNN "
                                                   "(0 = silenced, 1 = as trained)",
                                           layout=control_layout())
                        for tap in self.fusion.taps}
        self.silence = W.Dropdown(options=[(text, key) for key, text in SILENCE_MODES.items()],
                                  value="zero", description="at 0", style=style,
                                  tooltip="what a tap at 0 becomes: zeros, or its mean map over "
                                          "these faces (the printed mean ablation)",
                                  layout=control_layout())
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload face",
                                   tooltip="a tight crop of one face (PNG, JPEG, ...)")
        self.picture = W.Image(format="png", width=96, height=96)
        self.moved = W.HTML()
        self._means = self._mean_maps()
        self.cmax = float(cmax) if cmax is not None else self._fixed_scale()
        self._select_face(0)
        vertices, movement = self._mesh()
        names_shown, reference, mixed = self._bar_values()
        # created with their data: see the class docstring
        self.figure = mesh_figure(
            vertices, self.model.triangles, intensity=movement, colorscale="Reds", cmin=0.0,
            cmax=self.cmax, widget=True, height=380,
            # a horizontal colour bar along the bottom: clear of plotly's toolbar (top right)
            colorbar=dict(orientation="h", x=0.5, xanchor="center", y=0.0, yanchor="bottom",
                          len=0.8, thickness=10, title=dict(text="moved (mm)", side="top")))
        self.figure.update_layout(margin=dict(l=0, r=0, t=10, b=10))
        self.bars = go.FigureWidget(
            data=[go.Bar(name="all taps ×1", marker_color="#bbbbbb", x=names_shown,
                         y=reference),
                  go.Bar(name="mixed", marker_color="#d62728", x=names_shown, y=mixed)],
            layout=go.Layout(height=380, barmode="group", margin=dict(l=50, r=10, t=60, b=90),
                             title=dict(text="blend-shape weights",
                                        y=0.97, yanchor="top"),
                             yaxis=dict(title="weight"),
                             legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom")))
        self.picture.value = _png(self.images[self.face.value])
        self._show_moved(movement)
        self.redraw = Redraw(self.update)
        self.face.observe(self.select, names="value")
        for slider in self.sliders.values():
            slider.observe(self.redraw.request, names="value")
        self.silence.observe(self.redraw.request, names="value")
        self.upload.observe(self._on_upload, names="value")
        reset = W.Button(description="all taps ×1", tooltip="every tap back to ×1")
        reset.on_click(self.reset)
        note = W.HTML(
            "<small>Colour: how far each vertex moved from the prediction with all taps ×1, "
            f"on a fixed scale (0 to {self.cmax:g} mm). A large move is not a worse face: the "
            "printed ablation measures the error against the true faces.</small>")
        # mesh and bars side by side (each a share of the row, not its full width), so the
        # widget is one figure tall: it fits a laptop screen beside its controls
        plots = W.Box([W.VBox([embed(self.figure)], layout=W.Layout(flex="1 1 0",
                                                                     min_width="230px")),
                       W.VBox([embed(self.bars)], layout=W.Layout(flex="1 1 0",
                                                                  min_width="210px"))],
                      layout=W.Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.repaint = RepaintOnDraw([self.figure, self.bars])
        self.widget = flow_row([self.face, W.HBox([self.picture, self.upload]),
                                W.HTML("<b>fusion taps</b>"), *self.sliders.values(),
                                self.silence, reset, self.moved, note],
                               [plots, self.repaint], plots_min="440px")

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the figures show the sliders' current values (seconds)."""
        self.redraw.wait(timeout)

    # ------------------------------------------------------------------ computation
    def _projected_maps(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The identity (1, K) and each tap's projected map for face ``index``."""
        image = self.images[index][None].to(self.device)
        with evaluating(self.net), torch.no_grad():
            features = self.net.backbone(image)
            return (self.net.id_head(features["pool5"]).cpu(),
                    self.fusion.project_taps(features))

    def _mean_maps(self) -> dict[str, Tensor]:
        """Each tap's projected map averaged over the given faces (the mean ablation's map)."""
        maps = [self._projected_maps(i)[1] for i in range(len(self.images))]
        return {tap: torch.stack([m[tap][0] for m in maps]).mean(0, keepdim=True)
                for tap in self.fusion.taps}

    def _fixed_scale(self) -> float:
        """The colour scale's end (mm): the largest movement of one tap at 0 or x2 (either
        meaning of 0), over the given faces, rounded up; the same for every setting."""
        largest = 0.0
        for index in range(len(self.images)):
            self._select_face(index)
            for tap in self.fusion.taps:
                for scale in (0.0, 2.0):
                    for mode in SILENCE_MODES:
                        offset = self.model.expression_offset(
                            self.predict_exp({tap: scale}, mode))[0]
                        moved = (offset - self._ref_offset).norm(dim=-1)
                        largest = max(largest, float(moved.max()))
        return _nice_ceiling(largest)

    def _select_face(self, index: int) -> None:
        """Run the backbone once for face ``index``; cache what the sliders do not change."""
        self._a_id, self._projected = self._projected_maps(index)
        self._reference = self.predict_exp({}, "zero")
        self._neutral = self.model.neutral(self._a_id)[0]
        with torch.no_grad():
            self._ref_offset = self.model.expression_offset(self._reference)[0]
        weights = self.readout_weights(self._reference)
        self.shown = [int(i) for i in weights.abs().argsort(descending=True)[:self.top]]

    def predict_exp(self, tap_scale: Mapping[str, float] | None = None,
                    silence: str | None = None) -> Tensor:
        """(1, E) expression of the chosen face with the taps scaled (default: the sliders).

        A tap at scale s gets ``base + s (map - base)``, ``base`` zeros (``silence="zero"``)
        or the map's mean over the given faces (``"mean"``); default: the "at 0" menu.
        """
        if tap_scale is None:
            tap_scale = {tap: s.value for tap, s in self.sliders.items()}
        silence = self.silence.value if silence is None else silence
        maps = []
        for tap in self.fusion.taps:
            scale, own = float(tap_scale.get(tap, 1.0)), self._projected[tap]
            base = self._means[tap].to(own) if silence == "mean" else torch.zeros_like(own)
            maps.append(base + scale * (own - base))
        with evaluating(self.net), torch.no_grad():
            return self.fusion.head(self.fusion.fuse(torch.cat(maps, dim=1))).cpu()

    def readout_weights(self, a_exp: Tensor) -> Tensor:
        """(N,) blend-shape weights of a (1, E) expression (or its coefficients, no shapes)."""
        return (a_exp @ self.readout)[0]

    def _mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (V, 3) of the mixed prediction and each vertex's movement (V,), mm."""
        a_exp = self.predict_exp()
        with torch.no_grad():
            offset = self.model.expression_offset(a_exp)[0]
        self._a_exp = a_exp
        vertices = (self._neutral + offset).numpy()
        movement = (offset - self._ref_offset).norm(dim=-1).numpy()
        return vertices, movement

    def _bar_values(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        names = [self.readout_names[i] for i in self.shown]
        return (names, self.readout_weights(self._reference)[self.shown].numpy(),
                self.readout_weights(self._a_exp)[self.shown].numpy())

    def _show_moved(self, movement: np.ndarray) -> None:
        rms = float(np.sqrt((movement ** 2).mean()))
        self.moved.value = (f"moved: RMS <b>{rms:.2f} mm</b>, largest {movement.max():.2f} mm"
                            f"<br><small>colour scale fixed at 0 to {self.cmax:g} mm</small>")

    # --------------------------------------------------------------------- handlers
    def update(self, _change: object = None) -> None:
        """Recompute the expression for the sliders; move the mesh and the bars in place.

        The colour scale (``cmin`` 0, ``cmax``) is not touched: it is fixed at construction.
        """
        vertices, movement = self._mesh()
        names, reference, mixed = self._bar_values()
        with self.figure.batch_update():
            mesh = self.figure.data[0]
            mesh.x, mesh.y, mesh.z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
            mesh.intensity = movement
        with self.bars.batch_update():
            self.bars.data[0].x, self.bars.data[0].y = names, reference
            self.bars.data[1].x, self.bars.data[1].y = names, mixed
        self._show_moved(movement)

    def select(self, _change: object = None) -> None:
        """Another face chosen: rerun the backbone, pick its strongest shapes, redraw."""
        with self.redraw.lock:  # not while a slider's redraw reads the cached taps
            self._select_face(self.face.value)
            self.picture.value = _png(self.images[self.face.value])
            self.update()

    def add_image(self, image: Tensor, name: str = "uploaded") -> None:
        """Append a (3, S, S) image in [0, 1] to the face menu and show it.

        The colour scale and the mean maps stay those of the faces given at construction.
        """
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


#: The attribution view's measures: menu text, and what each one measures (shown under it).
MEASURES = {
    "sum": ("gradient × activation, summed over units",
            "Σ |∂f/∂A · A| over a layer's units: how strongly the output responds to the "
            "features present there. It grows with the number of units ({units}), so the large "
            "early maps come first for every face and every shape: a ranking by size, not by "
            "what the fusion CNN relies on."),
    "mean": ("gradient × activation, mean per unit",
             "The same sum divided by the layer's number of units: the size advantage taken "
             "out. It asks how much one unit of each layer says; a few units of a small deep "
             "map can still carry more than this."),
    "silence": ("silence a fusion tap (its mean over these faces)",
                "How far the output moves when a fusion tap's map is replaced by its mean over "
                "these faces (the mean ablation, live): RMS mm for the expression, the change "
                "of the weight for a blend shape. pool1 to pool3 are not fusion taps and the "
                "identity never reads the fusion CNN: 0. It measures a change of the "
                "prediction, not whether it gets worse (the printed ablation does)."),
}


class LayerAttributionView:
    """Which layers does the prediction rest on? Attribution shares and probe curves.

    One figure, three panels: the share of each layer pool1 .. pool5 in the size of the
    predicted expression vs the predicted identity; the same for one blend shape's weight,
    chosen from the menu; the linear-probe R² over depth
    (:func:`~e2far_lite.analysis.linear_probes`), once given. A "measure" menu picks how a
    layer's share is measured (:data:`MEASURES`: gradient × activation summed over the layer's
    units, or per unit, or the movement when a fusion tap is silenced); the text under the
    figure says what the chosen measure measures, how much its bars depend on the face and the
    blend shape, and what the notebook's ablation and probes answer.

    Args:
        net: the network.
        model: its morphable model (with named blend shapes).
        images: (B, 3, S, S) faces the attributions sum over (the menu can pick one).
        probes: optional result of ``linear_probes`` (see :meth:`set_probes`).
        method: gradient × activation as ``"grad_x_act"`` (one backward pass: live) or
            ``"integrated_gradients"`` (``steps`` passes per layer: seconds per update).
        steps: integrated-gradients steps.
        blendshape: the blend shape shown first.
        ablation: optional ``silence_taps(..., mode="mean")`` result, ``{tap: {"expression":
            Δ mm, ...}}``, measured against the true faces; named in the text.
        measure: the measure shown first, a key of :data:`MEASURES`.
    """

    def __init__(self, net: E2FARNet, model: MorphableModel, images: Tensor,
                 probes: Mapping[str, Mapping[str, float]] | None = None,
                 method: str = "grad_x_act", steps: int = 16, blendshape: str = "jawOpen",
                 ablation: Mapping[str, Mapping[str, float]] | None = None,
                 measure: str = "sum") -> None:
        from plotly.subplots import make_subplots

        self.net = check_net(net)
        self.model = check_model(model, net)
        self.images = check_images(images, net).detach()
        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        if measure not in MEASURES:
            raise ValueError(f"measure: expected one of {tuple(MEASURES)}, got {measure!r}")
        check_positive_int(steps, "steps")
        self.method, self.steps = method, steps
        self.probes, self.ablation = probes, ablation
        self._per_face: dict[tuple[str, str], Tensor] = {}  # (measure, target) -> (B, 5)
        names = list(model.blendshape_names)
        if not names:
            raise ValueError("model: expected named blend shapes for the blend-shape menu, "
                             "got a model without")
        with evaluating(self.net), torch.no_grad():
            features = self.net.backbone(self.images[:1].to(next(net.parameters()).device))
        self.units = {layer: int(features[layer][0].numel()) for layer in TAP_NAMES}
        style = label_style(["faces", "shape", "measure"])

        def menu(width: str = "320px") -> W.Layout:
            return W.Layout(flex="1 1 220px", min_width="180px", max_width=width)

        self.faces = W.Dropdown(options=[("all faces", -1)] + [
            (f"face {i}", i) for i in range(self.images.shape[0])], value=-1,
            description="faces", tooltip="the faces the attributions sum over", style=style,
            layout=menu())
        self.blendshape = W.Dropdown(options=names,
                                     value=blendshape if blendshape in names else names[0],
                                     description="shape", style=style, layout=menu(),
                                     tooltip="the blend shape of the middle panel")
        options = [(text, key) for key, (text, _) in MEASURES.items()
                   if key != "silence" or net.fusion is not None]
        self.measure = W.Dropdown(options=options, value=measure, description="measure",
                                  style=style, layout=menu("460px"),
                                  tooltip="how a layer's share is measured")
        self.reading = W.HTML()
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
        figure.update_yaxes(title_text="share", range=SHARE_RANGE, row=1, col=1)
        figure.update_yaxes(range=SHARE_RANGE, row=1, col=2)
        figure.update_yaxes(title_text="R²", range=(0.0, 1.0), row=1, col=3)
        figure.update_layout(height=340, barmode="group", margin=dict(l=60, r=10, t=50, b=40),
                             legend=dict(orientation="h", y=-0.15))
        # filled in before it becomes a widget: nothing is sent before the page draws it
        self.figure = figure
        self.update()
        if probes is not None:
            self.set_probes(probes)
        self.figure = go.FigureWidget(figure)
        self.faces.observe(self.update, names="value")
        self.blendshape.observe(self.update_shape, names="value")
        self.measure.observe(self.update, names="value")
        menus = W.Box([self.faces, self.blendshape, self.measure], layout=W.Layout(
            display="flex", flex_flow="row wrap", width="100%"))
        self.repaint = RepaintOnDraw([self.figure])
        self.widget = W.VBox([menus, _plot_box(self.figure, "600px"), FitPlots(), self.repaint,
                              self.reading], layout=W.Layout(width="100%", overflow="auto"))

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

    # ------------------------------------------------------------------ computation
    def _silenced(self, target: str) -> Tensor:
        """(B, 5) how far ``target`` moves per face when each fusion tap is replaced by its
        mean over the faces (0 for layers that are not taps, and for the identity)."""
        rows = torch.zeros(self.images.shape[0], len(TAP_NAMES), dtype=torch.float64)
        fusion = self.net.fusion
        if target == "identity" or fusion is None:
            return rows
        fn = target_function(self.model, target)
        with evaluating(self.net), torch.no_grad():
            features = self.net.backbone(self.images.to(next(self.net.parameters()).device))
            projected = fusion.project_taps(features)

            def predict(maps: dict[str, Tensor]) -> Tensor:
                return fusion.head(fusion.fuse(torch.cat([maps[t] for t in fusion.taps], 1)))

            reference = predict(projected)
            for tap in fusion.taps:
                mean = projected[tap].mean(0, keepdim=True).expand_as(projected[tap])
                change = predict({**projected, tap: mean}) - reference
                moved = fn(torch.zeros(change.shape[0], self.model.num_id).to(change), change)
                rows[:, TAP_NAMES.index(tap)] = moved.abs().double().cpu()
        return rows

    def per_face(self, target: str, measure: str | None = None) -> Tensor:
        """(B, 5) the chosen measure per face and layer, computed once per target."""
        measure = self.measure.value if measure is None else measure
        key = (measure, target)
        if key not in self._per_face:
            if measure == "silence":
                rows = self._silenced(target)
            else:
                rows = per_sample_attribution(self.net, self.images, self.model, target,
                                              self.method, self.steps)
                if measure == "mean":
                    rows = rows / torch.tensor([self.units[t] for t in TAP_NAMES],
                                               dtype=rows.dtype)
            self._per_face[key] = rows
        return self._per_face[key]

    @staticmethod
    def _normalised(raw: Tensor) -> list[float]:
        total = float(raw.sum())
        return [float(v) / total if total > 0 else 0.0 for v in raw]

    def _shares(self, target: str, face: int | None = None) -> list[float]:
        """Shares per layer for the chosen faces (``face``: -1 all, else one face)."""
        rows = self.per_face(target)
        i = self.faces.value if face is None else face
        return self._normalised(rows.sum(0) if i < 0 else rows[i])

    def spread(self, target: str) -> float:
        """How far one face's shares stray from all faces' (largest difference, 0 .. 1)."""
        overall = np.array(self._shares(target, -1))
        return max(float(np.abs(np.array(self._shares(target, i)) - overall).max())
                   for i in range(self.images.shape[0]))

    # ------------------------------------------------------------------ drawing
    def update(self, _change: object = None) -> None:
        """Recompute every bar for the chosen faces and measure."""
        with self.figure.batch_update():
            for trace, target in zip(self.target_bars, TARGETS_SHOWN, strict=True):
                trace.y = self._shares(target)
        self.update_shape()

    def update_shape(self, _change: object = None) -> None:
        """Recompute the blend-shape bars for the chosen shape, and the text."""
        name = self.blendshape.value
        with self.figure.batch_update():
            self.shape_bars.y = self._shares(name)
            self.figure.layout.annotations[1].text = f"{name} weight"
        self.reading.value = self.text()

    def largest(self, target: str) -> str:
        """The layer with the largest share of ``target`` for the chosen faces."""
        shares = self._shares(target)
        return TAP_NAMES[int(np.argmax(shares))] if max(shares) > 0 else "none"

    def answers(self) -> dict[str, str]:
        """What each method answers for the expression: the layer it ranks first."""
        out = {"measure": self.largest("expression")}
        if self.ablation:
            out["ablation"] = max(self.ablation, key=lambda t: self.ablation[t]["expression"])
        if self.probes:
            out["probes"] = max(self.probes, key=lambda t: self.probes[t]["expression"])
        return out

    def text(self) -> str:
        """The HTML under the figure: the measure, how much it depends on the selection, and
        what the other methods answer."""
        measure = self.measure.value
        label, about = MEASURES[measure]
        units = ", ".join(f"{t} {self.units[t]}" for t in TAP_NAMES)
        shape = self.blendshape.value
        who = "all faces" if self.faces.value < 0 else f"face {self.faces.value}"
        answers = self.answers()
        lines = [f"<b>{label}</b>: {about.format(units=units)}",
                 f"For {who}: the expression's largest share is <b>{answers['measure']}</b>, "
                 f"{shape}'s is <b>{self.largest(shape)}</b>."]
        spread = max(self.spread("expression"), self.spread(shape))
        versus = float(np.abs(np.array(self._shares(shape))
                              - np.array(self._shares("expression"))).max())
        if spread < 0.05 and versus < 0.05:
            lines.append(
                f"<b>These bars hardly depend on the face or the blend shape</b>: one face "
                f"moves them by at most {spread:.2f}, and {shape}'s profile differs from the "
                f"expression's by at most {versus:.2f}. This measure describes the layers "
                "(their sizes and typical activations) more than the faces.")
        else:
            lines.append(f"One face moves these bars by up to {spread:.2f} from all faces'; "
                         f"{shape}'s profile differs from the expression's by up to "
                         f"{versus:.2f}.")
        if "ablation" in answers:
            costs = ", ".join(f"{t} {c['expression']:+.2f} mm" for t, c in self.ablation.items())
            lines.append(f"Mean ablation, printed above (error against the true faces): "
                         f"{costs}: <span class='e2far-ablation'>the tap whose mean ablation "
                         f"costs most: {answers['ablation']}</span>.")
        if "probes" in answers:
            lines.append(f"Linear probes: the expression is read best at "
                         f"<b>{answers['probes']}</b>.")
        others = {answers.get("ablation"), answers.get("probes")} - {None}
        if others and answers["measure"] not in others:
            lines.append(f"<b>Where they disagree</b>: this measure ranks "
                         f"{answers['measure']} first; the ablation and the probes rank "
                         f"{' / '.join(sorted(others))}. They measure different things: "
                         "sensitivity to the features present, change of the prediction, "
                         "what a linear read-out can recover.")
        return "<br>".join(f"<small>{line}</small>" for line in lines)

    def set_probes(self, probes: Mapping[str, Mapping[str, float]]) -> None:
        """Draw ``linear_probes`` results: ``{layer: {"expression": R², "identity": R²}}``."""
        self.probes = probes
        layers = [layer for layer in TAP_NAMES if layer in probes]
        values = [probes[layer][target] for layer in layers for target in TARGETS_SHOWN]
        low = min([0.0, *values])  # a probe worse than the mean has R² < 0
        with self.figure.batch_update():
            for trace, target in zip(self.probe_lines, TARGETS_SHOWN, strict=True):
                trace.x = layers
                trace.y = [probes[layer][target] for layer in layers]
            self.figure.layout.yaxis3.range = (low - 0.05 * (1.0 - low), 1.0)
        self.reading.value = self.text()


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
        self.net = check_net(net)
        self.images = check_images(images, net).detach().cpu()
        self.size = net.config.image_size
        labels = _labels(self.images, names)
        self._style = label_style(["face", "layer", "rank", "go to rank"])
        self.face = W.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                               description="face", tooltip="the face the network reads",
                               style=self._style, layout=control_layout())
        self.layer = W.Dropdown(options=list(TAP_NAMES), value="pool3", description="layer",
                                tooltip="the backbone layer whose channels are shown",
                                style=self._style, layout=control_layout())
        self.redraw = Redraw(self.update)
        self.channel: W.IntSlider | None = None
        # a number box beside the slider: one step of a 256-channel slider is under a pixel
        self.rank_box = W.BoundedIntText(0, min=0, max=1, description="go to rank",
                                         tooltip="type a rank (0 = the busiest channel)",
                                         style=self._style, layout=control_layout())
        self.rank_box.observe(self._typed_rank, names="value")
        self.controls = W.VBox([self.face, self.layer])
        self._select_face()
        self._order_channels()
        # created with its data and title: nothing is sent before the page has drawn it
        self.figure = go.FigureWidget(
            data=[go.Image(z=to_numpy_image(self.images[self.face.value])),
                  go.Heatmap(z=self.feature_map(), colorscale="Inferno", opacity=opacity,
                             colorbar=dict(title=dict(text="activation")))],
            layout=go.Layout(height=420, margin=dict(l=10, r=10, t=40, b=10),
                             title=dict(text=self.title()),
                             xaxis=dict(visible=False), yaxis=dict(visible=False,
                                                                   scaleanchor="x")))
        self.face.observe(self.select, names="value")
        self.layer.observe(self.select_layer, names="value")
        self.repaint = RepaintOnDraw([self.figure])
        self.widget = flow_row([self.controls], [embed(self.figure), self.repaint],
                               plots_min="320px")

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the heat map shows the slider's current value (seconds)."""
        self.redraw.wait(timeout)

    def _rank_slider(self, channels: int, value: int) -> W.IntSlider:
        slider = W.IntSlider(value, min=0, max=channels - 1, description="rank",
                             tooltip="channels ranked by spatial spread, 0 = the busiest; "
                                     "arrow keys step one channel",
                             style=self._style, layout=control_layout())
        slider.observe(self.redraw.request, names="value")
        slider.observe(self._slid_rank, names="value")
        return slider

    def _slid_rank(self, change: dict) -> None:
        if self.rank_box.value != change["new"]:
            self.rank_box.value = change["new"]

    def _typed_rank(self, change: dict) -> None:
        if self.channel is not None and self.channel.value != change["new"]:
            self.channel.value = change["new"]  # observed: the slider asks for the redraw

    def _select_face(self) -> None:
        image = self.images[self.face.value][None].to(next(self.net.parameters()).device)
        with evaluating(self.net), torch.no_grad():
            self._features = {k: v[0].cpu() for k, v in self.net.backbone(image).items()}

    def _order_channels(self) -> None:
        """Rank the layer's channels; a new range gets a new slider.

        The browser's slider (noUiSlider) keeps the range it was drawn with when only ``max``
        changes, so its End key would stop at the old maximum: the slider is replaced instead.
        """
        # the layer the order is for: a redraw reads it, not the menu, which changes before
        # select_layer holds the lock (the menu's new layer with the old order: out of range)
        self._layer = self.layer.value
        act = self._features[self._layer]  # (C, h, w)
        self.order = top_channels(act, act.shape[0])
        count = act.shape[0]
        if self.channel is None or self.channel.max != count - 1:
            value = 0 if self.channel is None else min(self.channel.value, count - 1)
            old, self.channel = self.channel, self._rank_slider(count, value)
            self.rank_box.max = count - 1
            self.rank_box.value = value
            # the slider stays last: the number box sits above it
            self.controls.children = [self.face, self.layer, self.rank_box, self.channel]
            if old is not None:
                old.unobserve(self.redraw.request, names="value")
                old.unobserve(self._slid_rank, names="value")
                old.close()

    @property
    def channel_index(self) -> int:
        """The chosen channel's index within its layer."""
        return self.order[self.channel.value]

    def feature_map(self) -> np.ndarray:
        """(S, S) the chosen channel, bilinearly upsampled to the image size."""
        act = self._features[self._layer][self.channel_index]
        up = F.interpolate(act[None, None], size=(self.size, self.size), mode="bilinear",
                           align_corners=False)
        return up[0, 0].numpy()

    def title(self) -> str:
        """The figure's title: the layer, the channel's own index, the map's size and maximum."""
        act = self._features[self._layer]
        c = self.channel_index
        return (f"{self._layer} channel {c} of {act.shape[0]} "
                f"({act.shape[1]}x{act.shape[2]} map), max {float(act[c].max()):.2f}")

    def update(self, _change: object = None) -> None:
        """Redraw the heat map for the chosen face, layer and channel."""
        with self.figure.batch_update():
            self.figure.data[1].z = self.feature_map()
            self.figure.layout.title.text = self.title()

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


__all__ = ["TapMixer", "LayerAttributionView", "FeatureMapViewer", "RepaintOnDraw",
           "plot_layer_shares", "plot_probes"]
