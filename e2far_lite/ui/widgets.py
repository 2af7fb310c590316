"""Interactive widgets (ipywidgets + plotly FigureWidget), updated in place.

Each widget is a small class: its sliders ask for a redraw, which changes the figure's data
without rebuilding it. Tests call ``update`` directly, so the logic runs headless.

Layout flows: controls and plots sit in a wrapping row whose parts have flexible widths and a
minimum (:func:`flow_row`), so a widget fits a 1280 x 720 laptop screen with JupyterLab's side
panel open, or Colab, and falls to one column below that. Slider labels get a column wide
enough for the longest one (:func:`label_style`) and their full text as a tooltip. A slow
redraw never queues up a burst of slider events: :class:`Redraw` draws only the latest value.
"""

from __future__ import annotations

import math
import threading
import traceback
from collections.abc import Callable, Sequence

import anywidget
import ipywidgets as W
import torch
import traitlets

from ..model.morphable_model import MorphableModel
from .plots import mesh_figure

DEFAULT_BLENDSHAPES = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R",
                       "browInnerUp_L", "mouthPucker", "cheekPuff_L")

#: plotly config for figures embedded in a notebook: the mouse wheel scrolls the page instead of
#: zooming the 3D view (drag to turn, the toolbar to zoom); plots follow their box's width.
PLOT_CONFIG = {"scrollZoom": False, "responsive": True, "displaylogo": False}


def label_style(labels: Sequence[str]) -> dict[str, str]:
    """An ipywidgets ``style`` whose label column fits the longest of ``labels``.

    Widths are in ``ch`` (the width of "0" in the widget font); 1.1 ch per character plus 1 ch
    leaves room for wide letters such as "m" and "W" (``mouthLowerDown_L`` gets 19.6 ch).
    """
    longest = max((len(label) for label in labels), default=4)
    return {"description_width": f"{1.1 * longest + 1:.1f}ch"}


def control_layout() -> W.Layout:
    """Layout of one control in a control column: the column's full width."""
    return W.Layout(width="100%", min_width="0")


def flow_row(controls: Sequence[W.Widget], plots: Sequence[W.Widget], controls_min: str = "260px",
             controls_max: str = "460px", plots_min: str = "340px") -> W.Box:
    """Controls (a column) beside plots (a column), wrapping to one column when narrow.

    Args:
        controls: the widgets of the control column, top to bottom.
        plots: the plots, top to bottom; they take the width the controls leave.
        controls_min, controls_max: CSS widths of the control column.
        plots_min: CSS minimum width of the plot column (below it, the row wraps).
    """
    column = W.VBox(list(controls), layout=W.Layout(flex="1 1 300px", min_width=controls_min,
                                                     max_width=controls_max))
    figures = W.VBox([*plots, FitPlots()], layout=W.Layout(flex="3 1 420px", min_width=plots_min))
    return W.Box([column, figures], layout=W.Layout(display="flex", flex_flow="row wrap",
                                                    align_items="flex-start", width="100%"))


class FitPlots(anywidget.AnyWidget):
    """An invisible widget that makes the plotly figures of its box take the box's width.

    A ``FigureWidget`` is drawn before the notebook has laid its box out, so plotly cannot
    measure it and falls back to 700 px, too wide beside controls on a laptop and too narrow on
    a wide screen. Put one of these (0 px high) in the same box: while a figure there is drawn
    at another width than its box (checked every ``check_ms`` for ``watch_s`` seconds after the
    box's width last changed, on first layout, side panel opened or closed, window resized, or
    after the box scrolled into view), it fires the browser's ``resize`` event, on which
    figures with ``responsive`` in their config (:data:`PLOT_CONFIG`) measure their box again.
    """

    _esm = """
    function render({ model, el }) {
      el.style.width = "100%";
      el.style.height = "0px";
      let timer = null, until = 0, width = 0;
      const misfit = () => {
        const box = el.closest(".widget-box") || el.parentElement;
        if (!box) return false;
        return [...box.querySelectorAll(".js-plotly-plot")].some((plot) => {
          const svg = plot.querySelector(".main-svg");
          const room = plot.parentElement.getBoundingClientRect().width;
          return svg && room > 0 && Math.abs(svg.getBoundingClientRect().width - room) > 2;
        });
      };
      const check = () => {
        if (misfit()) window.dispatchEvent(new Event("resize"));
        timer = Date.now() < until ? setTimeout(check, model.get("check_ms")) : null;
      };
      const watch = () => {
        until = Date.now() + 1000 * model.get("watch_s");
        if (timer === null) timer = setTimeout(check, 50);
      };
      const sizes = new ResizeObserver((entries) => {
        const now = entries[0].contentRect.width;
        if (now > 0 && Math.abs(now - width) >= 1) { width = now; watch(); }
      });
      // JupyterLab skips the layout of cells out of view: check again when this one shows
      const views = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) watch();
      });
      sizes.observe(el);
      views.observe(el);
      return () => { sizes.disconnect(); views.disconnect(); clearTimeout(timer); };
    }
    export default { render };
    """
    check_ms = traitlets.Int(500).tag(sync=True)
    watch_s = traitlets.Float(120.0).tag(sync=True)


def embed(figure) -> object:
    """Give a plotly ``FigureWidget`` the notebook config (:data:`PLOT_CONFIG`); returns it."""
    figure._config = {**figure._config, **PLOT_CONFIG}
    return figure


class Redraw:
    """Draw only the latest state of the controls, however fast their events come.

    A slider held on an arrow key sends an event every few tens of milliseconds, faster than a
    redraw of a network's prediction (100 - 200 ms). Drawing each one in turn makes the last
    redraw land seconds after the key is released. Here an event only marks a redraw as wanted;
    one worker thread draws, and when it is done draws once more if marks came meanwhile,
    reading the controls' values at that moment. A burst of 20 events costs two redraws, and the
    last value is always drawn.

    Args:
        draw: the redraw, reading the controls itself. It runs holding :attr:`lock`; other
            handlers that change what it reads (another face, another layer) hold it too.
    """

    def __init__(self, draw: Callable[[], None]) -> None:
        self.draw = draw
        self.lock = threading.RLock()
        self.draws = 0  # redraws done, for tests and curiosity
        self._state = threading.Condition()
        self._wanted = False
        self._running = False
        self._error: BaseException | None = None

    def request(self, _change: object = None) -> None:
        """Ask for a redraw (an ipywidgets ``observe`` handler); returns at once."""
        with self._state:
            self._wanted = True
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._work, name="e2far-redraw", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._state:
                if not self._wanted:
                    self._running = False
                    self._state.notify_all()
                    return
                self._wanted = False
            try:
                with self.lock:
                    self.draw()
                    self.draws += 1
            except Exception as err:  # shown in the notebook; the next event draws again
                self._error = err
                traceback.print_exc()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until no redraw is running or wanted (seconds); re-raise a redraw's error."""
        with self._state:
            if not self._state.wait_for(lambda: not self._running, timeout):
                raise TimeoutError(f"redraw still running after {timeout} s")
            error, self._error = self._error, None
        if error is not None:
            raise error


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
        id_names = [f"id {k}" for k in range(min(num_identity, model.num_id))]
        if model.num_blendshapes:
            self.exp_names = [n for n in blendshapes if n in model.blendshape_names]
            exp_range = dict(min=0.0, max=1.0, step=0.05)
        else:
            self.exp_names = [f"exp {j}" for j in range(min(5, model.num_exp))]
            exp_range = dict(min=-3.0, max=3.0, step=0.1)
        style = label_style(id_names + self.exp_names)
        self.id_sliders = [W.FloatSlider(0.0, min=-3, max=3, step=0.1, description=name,
                                         tooltip=f"identity mode {k} (std units)", style=style,
                                         layout=control_layout())
                           for k, name in enumerate(id_names)]
        self.exp_sliders = [W.FloatSlider(0.0, **exp_range, description=name, tooltip=name,
                                          style=style, layout=control_layout())
                            for name in self.exp_names]
        vertices, landmarks = self.shape()
        self.figure = embed(mesh_figure(vertices[0], model.triangles,
                                        landmarks=landmarks[0] if show_landmarks else None,
                                        widget=True, height=450))
        self.redraw = Redraw(self.update)
        for slider in self.id_sliders + self.exp_sliders:
            slider.observe(self.redraw.request, names="value")
        reset = W.Button(description="reset", tooltip="every slider back to 0")
        reset.on_click(self.reset)
        self.widget = flow_row([W.HTML("<b>identity (std units)</b>"), *self.id_sliders,
                                W.HTML("<b>expression</b>"), *self.exp_sliders, reset],
                               [self.figure])

    @property
    def sliders(self) -> list[W.FloatSlider]:
        """Every slider, identity first."""
        return self.id_sliders + self.exp_sliders

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the figure shows the sliders' current values (seconds)."""
        self.redraw.wait(timeout)

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
        """Every slider back to 0 (the mean face)."""
        for s in self.sliders:
            s.value = 0.0


def enable_colab_widgets() -> bool:
    """On Colab, turn on the custom widget manager plotly's FigureWidget needs. True if done."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    output.enable_custom_widget_manager()
    return True


def log_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Tick values for a log axis over [low, high] (both > 0): at most ``most``, evenly spread.

    Tries 1-2-5 in every decade, then 1-3, then the decades, then every second (third, ...)
    decade, and keeps the first set with at most ``most`` ticks inside the range (at least two
    where the range holds two). Plotly's own choice on a narrow plot labels every digit of
    each decade, which is what this avoids. A range narrower than one 1-2-5 step gets its
    two ends, to two significant digits.
    """
    if not (0 < low <= high):
        raise ValueError(f"low, high: expected 0 < low <= high, got {low}, {high}")
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def inside(mantissas: Sequence[float], every: int = 1) -> list[float]:
        values = [m * 10.0 ** d for d in range(first, last + 1) if (d - first) % every == 0
                  for m in mantissas]
        return [v for v in values if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]

    candidates = [inside((1, 2, 5)), inside((1, 3)), inside((1,))]
    candidates += [inside((1,), every) for every in range(2, last - first + 2)]
    for ticks in candidates:
        if 2 <= len(ticks) <= most:
            return ticks
    if len(candidates[0]) >= 2:  # more decades than ``most``: every n-th decade
        return next(t for t in candidates[3:] if len(t) <= most)
    return sorted({float(f"{low:.2g}"), float(f"{high:.2g}")})  # less than a 1-2-5 step


def _tick_text(value: float) -> str:
    return f"{value:g}"


class LossCurve:
    """A live plot of training: pass :meth:`callback` to ``train(..., callback=...)``.

    Left, log scale: the training loss terms against the step, in mm² (``total``, ``neutral``,
    ``expression``: mean squared vertex distance) and %² (``landmarks``: squared 2D landmark
    error in percent of the image side). Right: the validation vertex RMSE in mm. The legend
    sits to the right of both plots, grouped by panel; the log axis gets at most six labelled
    ticks (:func:`log_ticks`). Until the first validation arrives (a resumed run validates
    only every ``val_every`` steps) the right panel says so instead of showing an empty axis.
    The figure is updated in place each time the loop logs a row; display :attr:`widget` (the
    figure at the notebook's width).

    Args:
        height: of the figure, px (its width follows the notebook).
    """

    TERMS = ("total", "neutral", "expression", "landmarks")
    VALIDATION = ("total", "neutral", "expression")

    def __init__(self, height: int = 360) -> None:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        base = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                             subplot_titles=("training loss", "validation"))
        for term in self.TERMS:
            base.add_trace(go.Scatter(x=[], y=[], mode="lines", name=term, legendgroup="train",
                                      legendgrouptitle_text="training loss"), row=1, col=1)
        for key in self.VALIDATION:
            base.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=key,
                                      legendgroup="val", legendgrouptitle_text="validation"),
                           row=1, col=2)
        base.update_xaxes(title_text="training step", rangemode="tozero")
        base.update_yaxes(title_text="loss (mm²; landmarks %²)", type="log", row=1, col=1)
        # until the first validation: a note, not an empty axis with made-up ticks
        base.update_xaxes(showticklabels=False, row=1, col=2)
        base.update_yaxes(title_text="vertex RMSE (mm)", rangemode="tozero", row=1, col=2,
                          showticklabels=False)
        base.add_annotation(text="waiting for the first validation", showarrow=False,
                            x=0.5, y=0.5, xref="x2 domain", yref="y2 domain", name="waiting")
        base.update_layout(height=height, margin=dict(l=70, r=10, t=40, b=50),
                           legend=dict(x=1.02, xanchor="left", y=1.0, yanchor="top",
                                       groupclick="toggleitem"))
        self.figure = embed(go.FigureWidget(base))
        self.widget = W.VBox([self.figure, FitPlots()], layout=W.Layout(width="100%"))
        self.rows: list[tuple[int, dict[str, float]]] = []

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """``{row key: [(step, value), ...]}`` of every plotted curve, NaNs left out."""
        keys = [f"loss_{t}" for t in self.TERMS] + [f"val_{k}_mm" for k in self.VALIDATION]
        return {key: [(s, r[key]) for s, r in self.rows if key in r and r[key] == r[key]]
                for key in keys}

    def callback(self, step: int, row: dict[str, float]) -> None:
        """Record one logged row and redraw the curves."""
        self.rows.append((step, dict(row)))
        series = self.series()
        losses = [v for key in series if key.startswith("loss_") for _, v in series[key] if v > 0]
        with self.figure.batch_update():
            for trace, key in zip(self.figure.data, series, strict=True):
                trace.x = [s for s, _ in series[key]]
                trace.y = [v for _, v in series[key]]
            if any(series[f"val_{k}_mm"] for k in self.VALIDATION):
                self.figure.layout.xaxis2.showticklabels = True
                self.figure.layout.yaxis2.showticklabels = True
                self.figure.layout.annotations = [a for a in self.figure.layout.annotations
                                                  if a.name != "waiting"]
            if losses:
                ticks = log_ticks(min(losses), max(losses))
                self.figure.layout.yaxis.update(tickmode="array", tickvals=ticks,
                                                ticktext=[_tick_text(t) for t in ticks])
