"""Timing helpers and the speed figures of ``python -m e2far_lite benchmark --speed``.

Every figure is the median of repeated timings after warm-up, on the current device:

    rendering       images/s of whole synthetic samples, and of the renderer alone
    training        images/s of whole training steps (render a fresh batch, forward, backward,
                    AdamW), and of the network part alone (what a cached pool costs)
    inference       ms per image at batch 1 and batch 64 (eval mode, no_grad), MACs, and the
                    achieved GFLOP/s (2 MACs x images/s at batch 64) against the device's peak
    peak            GFLOP/s of one large float32 matmul (TF32 too on CUDA; bf16 on CUDA and
                    on a CPU that multiplies bf16 natively)

:func:`speed_report` runs them all, with :class:`~e2far_lite.nets.MobileNetV1` (3DDFA_V2's
regressor, 120 px) timed beside E2FARNet; :func:`format_report` prints it as a table.
On CUDA, convolutions may run in TF32 (``torch.backends.cudnn.allow_tf32`` is on by default),
so a network can beat the float32 matmul peak; the TF32 peak is printed for that comparison.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..devices import cpu_has_fast_bf16, describe, synchronize
from ..model.morphable_model import MorphableModel
from ..nets.complexity import count_macs, count_parameters
from ..nets.folding import for_inference
from ..nets.mobilenet import INPUT_SIZE, MobileNetV1
from ..nets.network import E2FARNet
from ..synth.faces import DataConfig, SyntheticFaces
from ..train.configs import TrainConfig, get_config
from ..train.loop import amp_dtype, make_optimizer, train_step
from ..train.losses import MultiTaskLoss


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
    # renderer alone on fixed meshes: the backend SyntheticFaces uses, and the tensor reference
    from ..render.camera import to_camera
    from ..render.renderer import Renderer
    from ..render.shading import skin_albedo

    g = torch.Generator().manual_seed(0)
    a_id = torch.randn(batch, model.num_id, generator=g).to(device)
    verts = model(a_id, torch.zeros(batch, model.num_exp, device=device))
    angles = (torch.rand(batch, 3, generator=g).to(device) - 0.5)
    pts = to_camera(verts, angles, torch.tensor([0.0, 0.0, 1000.0], device=device).expand(batch, 3))
    focal = torch.full((batch,), image_size * 1000 / 230.0, device=device)
    centre = torch.full((batch, 2), image_size / 2, device=device)
    albedo = skin_albedo(model.mean, batch).to(device)
    figures = {"samples_per_s": batch / full}
    for key, backend in (("render_per_s", "auto"), ("render_torch_per_s", "torch")):
        renderer = Renderer(image_size, backend)
        seconds = time_call(lambda r=renderer: r.render(pts, model.triangles, focal, centre,
                                                        albedo), device, repeats)
        figures[key] = batch / seconds
    figures["backend"] = "numba" if Renderer(image_size).uses_kernel(pts) else "torch"
    return figures


def train_throughput(config: TrainConfig, device: torch.device, batch_size: int | None = None,
                     repeats: int = 3, warmup: int = 1,
                     model: MorphableModel | None = None) -> dict[str, float]:
    """Images per second of whole training steps of ``config``, and of their network part.

    A whole step is what :func:`~e2far_lite.train.train` does per step: get a batch (render a
    fresh one, or, for a config with ``train_pool``, read it from a rendered pool), forward,
    the loss, backward and AdamW, with the config's ``amp`` and ``channels_last``. The network
    part (forward + backward + AdamW on a ready batch) is what a step costs with no data to
    wait for.

    Args:
        config: a :class:`~e2far_lite.train.TrainConfig` (its net, loss, data and speed
            settings are used; its ``steps`` are not).
        device: where to train.
        batch_size: B, faces per step (default ``config.batch_size``).
        repeats: timed steps (the median is reported), after ``warmup`` untimed ones.
        model: the morphable model (default: the shipped one).

    Returns:
        ``images_per_s`` (whole steps), ``net_images_per_s`` (network part), ``step_s`` (median
        seconds of a whole step) and ``batch_size``.
    """
    size = batch_size or config.batch_size
    model = (model or MorphableModel.default()).to(device)
    torch.manual_seed(config.seed)
    net = E2FARNet(model.num_id, model.num_exp, config.net).to(device).train()
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    loss_fn = MultiTaskLoss(model, config.loss).to(device)
    optimizer = make_optimizer(net, config)
    autocast = amp_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    faces = SyntheticFaces(model, 10**9, seed=config.train_seed, config=config.data,
                           device=device)
    pool: dict[str, torch.Tensor] = {}
    if config.train_pool:  # like train(): a pool rendered once (untimed), read as uint8
        items = faces.batch(range(4 * size))
        pool = {k: v.cpu() for k, v in items.items()}
        pool["image"] = (pool["image"] * 255).round().to(torch.uint8)

    def net_step(batch: dict[str, torch.Tensor]) -> None:  # the training loop's own step
        train_step(net, loss_fn, optimizer, scaler, batch, config, autocast)

    steps = iter(range(10**9))
    last: dict[str, dict[str, torch.Tensor]] = {}

    def next_batch(step: int) -> dict[str, torch.Tensor]:
        if not pool:
            return faces.batch(range(step * size, step * size + size))
        index = torch.arange(step * size, step * size + size) % len(pool["image"])
        batch = {k: v[index].to(device) for k, v in pool.items()}
        batch["image"] = batch["image"].float() / 255
        return batch

    def whole_step() -> None:
        last["batch"] = next_batch(next(steps))
        net_step(last["batch"])

    # whole steps first (no sync between data and network, as in train.py: on a GPU the next
    # batch is drawn on the CPU while the last backward runs), then the network alone, warm
    whole = time_call(whole_step, device, repeats, warmup)
    network = time_call(lambda: net_step(last["batch"]), device, repeats, warmup=0)
    return {"batch_size": size, "images_per_s": size / whole,
            "net_images_per_s": size / network, "step_s": whole}


def inference_latency(net: nn.Module, image_size: int, device: torch.device,
                      batches: tuple[int, ...] = (1, 64), repeats: int = 5,
                      warmup: int = 1) -> dict[str, float]:
    """Milliseconds per image of eval-mode forward passes under ``no_grad``.

    Args:
        net: any module taking (B, 3, S, S) images; moved to ``device`` and put in eval mode.
        image_size: S in px.
        batches: batch sizes B to time.

    Returns:
        ``{"ms_per_image_b1": ..., "ms_per_image_b64": ...}``, one key per batch size.
    """
    net = net.to(device).eval()
    figures = {}
    for size in batches:
        images = torch.rand(size, 3, image_size, image_size, device=device)
        with torch.no_grad():
            seconds = time_call(lambda images=images: net(images), device, repeats, warmup)
        figures[f"ms_per_image_b{size}"] = 1000 * seconds / size
    return figures


def matmul_peak(device: torch.device, size: int | None = None,
                dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """GFLOP/s of one (n, n) @ (n, n) matrix product (2 n³ flops): the device's practical peak.

    ``n`` defaults to 2048 on a CPU and 8192 on a GPU. float32 products are timed at the
    "highest" matmul precision (no TF32), whatever the global setting.
    """
    size = size or (2048 if device.type == "cpu" else 8192)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device, dtype)
    b = torch.randn(size, size, generator=g).to(device, dtype)
    seconds = time_call(lambda: a @ b, device, repeats)
    return 2 * size**3 / seconds / 1e9


def tf32_matmul_peak(device: torch.device, size: int | None = None, repeats: int = 5) -> float:
    """Like :func:`matmul_peak` for float32 inputs with TF32 allowed (CUDA tensor cores)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        return matmul_peak(device, size, torch.float32, repeats)
    finally:
        torch.set_float32_matmul_precision(before)


def _peaks(device: torch.device, repeats: int) -> dict[str, float]:
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        peaks = {"float32": matmul_peak(device, repeats=repeats)}
    finally:
        torch.set_float32_matmul_precision(before)
    if device.type == "cuda":
        peaks["tf32"] = tf32_matmul_peak(device, repeats=repeats)
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
        peaks["bfloat16"] = matmul_peak(device, dtype=torch.bfloat16, repeats=repeats)
    return peaks


def speed_report(device: torch.device | str, batch: int | None = None,
                 image_size: int | None = None,
                 repeats: int | None = None,
                 echo: Callable[[str], object] | None = print) -> dict[str, Any]:
    """All speed figures of one device, in one run: see the module docstring.

    Args:
        device: where to time everything.
        batch: rendering batch (default 64, the training batch of ``default``).
        image_size: rendering size in px (default 128, the ``default`` preset's).
        repeats: timed repeats per figure (default 10 on a GPU, 3 on a CPU).
        echo: called with a line before each part (progress); ``None`` for silence.

    Returns:
        a JSON-ready dict: ``device`` (its description), ``repeats``, ``load_average`` (the
        one-minute load average at the start, where the OS reports one), ``peak_gflops``
        (``float32``; ``tf32`` on CUDA; ``bfloat16`` on CUDA and on a CPU with native bf16),
        ``rendering``, ``training`` (per config: ``default``, ``cpu-quick``, ``gpu`` on CUDA,
        ``cpu-2h``, and ``cpu-2h float32`` where ``cpu-2h`` runs in bf16) and
        ``inference`` (per network: ``image_size``, ``params``, ``macs``,
        ``ms_per_image_b1``, ``ms_per_image_b64``, ``gflops`` at batch 64, ``of_peak``, the
        ratio to the float32 peak). On a CPU the ``default`` config trains at batch 16.
    """
    device = torch.device(device)
    gpu = device.type != "cpu"
    repeats = repeats or (10 if gpu else 3)
    batch = batch or 64
    image_size = image_size or 128
    warmup = 3 if gpu else 1
    say = echo or (lambda _line: None)
    report: dict[str, Any] = {"device": describe(device), "repeats": repeats}
    if hasattr(os, "getloadavg"):  # what else ran: timings on a shared machine depend on it
        report["load_average"] = round(os.getloadavg()[0], 2)
    model = MorphableModel.default()

    say("timing the float32 matmul peak ...")
    report["peak_gflops"] = _peaks(device, repeats)
    say(f"timing rendering ({image_size} px, batch {batch}) ...")
    report["rendering"] = {"image_size": image_size, "batch_size": batch,
                           **render_throughput(model, device, batch, image_size, repeats)}

    runs = [("default", get_config("default"), None if gpu else 16),
            ("cpu-quick", get_config("cpu-quick"), None)]
    if device.type == "cuda":  # the gpu preset: same net, mixed precision and channels_last
        runs.append(("gpu", get_config("gpu"), None))
    # the one-run preset with its bf16 autocast where this device has it, and then the same
    # steps in float32 for comparison
    one_run = get_config("cpu-2h")
    runs.append(("cpu-2h", one_run, None))
    if amp_dtype(one_run, device) is not None:
        runs.append(("cpu-2h float32", get_config("cpu-2h", amp=False), None))
    report["training"] = {}
    for name, config, size in runs:
        say(f"timing training steps of {name!r} ({config.image_size} px) ...")
        report["training"][name] = {"image_size": config.image_size,
                                    **train_throughput(config, device, size, repeats, warmup,
                                                       model)}

    nets = [(f"E2FARNet {name}", config.image_size,
             E2FARNet(model.num_id, model.num_exp, config.net))
            for name, config, _ in runs[:2]]
    # the shipped checkpoint's network (cpu-night's, cpu-real's and cpu-2h's too)
    full = get_config("cpu-full")
    nets.append(("E2FARNet cpu-full", full.image_size,
                 E2FARNet(model.num_id, model.num_exp, full.net)))
    nets.append(("MobileNetV1 (3DDFA_V2)", INPUT_SIZE, MobileNetV1()))
    report["inference"] = {}
    for name, size, net in nets:
        say(f"timing inference of {name} ({size} px) ...")
        figures: dict[str, float] = {"image_size": size, "params": count_parameters(net),
                                     "macs": count_macs(net, (1, 3, size, size))}
        # as inference runs in this package: batch norms folded, kernels channels-last
        figures.update(inference_latency(for_inference(net), size, device, (1, 64), repeats,
                                         warmup))
        unfolded = inference_latency(net, size, device, (1, 64), repeats, warmup)
        figures.update({f"unfolded_{k}": v for k, v in unfolded.items()})
        figures["gflops"] = 2 * figures["macs"] / (figures["ms_per_image_b64"] / 1000) / 1e9
        figures["of_peak"] = figures["gflops"] / report["peak_gflops"]["float32"]
        report["inference"][name] = figures
    peer = report["inference"][nets[-1][0]]
    for figures in report["inference"].values():
        figures["b1_vs_mobilenet"] = figures["ms_per_image_b1"] / peer["ms_per_image_b1"]
    return report


def format_report(report: dict[str, Any]) -> str:
    """The figures of :func:`speed_report` as a compact plain-text table."""
    peaks = report["peak_gflops"]
    lines = [f"device: {report['device']}",
             f"median of {report['repeats']} timings after warm-up",
             "peak (one large matmul): " + ", ".join(f"{k} {v:,.0f} GFLOP/s"
                                                     for k, v in peaks.items())]
    r = report["rendering"]
    lines.append(f"rendering, {r['image_size']} px, batch {r['batch_size']}: full samples (draw +"
                 f" render + background + augment) {r['samples_per_s']:,.1f} images/s; renderer "
                 f"alone {r['render_per_s']:,.1f} images/s ({r['backend']}), tensor reference "
                 f"{r['render_torch_per_s']:,.1f} images/s")
    lines += ["", "training steps (fresh batch + forward + backward + AdamW); net only = "
                  "forward + backward + AdamW",
              f"  {'config':<16}{'px':>5}{'batch':>7}{'images/s':>10}{'net only':>10}"
              f"{'ratio':>7}"]
    for name, t in report["training"].items():
        lines.append(f"  {name:<16}{t['image_size']:>5}{t['batch_size']:>7}"
                     f"{t['images_per_s']:>10.1f}{t['net_images_per_s']:>10.1f}"
                     f"{t['images_per_s'] / t['net_images_per_s']:>7.2f}")
    lines += ["", "inference (eval, no_grad, for_inference: batch norm folded, channels-last;"
                  " plain eval in brackets); "
                  "GFLOP/s = 2 MACs x images/s at batch 64",
              f"  {'network':<24}{'px':>4}{'params':>8}{'MMACs':>8}{'ms/img b1':>16}"
              f"{'ms/img b64':>16}{'GFLOP/s':>9}{'of peak':>9}{'b1/MobileNet':>14}"]
    for name, f in report["inference"].items():
        lines.append(f"  {name:<24}{f['image_size']:>4}{f['params'] / 1e6:>7.2f}M"
                     f"{f['macs'] / 1e6:>8.1f}"
                     f"{f['ms_per_image_b1']:>8.2f} ({f['unfolded_ms_per_image_b1']:5.2f})"
                     f"{f['ms_per_image_b64']:>8.2f} ({f['unfolded_ms_per_image_b64']:5.2f})"
                     f"{f['gflops']:>9.1f}{100 * f['of_peak']:>8.0f}%"
                     f"{f['b1_vs_mobilenet']:>13.2f}x")
    return "\n".join(lines)


__all__ = ["time_call", "render_throughput", "train_throughput", "inference_latency",
           "matmul_peak", "tf32_matmul_peak", "speed_report", "format_report"]
