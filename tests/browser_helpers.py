"""Drive a real JupyterLab in headless Chromium (Playwright) for tests/notebooks/test_browser.py.

Nothing leaves the machine: JupyterLab listens on 127.0.0.1 with a random token, the browser is
Debian's ``chromium`` (Playwright's own browser download is not used) and every request to a
host other than the server is aborted.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

#: The notebook in view (other panels are hidden, not removed).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: A laptop screen: what the widgets must fit, with JupyterLab's side panel open.
VIEWPORT = {"width": 1280, "height": 720}

#: Chromium flags: headless, no sandbox (containers, root), no GPU, nothing fetched on its own.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def missing(reason: str) -> None:
    """Skip, or fail where the browser tests are required (CI sets E2FAR_REQUIRE_BROWSER=1)."""
    import pytest

    if os.environ.get("E2FAR_REQUIRE_BROWSER", "0") not in ("", "0"):
        pytest.fail(f"E2FAR_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """Debian's chromium (``E2FAR_CHROMIUM`` overrides), or None when it is not installed."""
    for candidate in (os.environ.get("E2FAR_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], log: Path, timeout: float = 120.0):
    """A JupyterLab server serving ``root``; yields ``(base_url, token)``."""
    port, token = free_port(), secrets.token_hex(16)
    state = root.parent / "jupyter-state"  # settings, workspaces, runtime: never the user's
    # no "get notified about Jupyter news?" toast over the widgets (and no news fetched)
    news = state / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**env, "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime")}
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False",
            "--LabApp.extension_manager=readonly", "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # CI runs as root
    base = f"http://127.0.0.1:{port}"
    with open(log, "w") as handle:
        server = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def launch(playwright, executable: str):
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def open_notebook(browser, base: str, token: str, name: str):
    """A new page showing notebook ``name`` with its kernel started; other hosts blocked.

    The page is a 1280 x 720 laptop screen (:data:`VIEWPORT`) with the file browser open in
    the left side panel, as a student would have it.
    """
    page = browser.new_page(viewport=VIEWPORT)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
               else route.abort())
    # reset: a fresh workspace, so that notebooks opened by earlier pages do not come back
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(f"{PANEL} .jp-Toolbar-kernelName:has-text('Python 3')",
                           timeout=120_000)
    open_side_panel(page)
    return page


def open_side_panel(page) -> float:
    """Open the file browser in JupyterLab's left side panel (if closed); its width in px."""
    panel = page.locator("#jp-left-stack")
    if not panel.is_visible():
        page.click(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']")
        panel.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(500)  # the notebook panel takes the width that is left
    return panel.bounding_box()["width"]


def shutdown_kernels(base: str, token: str) -> None:
    """Stop every kernel of the server (a closed page leaves its kernel running)."""
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as reply:
        kernels = json.load(reply)
    for kernel in kernels:
        request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def run_all_cells(page, timeout_s: float) -> float:
    """Run → Run All Cells from the menu bar; wait until every code cell has run. Seconds."""
    start = time.perf_counter()
    page.click(".lm-MenuBar-item:has(.lm-MenuBar-itemLabel:text-is('Run'))")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    # every code cell gets a number ([3]:), none queued or running ([*]:); or a cell failed
    # (Run All stops there)
    page.wait_for_function(
        """(panel) => {
            const outputs = [...document.querySelectorAll(panel + ' .jp-OutputArea-output')];
            if (outputs.some(o => o.textContent.includes('Traceback (most recent call last)')))
                return true;
            const prompts = [...document.querySelectorAll(
                panel + ' .jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", arg=PANEL, timeout=timeout_s * 1000, polling=500)
    return time.perf_counter() - start


def error_outputs(page) -> list[str]:
    """Texts of error outputs (tracebacks) in the open notebook."""
    return page.eval_on_selector_all(
        f"{PANEL} .jp-OutputArea-output:has-text('Traceback (most recent call last)')",
        "nodes => nodes.map(n => n.textContent.slice(0, 2000))")


def slider(page, label: str):
    """The ipywidgets slider whose description is ``label``."""
    return page.locator(f"{PANEL} .widget-slider",
                        has=page.locator(f".widget-label:text-is('{label}')"))


def all_sliders(page):
    """Every ipywidgets slider of the open notebook."""
    return page.locator(f"{PANEL} .widget-slider")


def figures_beside(page, label: str):
    """The plotly figures in the innermost widget box holding slider ``label``."""
    boxes = page.locator(f"{PANEL} .widget-box",
                         has=page.locator(f".widget-label:text-is('{label}')"))
    return boxes.filter(has=page.locator(".js-plotly-plot")).last.locator(".js-plotly-plot")


def readout(slider_locator) -> float:
    return float(slider_locator.locator(".widget-readout").inner_text())


def label_report(page) -> list[dict]:
    """For every widget description label of the open notebook: its text, tooltip, whether it
    belongs to a slider, whether it is cut (``scrollWidth > clientWidth``: the text overflows
    its box and shows an ellipsis) and whether it lies inside the notebook's visible width."""
    return page.eval_on_selector_all(
        f"{PANEL} .widget-inline-hbox .widget-label",
        """(labels) => {
            const notebook = document.querySelector(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook').getBoundingClientRect();
            return labels.filter(l => l.textContent.trim() !== '').map(l => {
                const box = l.getBoundingClientRect();
                const row = l.closest('.widget-inline-hbox');
                const control = row.querySelector('select, input, .slider-container');
                return {text: l.textContent,
                        tooltip: row.title || l.title || (control && control.title) || '',
                        slider: l.closest('.widget-slider') !== null,
                        cut: l.scrollWidth > l.clientWidth, width: box.width,
                        inside: box.left >= notebook.left - 1 && box.right <= notebook.right + 1};
            });
        }""")


def plot_report(page) -> list[dict]:
    """For every plotly figure of the open notebook: its drawn width (the SVG's), the width of
    its box, and the notebook's right edge, in px; whether it is a widget (a FigureWidget)."""
    return page.eval_on_selector_all(
        f"{PANEL} .js-plotly-plot",
        """(plots) => {
            const notebook = document.querySelector(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook').getBoundingClientRect();
            return plots.map(p => {
                const svg = p.querySelector('.main-svg').getBoundingClientRect();
                const box = p.parentElement.getBoundingClientRect();
                const title = p.querySelector('.gtitle, .annotation-text');
                return {title: title ? title.textContent : '', drawn: svg.width,
                        widget: p.closest('.jupyter-widgets') !== null,
                        left: svg.left, right: svg.right, box: box.width,
                        notebook: notebook.right};
            });
        }""")


def slider_geometry(slider_locator) -> dict:
    """Boxes (x, y, width, height in px) of a slider's handle, track and readout, and the
    right edge of the notebook, after scrolling the slider into view."""
    slider_locator.scroll_into_view_if_needed()
    return slider_locator.evaluate(
        """(s) => {
            const box = (e) => { const r = e.getBoundingClientRect();
                                 return {x: r.x, y: r.y, width: r.width, height: r.height}; };
            const notebook = s.closest('.jp-Notebook').getBoundingClientRect();
            return {handle: box(s.querySelector('.noUi-handle')),
                    track: box(s.querySelector('.noUi-target')),
                    readout: box(s.querySelector('.widget-readout')),
                    right: Math.min(notebook.right, window.innerWidth)};
        }""")


def drag(page, slider_locator, share: float = 0.3) -> None:
    """Grab the slider's handle with the mouse and drag it right by ``share`` of its track."""
    geometry = slider_geometry(slider_locator)
    handle, track = geometry["handle"], geometry["track"]
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + share * track["width"], y, steps=8)
    page.mouse.up()


def press(slider_locator, key: str, times: int) -> None:
    """Focus the slider's handle and press ``key`` (e.g. ArrowRight) ``times`` times."""
    handle = slider_locator.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        handle.press(key)
        time.sleep(0.05)


def pixel_difference(a: bytes, b: bytes, threshold: int = 24) -> float:
    """Share of pixels whose colour moved by more than ``threshold`` (0..255) in any channel."""
    import numpy as np
    from PIL import Image

    first = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int16)
    second = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)
    if first.shape != second.shape:
        return 1.0
    return float((np.abs(first - second).max(-1) > threshold).mean())


def screenshot_when_changed(locator, before: bytes, path: Path, timeout_s: float = 60.0,
                            settle_s: float = 1.0) -> bytes:
    """Screenshots of ``locator`` until it differs from ``before`` and stops changing."""
    deadline = time.monotonic() + timeout_s
    last = before
    while time.monotonic() < deadline:
        time.sleep(settle_s)
        shot = locator.screenshot(path=str(path))
        if pixel_difference(shot, before) > 0 and pixel_difference(shot, last) == 0:
            return shot  # changed, and the same as a moment ago: the redraw is done
        last = shot
    return last


def visible_area(page) -> dict:
    """The part of the screen where the notebook's cells show (below the toolbar)."""
    return page.evaluate(
        """(panel) => {
            const p = document.querySelector(panel + ' .jp-WindowedPanel-outer')
                || document.querySelector(panel + ' .jp-Notebook');
            const r = p.getBoundingClientRect();
            return {top: Math.max(r.top, 0), bottom: Math.min(r.bottom, window.innerHeight),
                    left: r.left, right: Math.min(r.right, window.innerWidth)};
        }""", PANEL)


@contextmanager
def notebook_run(browser, lab: tuple[str, str], name: str, timeout_s: float):
    """A page with notebook ``name`` open in the JupyterLab ``lab`` = (base, token) and every
    cell run, with no error output; afterwards the page is closed and its kernel stopped."""
    base, token = lab
    started = time.perf_counter()
    opened = open_notebook(browser, base, token, name)
    try:
        seconds = run_all_cells(opened, timeout_s)
        print(f"\n{name}: all cells ran in {seconds:.1f} s "
              f"({time.perf_counter() - started:.1f} s with the page)")
        assert error_outputs(opened) == []
        yield opened
    finally:
        opened.close()
        shutdown_kernels(base, token)
