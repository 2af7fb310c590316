"""Command line: ``python -m e2far_lite COMMAND`` (or ``e2far-lite COMMAND``).

Commands:
    render      write a grid of synthetic training samples as a PNG
    benchmark   the ablation table (``--mode quick|full|smoke``) or speed figures (``--speed``)
    train       train E2FARNet from a preset (``--config cpu-quick``), writing into ``--out``
    evaluate    validation figures of a checkpoint (``--checkpoint runs/cpu-quick/last.pt``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _render(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .data import DataConfig, SyntheticFaces
    from .devices import default_device
    from .morphable_model import MorphableModel
    from .viz import image_grid

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise SystemExit(f"--out: expected a .png file name, got {out.name!r}")
    device = default_device()
    model = MorphableModel.default().to(device)
    faces = SyntheticFaces(model, args.n, seed=args.seed,
                           config=DataConfig(image_size=args.size), device=device)
    batch = faces.batch(range(args.n))
    fig = image_grid(batch["image"].cpu(), batch["landmarks"].cpu(), batch["visible"].cpu(),
                     ncols=min(8, args.n))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}: {args.n} samples, seed {args.seed}, {args.size} px, on {device}")


def _benchmark(args: argparse.Namespace) -> None:
    import torch

    from .devices import default_device, describe

    device = torch.device(args.device) if args.device else default_device()
    if not args.speed:
        from .benchmark import run_ablation

        print(f"ablation benchmark, {args.mode} mode, on {describe(device)}")
        run_ablation(args.mode, args.out, device=device)
        print((Path(args.out) / "results.md").read_text())
        print(f"wrote {Path(args.out) / 'results.md'} and results.json")
        return
    from .morphable_model import MorphableModel
    from .speed import render_throughput

    print(f"device: {describe(device)}")
    model = MorphableModel.default()
    figures = render_throughput(model, device, batch=args.batch, image_size=args.size,
                                repeats=args.repeats)
    print(f"rendering at {args.size} px, batch {args.batch} (median of {args.repeats}):")
    print(f"  renderer alone (rasterize + shade): {figures['render_per_s']:8.1f} images/s")
    print(f"  full samples (draw + render + background + augment): "
          f"{figures['samples_per_s']:8.1f} images/s")


def _train(args: argparse.Namespace) -> None:
    import time

    import torch

    from .configs import get_config
    from .devices import default_device, describe
    from .train import format_figures, train

    if args.steps is not None and args.steps <= 0:
        raise SystemExit(f"--steps: expected a positive integer, got {args.steps}")
    overrides = {} if args.steps is None else {"steps": args.steps}
    try:
        config = get_config(args.config, **overrides)
    except ValueError as err:
        raise SystemExit(f"--config: {err}") from None
    device = torch.device(args.device) if args.device else default_device()
    print(f"device: {describe(device)}")
    print(f"config {args.config!r}: {config.image_size} px, batch {config.batch_size}, "
          f"{config.steps} steps, widths {config.net.backbone.widths}; writing to {args.out}")
    start = time.perf_counter()
    result = train(config, args.out, device=device, resume=args.resume,
                   progress=not args.quiet, cache_dir=args.cache_dir)
    minutes = (time.perf_counter() - start) / 60
    print(f"done in {minutes:.1f} min; validation ({config.val_size} faces, seed "
          f"{config.val_seed}), step {result.history[-1]['step']}:")
    print("  " + format_figures(result.final, result.baseline))
    print(f"  checkpoint {result.paths['last']}, log {result.paths['csv']}, "
          f"curves {result.paths['curves']}")


def _evaluate(args: argparse.Namespace) -> None:
    import torch

    from .checkpoint import load_checkpoint, read_checkpoint
    from .devices import default_device, describe
    from .paths import data_dir
    from .train import format_figures, load_split, mean_shape_baseline, validate

    device = torch.device(args.device) if args.device else default_device()
    try:
        net, model, config = load_checkpoint(args.checkpoint, device=device)
        step = read_checkpoint(args.checkpoint)["step"]
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--checkpoint: {err}") from None
    seed = config.val_seed if args.seed is None else args.seed
    print(f"device: {describe(device)}")
    print(f"checkpoint {args.checkpoint} (step {step}, {config.image_size} px); "
          f"{args.n} faces of seed {seed}")
    split = load_split(model, config, args.cache_dir or data_dir() / "cache",
                       num_samples=args.n, seed=seed, device=device)
    figures = validate(net, model, split)
    print("  " + format_figures(figures, mean_shape_baseline(model, split)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2far_lite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="write a grid of synthetic samples")
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--out", default="samples.png", help="output PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="image size in pixels")
    p.set_defaults(func=_render)

    p = sub.add_parser("benchmark", help="the ablation table, or speed figures")
    p.add_argument("--mode", choices=("smoke", "quick", "full"), default="quick",
                   help="ablation size: quick fits a 2-core CPU in 30 min, full is for a GPU")
    p.add_argument("--out", default="runs/benchmark", help="folder for results.md/.json")
    p.add_argument("--speed", action="store_true", help="speed figures instead")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=_benchmark)

    p = sub.add_parser("train", help="train the network from a preset")
    p.add_argument("--config", default="cpu-quick",
                   help="preset: smoke, cpu-quick, default, gpu (default: cpu-quick)")
    p.add_argument("--out", default=None, help="output folder (default: runs/CONFIG)")
    p.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--resume", default=None,
                   help="'auto' (OUT/last.pt if present) or a checkpoint path")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--cache-dir", default=None,
                   help="where rendered splits are cached (default: data/cache)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="validation figures of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a .pt file from train")
    p.add_argument("--n", type=int, default=256, help="validation faces")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the faces (default: the run's validation seed)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--cache-dir", default=None,
                   help="where rendered splits are cached (default: data/cache)")
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "train" and args.out is None:
        args.out = f"runs/{args.config}"
    for name in ("n", "size", "batch", "repeats"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise SystemExit(f"--{name}: expected a positive integer, got {value}")
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
