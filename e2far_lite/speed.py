"""Timing helpers and the speed figures of ``python -m e2far_lite benchmark --speed``.

Every figure is the median of repeated timings after warm-up, on the current device.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from .data import DataConfig, SyntheticFaces
from .devices import synchronize
from .morphable_model import MorphableModel


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 5,
              warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def render_throughput(model: MorphableModel, device: torch.device, batch: int = 64,
                      image_size: int = 128, repeats: int = 5) -> dict[str, float]:
    """Images per second for whole synthetic samples (draw + render + augment) and for the
    renderer alone (rasterize + shade of ready camera-frame meshes)."""
    model = model.to(device)
    faces = SyntheticFaces(model, 10**6, seed=0, config=DataConfig(image_size=image_size),
                           device=device)
    starts = iter(range(0, 10**6, batch))

    def fresh_batch() -> None:  # new items each call: nothing is cached between calls
        start = next(starts)
        faces.batch(range(start, start + batch))

    full = time_call(fresh_batch, device, repeats)
    # renderer alone on fixed meshes
    from .camera import to_camera
    from .renderer import Renderer
    from .shading import skin_albedo

    g = torch.Generator().manual_seed(0)
    a_id = torch.randn(batch, model.num_id, generator=g).to(device)
    verts = model(a_id, torch.zeros(batch, model.num_exp, device=device))
    angles = (torch.rand(batch, 3, generator=g).to(device) - 0.5)
    pts = to_camera(verts, angles, torch.tensor([0.0, 0.0, 1000.0], device=device).expand(batch, 3))
    focal = torch.full((batch,), image_size * 1000 / 230.0, device=device)
    centre = torch.full((batch, 2), image_size / 2, device=device)
    albedo = skin_albedo(model.mean, batch).to(device)
    renderer = Renderer(image_size)
    render_only = time_call(lambda: renderer.render(pts, model.triangles, focal, centre, albedo),
                            device, repeats)
    return {"samples_per_s": batch / full, "render_per_s": batch / render_only}
