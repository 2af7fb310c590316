"""Interactive widgets (ipywidgets + plotly FigureWidget), updated in place.

Each widget is a small class: its sliders call :meth:`update`, which changes the figure's data
without rebuilding it. Tests call ``update`` directly, so the logic runs headless.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as W
import torch

from .morphable_model import MorphableModel
from .viz import mesh_figure

DEFAULT_BLENDSHAPES = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R",
                       "browInnerUp_L", "mouthPucker", "cheekPuff_L")


class ModelExplorer:
    """Sliders over identity coefficients and named blend shapes driving a 3D mesh.

    Args:
        model: the morphable model.
        num_identity: how many identity sliders (the largest modes), in std units ±3.
        blendshapes: named blend shapes to slide in [0, 1] (models without blend shapes get
            sliders over their first expression coefficients instead).
        show_landmarks: draw the 68 landmarks as dots.
    """

    def __init__(self, model: MorphableModel, num_identity: int = 5,
                 blendshapes: Sequence[str] = DEFAULT_BLENDSHAPES,
                 show_landmarks: bool = True) -> None:
        self.model = model.cpu()
        self.show_landmarks = show_landmarks
        layout = W.Layout(width="330px")
        self.id_sliders = [W.FloatSlider(0.0, min=-3, max=3, step=0.1, description=f"id {k}",
                                         continuous_update=True, layout=layout)
                           for k in range(min(num_identity, model.num_id))]
        if model.num_blendshapes:
            names = [n for n in blendshapes if n in model.blendshape_names]
            self.exp_names = names
            self.exp_sliders = [W.FloatSlider(0.0, min=0, max=1, step=0.05, description=n,
                                              layout=layout) for n in names]
        else:
            self.exp_names = [f"exp {j}" for j in range(min(5, model.num_exp))]
            self.exp_sliders = [W.FloatSlider(0.0, min=-3, max=3, step=0.1, description=n,
                                              layout=layout) for n in self.exp_names]
        vertices, landmarks = self.shape()
        self.figure = mesh_figure(vertices[0], model.triangles,
                                  landmarks=landmarks[0] if show_landmarks else None,
                                  widget=True, height=450)
        for slider in self.id_sliders + self.exp_sliders:
            slider.observe(self.update, names="value")
        reset = W.Button(description="reset")
        reset.on_click(self.reset)
        self.widget = W.HBox([W.VBox([W.HTML("<b>identity (std units)</b>"), *self.id_sliders,
                                      W.HTML("<b>expression</b>"), *self.exp_sliders, reset]),
                              self.figure])

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current (1, K) identity and (1, E) expression coefficients."""
        m = self.model
        a_id = torch.zeros(1, m.num_id)
        for k, s in enumerate(self.id_sliders):
            a_id[0, k] = s.value
        if m.num_blendshapes:
            w = torch.zeros(1, m.num_blendshapes)
            for name, s in zip(self.exp_names, self.exp_sliders, strict=True):
                w[0, m.blendshape_names.index(name)] = s.value
            a_exp = m.blendshapes_to_exp(w)
        else:
            a_exp = torch.zeros(1, m.num_exp)
            for j, s in enumerate(self.exp_sliders):
                a_exp[0, j] = s.value
        return a_id, a_exp

    def shape(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (1, V, 3) and landmarks (1, 68, 3) for the current sliders, mm."""
        a_id, a_exp = self.coefficients()
        with torch.no_grad():
            return self.model(a_id, a_exp), self.model.landmark_points(a_id, a_exp)

    def update(self, _change: object = None) -> None:
        """Recompute the mesh and move the figure's vertices in place."""
        vertices, landmarks = self.shape()
        v = vertices[0].numpy()
        with self.figure.batch_update():
            mesh = self.figure.data[0]
            mesh.x, mesh.y, mesh.z = v[:, 0], v[:, 1], v[:, 2]
            if self.show_landmarks and len(self.figure.data) > 1:
                lm = landmarks[0][torch.isfinite(landmarks[0]).all(1)].numpy()
                dots = self.figure.data[1]
                dots.x, dots.y, dots.z = lm[:, 0], lm[:, 1], lm[:, 2] + 1.0

    def reset(self, _button: object = None) -> None:
        for s in self.id_sliders + self.exp_sliders:
            s.value = 0.0


def enable_colab_widgets() -> bool:
    """On Colab, turn on the custom widget manager plotly's FigureWidget needs. True if done."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    output.enable_custom_widget_manager()
    return True


class LossCurve:
    """A live plot of training: pass :meth:`callback` to ``train(..., callback=...)``.

    Training loss terms (log scale) on the left, validation vertex RMSE (mm) on the right; the
    figure is updated in place each time the training loop logs a row.
    """

    TERMS = ("total", "neutral", "expression", "landmarks")

    def __init__(self, height: int = 320) -> None:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        base = make_subplots(rows=1, cols=2,
                             subplot_titles=("training loss", "validation RMSE (mm)"))
        for term in self.TERMS:
            base.add_trace(go.Scatter(x=[], y=[], mode="lines", name=term), row=1, col=1)
        for key in ("total", "neutral", "expression"):
            base.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=f"val {key}"),
                           row=1, col=2)
        base.update_yaxes(type="log", row=1, col=1)
        base.update_layout(height=height, margin=dict(l=40, r=10, t=30, b=30))
        self.figure = go.FigureWidget(base)
        self.rows: list[tuple[int, dict[str, float]]] = []

    def callback(self, step: int, row: dict[str, float]) -> None:
        """Record one logged row and redraw the curves."""
        self.rows.append((step, dict(row)))
        series = {}
        for name in [f"loss_{t}" for t in self.TERMS] + [
                f"val_{k}_mm" for k in ("total", "neutral", "expression")]:
            pts = [(s, r[name]) for s, r in self.rows if name in r and r[name] == r[name]]
            series[name] = pts
        with self.figure.batch_update():
            for trace, name in zip(self.figure.data, series, strict=True):
                trace.x = [s for s, _ in series[name]]
                trace.y = [v for _, v in series[name]]
